"""Peak resident memory and wall time of one training round, bf16 shapes padded or not (`student.shape_multiple`).

On a CPU, bf16 matmuls run through oneDNN, which compiles a kernel for every matrix shape it meets and keeps it,
with its buffers, in a process-wide cache. Unpadded, nearly every micro-batch has its own length and every
completion head its own number of completion tokens, so the cache grows with the steps: what made a default
run's training peak grow with its steps (3.56 GB after 152 steps). Padding lengths and head rows to a multiple
of 32 leaves a few shapes.

Each variant trains a fresh default student (the same seeded adapter, the same examples: a default run's data
mix from bench/train_throughput.py) for `--steps` steps in its own process, so one variant's cache cannot
serve the other; the process's kernel high-water mark (VmHWM, reset after the model loads) is the round's peak.
Both orders are run when `--repeats` is 2, since the machine drifts. Prints each variant and the ratios,
then one JSON line.

Run: OMP_NUM_THREADS=1 .venv/bin/python bench/train_shapes.py [--steps 40] [--repeats 1]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one_round(multiple: int, steps: int) -> dict[str, float]:
    """Train in this process and return peak MiB, RSS after, seconds and the final loss."""
    import tempfile
    import time

    sys.path.insert(0, str(ROOT / "bench"))
    from peak_memory import rss_kb
    from train_throughput import run_mix_examples

    from ioa.config import StudentConfig
    from ioa.phase_memory import reset_high_water
    from ioa.students.hf import HFStudent

    cfg = StudentConfig(max_steps_per_stage=steps, epochs=1.0, shape_multiple=multiple)
    cache = Path(os.environ.get("IOA_CACHE", ROOT / ".cache"))
    student = HFStudent(cfg, cache, progress=False)
    examples = run_mix_examples(cfg.batch_size * cfg.grad_accum * steps)
    reset_high_water()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        metrics = student.train(examples, Path(out), max_steps=steps)
    seconds = time.perf_counter() - start
    rss, peak = rss_kb(os.getpid())
    return {"shape_multiple": multiple, "precision": student.precision, "peak_mb": round(peak / 1024),
            "rss_after_mb": round(rss / 1024), "seconds": round(seconds, 1),
            "final_loss": round(metrics["final_loss"], 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=1, help="2: also the reverse order")
    ap.add_argument("--multiple", type=int, default=32, help="the padded variant's shape multiple")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        print(json.dumps(one_round(args.child, args.steps)))
        return
    orders = [(1, args.multiple), (args.multiple, 1)][: max(1, args.repeats)]
    runs: dict[int, list[dict]] = {1: [], args.multiple: []}
    for order in orders:
        for multiple in order:
            out = subprocess.run([sys.executable, __file__, "--steps", str(args.steps), "--child", str(multiple)],
                                 capture_output=True, text=True, check=True)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            runs[multiple].append(result)
            print(result, flush=True)
    best = {m: min(r, key=lambda x: x["seconds"]) for m, r in runs.items()}
    peak = {m: max(x["peak_mb"] for x in r) for m, r in runs.items()}
    summary = {"steps": args.steps, "threads": os.environ.get("OMP_NUM_THREADS"), "runs": runs,
               "peak_ratio_padded_over_unpadded": round(peak[args.multiple] / peak[1], 3),
               "speed_ratio_padded_over_unpadded": round(best[1]["seconds"] / best[args.multiple]["seconds"], 3)}
    print(f"peak {peak[1]} -> {peak[args.multiple]} MiB (x{summary['peak_ratio_padded_over_unpadded']}), "
          f"speed x{summary['speed_ratio_padded_over_unpadded']} (padded over unpadded, faster run of each)")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
