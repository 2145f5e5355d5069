"""Benchmark: code-sandbox throughput on the 164 HumanEval canonical solutions.

    python bench/sandbox_throughput.py [--data-dir DIR] [--repeat 1]

Runs every canonical solution (prompt + solution + test + check(entry_point)) through `run_programs`
with workers=1 and workers=os.cpu_count(), in bwrap mode (skipped when bubblewrap is unavailable) and
in the plain `rlimit` fallback, and prints one JSON line per configuration: samples/s, wall time,
how many passed, and the ratio of samples/s against workers=1 bwrap measured in the same run.
Data comes from --data-dir, else $IOA_DATA_DIR, else ../shared/data beside the repo.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from ioa.evaluation.sandbox import SandboxLimits, run_programs, sandbox_mode


def load_programs(data_dir: Path) -> list[str]:
    path = data_dir / "humaneval" / "HumanEval.jsonl"
    if not path.is_file():
        raise SystemExit(f"{path} not found: pass --data-dir or set IOA_DATA_DIR")
    with path.open(encoding="utf-8") as f:
        problems = [json.loads(line) for line in f if line.strip()]
    return [p["prompt"] + p["canonical_solution"] + "\n" + p["test"] + "\n" + f"check({p['entry_point']})"
            for p in problems]


def measure(programs: list[str], mode: str, workers: int, repeat: int) -> dict:
    os.environ["IOA_SANDBOX"] = mode
    sandbox_mode()  # detection and its self-test stay out of the timing
    best = None
    for _ in range(repeat):
        start = time.perf_counter()
        results = run_programs(programs, SandboxLimits(), workers=workers)
        wall = time.perf_counter() - start
        if best is None or wall < best[0]:
            best = (wall, sum(r.passed for r in results))
    wall, passed = best
    return {"mode": mode, "workers": workers, "samples": len(programs), "passed": passed,
            "wall_s": round(wall, 3), "samples_per_s": round(len(programs) / wall, 2)}


def main() -> None:
    default_dir = os.environ.get("IOA_DATA_DIR", Path(__file__).resolve().parents[1] / ".." / "shared" / "data")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=Path(default_dir))
    ap.add_argument("--repeat", type=int, default=1, help="runs per configuration; the fastest counts")
    args = ap.parse_args()
    programs = load_programs(args.data_dir)
    cores = os.cpu_count() or 1
    modes = ["bwrap", "rlimit"]
    try:
        os.environ["IOA_SANDBOX"] = "bwrap"
        sandbox_mode()
    except RuntimeError as e:
        print(json.dumps({"mode": "bwrap", "skipped": str(e)}), flush=True)
        modes = ["rlimit"]
    baseline = None
    for mode in modes:
        for workers in sorted({1, cores}):
            row = measure(programs, mode, workers, args.repeat)
            if baseline is None:
                baseline = row["samples_per_s"]  # workers=1 in the first mode (bwrap when available)
                row["baseline"] = f"{mode} workers=1"
            row["ratio_vs_baseline"] = round(row["samples_per_s"] / baseline, 2)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
