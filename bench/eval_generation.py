"""Evaluation generation speed: batched `HFStudent.generate` against one prompt at a time.

Same model (the default student unless --model), same GSM8K prompts as `ioa eval` builds them (the
first --prompts test questions with the step-by-step `#### <number>` instruction), same greedy decoding
and max_new_tokens, in one process: a short warm-up, then (a) all prompts in batches of --batch-size
(the eval path: similar lengths share a batch, left padding), then (b) the same prompts with batch size
1. Tokens are the generated tokens that are not padding (a sequence that ends early stops counting),
so both rates count the same work; `identical` is how many completions the two runs agree on (greedy,
but padding changes the float arithmetic a little).

Run: .venv/bin/python bench/eval_generation.py [--prompts 32] [--max-new-tokens 128] [--batch-size 16] [--threads N]
The last line printed is JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from ioa.evaluation.benchmarks import get_benchmark  # noqa: E402
from ioa.evaluation.data import load_rows, resolve_data_dir  # noqa: E402
from ioa.evaluation.runner import load_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def timed(student, prompts, batch_size: int, max_new_tokens: int, options: dict) -> tuple[list[str], dict]:
    student.cfg.gen_batch_size = batch_size
    outs = student.generate(prompts, max_new_tokens=max_new_tokens, **options)
    stats = dict(student.last_generation)
    return outs, {"batch_size": batch_size, "new_tokens": int(stats["new_tokens"]),
                  "seconds": round(stats["seconds"], 2), "tokens_per_s": round(stats["tokens_per_s"], 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--data-dir", type=Path, default=resolve_data_dir(None) or ROOT.parent / "shared" / "data")
    ap.add_argument("--cache-dir", type=Path, default=ROOT / "runs" / ".cache")
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's); 1 on a busy shared machine")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    bench = get_benchmark("gsm8k")
    rows, _ = load_rows(bench.name, bench.source, args.data_dir)
    prompts = [bench.prompt(item) for item in bench.items(rows)[: args.prompts]]
    options = bench.generation()
    student = load_model(args.model, args.cache_dir, progress=False)
    timed(student, prompts[:2], 2, 16, options)  # warm-up: first-call allocations and kernel selection
    batched_out, batched = timed(student, prompts, args.batch_size, args.max_new_tokens, options)
    print(f"batched: {batched}", file=sys.stderr, flush=True)
    single_out, single = timed(student, prompts, 1, args.max_new_tokens, options)
    print(f"batch size 1: {single}", file=sys.stderr, flush=True)
    print(json.dumps({
        "model": args.model, "precision": student.precision, "device": str(student.device),
        "threads": torch.get_num_threads(),
        "prompts": len(prompts), "max_new_tokens": args.max_new_tokens,
        "batched": batched, "batch_size_1": single,
        "speedup": round(batched["tokens_per_s"] / single["tokens_per_s"], 2),
        "identical": f"{sum(a == b for a, b in zip(batched_out, single_out))}/{len(prompts)}",
    }))


if __name__ == "__main__":
    main()
