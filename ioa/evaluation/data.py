"""Benchmark data: a local folder of JSONL files (laid out like the project's shared data), else the hub.

Each benchmark names its local file under the data folder and, where one exists, the Hugging Face
dataset it comes from. The data folder is `--data-dir`, else `$IOA_DATA_DIR`; when it holds no file for
a benchmark, the rows come from `datasets.load_dataset` (which needs network access or a warm hub cache).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ioa.io import InputError, iter_jsonl

ENV_DATA_DIR = "IOA_DATA_DIR"


@dataclass(frozen=True)
class Source:
    """Where a benchmark's rows live: `local` under the data folder, else `hub` (id, config, split, files)."""

    local: str
    hub: str | None = None
    config: str | None = None
    split: str = "test"
    data_files: str | None = None


def resolve_data_dir(arg: str | Path | None) -> Path | None:
    """`--data-dir`, else `$IOA_DATA_DIR`, else None (hub only)."""
    if arg:
        return Path(arg)
    env = os.environ.get(ENV_DATA_DIR)
    return Path(env) if env else None


def load_rows(name: str, source: Source, data_dir: Path | None) -> tuple[list[dict[str, Any]], str]:
    """(rows, where they came from). Raises InputError naming the benchmark, the file and the dataset."""
    local = data_dir / source.local if data_dir is not None else None
    if local is not None and local.is_file():
        return [row for _, row in iter_jsonl(local)], str(local)
    where = f"no local file {local}" if local is not None else f"no data folder (--data-dir or ${ENV_DATA_DIR})"
    if source.hub is None:
        raise InputError(f"{name}: {where}, and the benchmark has no hub dataset to fall back on")
    return (load_hub(name, source, where),
            f"hf://{source.hub}" + (f"/{source.config}" if source.config else "") + f":{source.split}")


def load_hub(name: str, source: Source, where: str) -> list[dict[str, Any]]:
    try:
        from datasets import load_dataset

        kwargs: dict[str, Any] = {"split": source.split}
        if source.data_files:
            kwargs["data_files"] = {source.split: source.data_files}
        dataset = load_dataset(source.hub, source.config, **kwargs)
        return [dict(row) for row in dataset]
    except Exception as e:  # offline, unknown id, gated, schema drift: all end the same way for the user
        lines = str(e).strip().splitlines()
        reason = f"{type(e).__name__}: {lines[0] if lines else ''}"
        raise InputError(f"{name}: {where}, and loading hub dataset {source.hub!r} failed ({reason})") from None
