"""The student rank 0 sees when a run has several processes (ioa.distributed): the same Student, its
generation split across the ranks and its state changes followed by every replica.

`generate`/`respond` give each rank every world_size-th prompt still to do and gather the completions on
rank 0 (the callers see one list, in order, and `on_batch` hears of every completion); `train` runs on
all ranks at once (DDP inside the trainer); `load_state` loads on every rank. Writing (`save_state`,
`save`) and everything that only reads the model (`count_tokens`, `completion_losses`) stay on rank 0.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ioa import distributed
from ioa.answers import answer_format_of, asks_answer_line, prompt_for
from ioa.types import Example, Problem


def start_replicas(kind: str, cfg, cache_dir: Path, seed: int) -> None:
    """Rank 0, before it loads its own student: every other rank builds its replica meanwhile. A GGUF is
    converted into the cache first (once, here), so that no two ranks write the same folder."""
    from ioa.students.hf_convert import resolve_model

    if kind == "hf":
        resolve_model(cfg.model, Path(cache_dir))
    distributed.command("build", kind, cfg, Path(cache_dir), seed)


class ShardedStudent:
    def __init__(self, local):
        self.local = local  # rank 0's own replica; the others were started by start_replicas
        self.last_generation: dict[str, float] = {}

    def __getattr__(self, name: str) -> Any:  # name, source, precision, tokenizer, cfg, model, ...
        return getattr(self.local, name)

    def respond(self, problems: Sequence[Problem]) -> list[str]:
        line = all(asks_answer_line(answer_format_of(p)) for p in problems)  # as HFStudent.respond
        return self.generate([prompt_for(p) for p in problems], answer_line_stop=line)

    def generate(self, prompts: Sequence[str], *, done: Mapping[int, str] | None = None,
                 on_batch: Callable[[Sequence[int], Sequence[str]], None] | None = None, **options: Any) -> list[str]:
        start = time.perf_counter()
        outputs = [""] * len(prompts)
        for j, text in (done or {}).items():
            outputs[j] = text
        todo = [j for j in range(len(prompts)) if j not in (done or {})]
        # Dealt in prompt-length order: a list that alternates composites and their steps, dealt in its
        # own order, gave one rank every composite and the other every short step, and the tail with them.
        dealt = sorted(todo, key=lambda j: len(prompts[j]))
        shares = [[dealt[k] for k in distributed.shard(len(dealt), r)] for r in range(distributed.world_size())]
        distributed.command("generate", [[prompts[j] for j in share] for share in shares[1:]], options)
        mine = shares[0]
        report = None if on_batch is None else (lambda idx, texts: on_batch([mine[i] for i in idx], texts))
        local = self.local.generate([prompts[j] for j in mine], on_batch=report, **options) if mine else []
        if os.environ.get("IOA_TRACE_RANKS") == "1":
            print(f"ioa rank 0: generate {time.perf_counter() - start:.2f} s ({len(mine)} of {len(todo)})",
                  file=sys.stderr, flush=True)
        stats = [dict(self.local.last_generation) if mine else {}]
        for share, (texts, worker_stats) in zip(shares, [(local, None), *distributed.gather(None)[1:]]):
            for j, text in zip(share, texts):
                outputs[j] = text
            if worker_stats is not None:
                stats.append(worker_stats)
                if on_batch is not None and share:
                    on_batch(share, texts)
        seconds = time.perf_counter() - start
        if os.environ.get("IOA_TRACE_RANKS") == "1":
            print(f"ioa rank 0: generation stats per rank {stats}", file=sys.stderr, flush=True)
        new_tokens = sum(s.get("new_tokens", 0) for s in stats)
        self.last_generation = {"prompts": len(todo), "reused": len(prompts) - len(todo), "new_tokens": new_tokens,
                                "seconds": seconds, "tokens_per_s": new_tokens / seconds if seconds > 0 else 0.0,
                                "processes": distributed.world_size()}
        return outputs

    def train(self, examples: Sequence[Example], out_dir: Path, max_steps: int | None = None,
              lr_window: tuple[int, int] | None = None) -> dict[str, Any]:
        from ioa.students.hf_train import last_complete_checkpoint

        last_complete_checkpoint(Path(out_dir))  # a half-written checkpoint goes before any rank looks
        distributed.command("train", list(examples), Path(out_dir), max_steps, lr_window)
        return self.local.train(examples, out_dir, max_steps, lr_window)

    def load_state(self, path: Path) -> None:
        distributed.command("load_state", Path(path))
        self.local.load_state(path)

    def save_state(self, path: Path) -> None:
        self.local.save_state(path)

    def save(self, path: Path) -> None:
        self.local.save(path)

    def count_tokens(self, examples: Sequence[Example]) -> list[int]:
        return self.local.count_tokens(examples)

    def completion_losses(self, examples: Sequence[Example]) -> list[float]:
        return self.local.completion_losses(examples)
