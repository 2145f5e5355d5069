"""Evaluation generation speed: continuous batching (the default) against transformers' generate in fixed batches.

The baseline is the path every run used until 2026-12-03: `decode: generate` at `gen_batch_size` 16, where
a batch decodes until its last sequence stops (one looping answer keeps fifteen finished ones decoding), with
autocast recasting every frozen weight at every matmul (`student.cast_frozen_weights: false`). Against it, in
one process, after a short warm-up, the same model, prompts, greedy decoding and `max_new_tokens`:

- `continuous_whole_prompts`: continuous decoding at the configured batch size (a finished sequence leaves the
  KV cache and a waiting prompt takes its place; the prefill computes the last position's logits only; in bf16
  every linear weight cast once per call), each prompt prefilled whole;
- `continuous_shared_prefix`: the same, with the tokens every prompt starts with prefilled once
  (`student.prefill_shared_prefix`);
- `continuous`: and the decode steps with the whole model in bf16 (`student.bf16_decode_steps`; off with
  --no-bf16-decode-steps; in fp32 the same as the path before).

Workloads:

- `arithmetic`: what a run's probing, gates and final evaluation generate: the compare preset's modules,
  --prompts problems spread over their difficulty band, with the answer-line early stop;
- `gsm8k`: `ioa eval`'s GSM8K prompts (step-by-step, `#### <number>`);
- `probes`: a run directory's probe set (`--run`, its trained student unless --model says otherwise), graded,
  with each path's accuracy per module (the issue's bar: in bf16, the same accuracy within one item per module).

`wall_ratio` = baseline seconds / a path's seconds for the same prompts (the issue's "evaluation ≥ 4×" bar);
tokens are the generated tokens (a sequence that ended stops counting), so the rates count the same work;
`identical_to_*` is how many completions two paths agree on (greedy; in bf16 the batch a row shares changes
its arithmetic a little, in fp32 they agree).

Run: .venv/bin/python bench/eval_generation.py [--workload arithmetic|gsm8k|probes|both] [--prompts 96] [--run DIR]
     [--max-new-tokens 288] [--batch-size 64] [--baseline-batch-size 16] [--threads N] [--model PATH]
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

from ioa.answers import prompt_for  # noqa: E402
from ioa.config import PRESETS, StudentConfig  # noqa: E402
from ioa.domains import load_domain  # noqa: E402
from ioa.evaluation.benchmarks import get_benchmark  # noqa: E402
from ioa.evaluation.data import load_rows, resolve_data_dir  # noqa: E402
from ioa.evaluation.runner import load_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def timed(student, prompts, options: dict, **cfg) -> tuple[list[str], dict]:
    """Generate `prompts` with the student configured by `cfg` (StudentConfig fields); completions and stats."""
    student.cfg = student.cfg.model_copy(update=cfg)
    outs = student.generate(prompts, **options)
    stats = dict(student.last_generation)
    return outs, {**cfg, "new_tokens": int(stats["new_tokens"]), "seconds": round(stats["seconds"], 2),
                  "tokens_per_s": round(stats["tokens_per_s"], 2)}


def identical(a: list[str], b: list[str]) -> str:
    return f"{sum(x == y for x, y in zip(a, b))}/{len(a)}"


def probe_problems(run: Path) -> list:
    from ioa.io import read_jsonl
    from ioa.types import Problem

    return [Problem.from_dict(row) for row in read_jsonl(run / "probes.jsonl")]


def accuracy(problems, outputs) -> dict[str, float]:
    domain = load_domain("arithmetic")
    per: dict[str, list[bool]] = {}
    for problem, out in zip(problems, outputs):
        per.setdefault(problem.module, []).append(domain.check(problem, out))
    return {module: round(100 * sum(v) / len(v), 1) for module, v in sorted(per.items())}


def arithmetic_prompts(n: int) -> list[str]:
    domain = load_domain("arithmetic")
    modules = PRESETS["compare"]["modules"]
    specs = [(modules[i % len(modules)], (i // len(modules)) / max(1, n // len(modules)) * 0.3, 1000 + i)
             for i in range(n)]
    return [prompt_for(domain.generate(*spec)) for spec in specs]


def workload(name: str, args) -> tuple[list[str], dict]:
    if name == "probes":
        return [prompt_for(p) for p in probe_problems(args.run)], {"max_new_tokens": args.max_new_tokens}
    if name == "arithmetic":
        return arithmetic_prompts(args.prompts), {"max_new_tokens": args.max_new_tokens}
    bench = get_benchmark("gsm8k")
    rows, _ = load_rows(bench.name, bench.source, args.data_dir)
    return ([bench.prompt(item) for item in bench.items(rows)[: args.prompts]],
            {**bench.generation(), "max_new_tokens": args.max_new_tokens})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m", help="hub id, local folder or run directory")
    ap.add_argument("--workload", choices=("arithmetic", "gsm8k", "probes", "both"), default="both")
    ap.add_argument("--run", type=Path, help="probes: the run directory whose probes.jsonl (and, without --model, "
                    "whose trained student) to use")
    ap.add_argument("--prompts", type=int, default=96)
    ap.add_argument("--max-new-tokens", type=int, default=288)
    ap.add_argument("--batch-size", type=int, default=StudentConfig().gen_batch_size)
    ap.add_argument("--baseline-batch-size", type=int, default=16)
    ap.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto")
    ap.add_argument("--data-dir", type=Path, default=resolve_data_dir(None) or ROOT.parent / "shared" / "data")
    ap.add_argument("--cache-dir", type=Path, default=ROOT / "runs" / ".cache")
    ap.add_argument("--bf16-decode-steps", action=argparse.BooleanOptionalAction, default=True,
                    help="the last path with bf16 decode steps (student.bf16_decode_steps)")
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's); 1 on a busy shared machine")
    args = ap.parse_args()
    if args.workload == "probes":
        if args.run is None:
            ap.error("--workload probes needs --run DIR")
        if args.model == ap.get_default("model"):
            args.model = str(args.run)
    if args.threads:
        torch.set_num_threads(args.threads)

    student = load_model(args.model, args.cache_dir, progress=False, precision=args.precision)
    timed(student, arithmetic_prompts(4), {"max_new_tokens": 16}, decode="generate", gen_batch_size=2)  # warm-up
    paths = {  # name -> StudentConfig fields; "baseline" first, "continuous" (today's configuration) last
        "baseline": dict(decode="generate", gen_batch_size=args.baseline_batch_size, cast_frozen_weights=False),
        "continuous_whole_prompts": dict(decode="continuous", gen_batch_size=args.batch_size, cast_frozen_weights=True,
                                         prefill_shared_prefix=False, bf16_decode_steps=False),
        "continuous_shared_prefix": dict(decode="continuous", gen_batch_size=args.batch_size, cast_frozen_weights=True,
                                         prefill_shared_prefix=True, bf16_decode_steps=False),
        "continuous": dict(decode="continuous", gen_batch_size=args.batch_size, cast_frozen_weights=True,
                           prefill_shared_prefix=True, bf16_decode_steps=args.bf16_decode_steps),
    }
    results = {}
    for name in (["arithmetic", "gsm8k"] if args.workload == "both" else [args.workload]):
        prompts, options = workload(name, args)
        outs, stats = {}, {}
        for path, cfg in paths.items():
            outs[path], stats[path] = timed(student, prompts, options, **cfg)
            print(f"{name} {path}: {stats[path]}", file=sys.stderr, flush=True)
        base = stats["baseline"]["seconds"]
        results[name] = {"prompts": len(prompts), **stats,
                         "wall_ratio": {p: round(base / stats[p]["seconds"], 2) for p in paths if p != "baseline"},
                         "identical_to_baseline": {p: identical(outs["baseline"], outs[p]) for p in paths},
                         "identical_to_whole_prompts": {p: identical(outs["continuous_whole_prompts"], outs[p])
                                                        for p in paths}}
        if name == "probes":
            problems = probe_problems(args.run)
            results[name]["accuracy"] = {p: accuracy(problems, outs[p]) for p in paths}
    print(json.dumps({"model": args.model, "precision": student.precision, "device": str(student.device),
                      "threads": torch.get_num_threads(), "max_new_tokens": args.max_new_tokens, **results}))


if __name__ == "__main__":
    main()
