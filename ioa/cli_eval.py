"""The `ioa eval` and `ioa score` subcommands: `add_eval_parsers(subparsers)` adds both to the `ioa`
parser (`ioa eval`, `ioa score`).

Command-line wiring, beside ioa/cli.py rather than in ioa/evaluation/: it builds the judge a benchmark
needs, which may be a teacher client from the transport (`--judge-config`), so the evaluation library
itself takes any ChatBackend and never imports ioa.llm.

  ioa eval  --model PATH_OR_ID --benchmarks gsm8k,humaneval [--limit N] [--out DIR] ...
  ioa score --benchmark humaneval --samples FILE [--out FILE]

Errors the user can fix are one line on stderr and exit code 2, as in `ioa.cli`.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from ioa.io import InputError
from ioa.paths import user_cache_dir

__all__ = ["add_eval_parsers", "cmd_eval", "cmd_score"]

ALL = "gsm8k,math500,aime24,humaneval,mbpp,dolly,vicuna"


def _data_dir(arg: Path | None) -> Path | None:
    from ioa.evaluation.data import ENV_DATA_DIR, resolve_data_dir

    data_dir = resolve_data_dir(arg)
    if data_dir is not None and not data_dir.is_dir():
        source = "--data-dir" if arg else f"${ENV_DATA_DIR}"
        raise InputError(f"{source} {data_dir}: not a directory")
    return data_dir


def _judge(args: argparse.Namespace, needed: bool):
    """The judge a benchmark needs: the teacher backend of a run configuration (--judge-config: any
    OpenAI-compatible endpoint or local model, cached and accounted like a teacher), or a local model
    (--judge-model); None when neither is given or no benchmark needs one."""
    if not needed:
        return None
    if getattr(args, "judge_config", None):
        from ioa.config import load_config
        from ioa.llm.client import build_client

        cfg = load_config(args.judge_config)
        if cfg.teacher.kind == "procedural":
            raise InputError(f"{args.judge_config}: teacher.kind must be openai or hf to judge")
        ledger = Path(args.out) / "judge_calls.jsonl" if getattr(args, "out", None) else None
        return build_client(cfg, args.cache_dir, ledger)
    if not args.judge_model:
        return None
    from ioa.evaluation.runner import LocalChatBackend, load_model

    student = load_model(args.judge_model, args.cache_dir, batch_size=args.judge_batch_size,
                         device=args.device, precision=getattr(args, "precision", "auto"),
                         progress=not args.no_progress, name="judge")
    return LocalChatBackend(student)


def cmd_eval(args: argparse.Namespace) -> int:
    from ioa.evaluation.benchmarks import get_benchmark
    from ioa.evaluation.runner import EvalOptions, format_table, run_eval
    from ioa.rundir import eval_results

    names = [n for n in args.benchmarks.split(",") if n.strip()]
    benches = [get_benchmark(n) for n in names]  # an unknown name fails before any loading
    for flag, value in (("--batch-size", args.batch_size), ("--max-new-tokens", args.max_new_tokens)):
        if value is not None and value < 1:
            raise InputError(f"{flag} must be >= 1, got {value}")
    out = args.out or Path("runs") / f"eval-{time.strftime('%Y%m%d-%H%M%S')}"
    opts = EvalOptions(
        model=args.model, benchmarks=names, out=out, data_dir=_data_dir(args.data_dir), limit=args.limit,
        samples_per_task=args.samples_per_task, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
        seed=args.seed, temperature=args.temperature, top_p=args.top_p, code_prompt=args.code_prompt,
        cache_dir=args.cache_dir, device=args.device, precision=args.precision, decode=args.decode,
        progress=not args.no_progress, resume=not args.fresh,
    )
    judge = _judge(args, any(b.needs_judge for b in benches))
    results = run_eval(opts, judge=judge)
    print(format_table(results))
    print(f"wrote {eval_results(out)}")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from ioa.evaluation.benchmarks import get_benchmark
    from ioa.evaluation.runner import score_samples, summary_line

    bench = get_benchmark(args.benchmark)
    judge = _judge(args, bench.needs_judge)
    summary = score_samples(bench.name, args.samples, data_dir=_data_dir(args.data_dir), out=args.out,
                            judge=judge, progress=not args.no_progress)
    print(summary_line(summary))  # the last stdout line, for scripts
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", type=Path,
                   help="folder of benchmark JSONL files (default: $IOA_DATA_DIR, else the HF hub)")
    p.add_argument("--judge-config", type=Path,
                   help="run config whose teacher section is the judge (openai endpoint or hf model)")
    p.add_argument("--judge-model", help="local HF model (hub id or path) that grades vicuna, MT-bench single-answer")
    p.add_argument("--judge-batch-size", type=int, default=4)
    p.add_argument("--cache-dir", type=Path, default=user_cache_dir(),
                   help="where converted models are kept (default: $IOA_CACHE, else ~/.cache/ioa)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def add_eval_parsers(subparsers) -> None:
    """Add `eval` and `score` (each with `func`) to an argparse subparsers object."""
    p = subparsers.add_parser("eval", help="generate and score a model on standard benchmarks")
    p.add_argument("--model", default="smollm2-135m",
                   help="hub id, local folder, run directory (its model/), or smollm2-135m (default)")
    p.add_argument("--benchmarks", required=True, help=f"comma-separated: {ALL}")
    p.add_argument("--limit", type=int, help="first N items of each benchmark")
    p.add_argument("--samples-per-task", type=int, default=1,
                   help="N > 1 samples (temperature, top-p) for pass@k; 1 = greedy")
    p.add_argument("--out", type=Path, help="output folder (default: runs/eval-<timestamp>)")
    p.add_argument("--max-new-tokens", type=int, help="override every benchmark's default generation length")
    p.add_argument("--batch-size", type=int, default=16, help="prompts per generation batch")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--temperature", type=float, default=0.8, help="sampling temperature when --samples-per-task > 1")
    p.add_argument("--top-p", type=float, default=0.95, help="nucleus sampling when --samples-per-task > 1")
    p.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto",
                   help="auto: bf16 where the hardware has it; under bf16 greedy outputs can change with --batch-size")
    p.add_argument("--decode", choices=("continuous", "generate"), default="continuous",
                   help="greedy decoding: continuous batching (a finished sequence leaves the batch, a waiting prompt "
                   "takes its place) or transformers' generate in fixed batches; sampling always uses generate")
    p.add_argument("--fresh", action="store_true",
                   help="ignore results and generation checkpoints an earlier call left in --out (default: resume)")
    p.add_argument("--code-prompt", choices=("chat", "completion"), default="chat",
                   help="humaneval/mbpp: chat (instruct models, code from the fenced block) or raw completion "
                   "(base models)")
    _common(p)
    p.set_defaults(func=cmd_eval)

    p = subparsers.add_parser("score", help="score pre-generated samples (JSONL) on a benchmark")
    p.add_argument("--benchmark", required=True, help=ALL)
    p.add_argument("--samples", type=Path, required=True,
                   help="JSONL: task_id/id (or question) + completion (or response/output/answer)")
    p.add_argument("--out", type=Path, help="per-sample results (default: FILE_results.jsonl beside the samples)")
    _common(p)
    p.set_defaults(func=cmd_score)
