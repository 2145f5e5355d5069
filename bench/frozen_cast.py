"""The student's bf16 path with its frozen linear weights cast once (`student.cast_frozen_weights`, the default)
against autocast recasting them at every matmul (the path every run used until 2026-12-05), in one process.

- generation: `HFStudent.generate` (continuous decoding, the answer-line stop) on --prompts prompts of the
  default preset's modules over its probe band, as a run's probing, gates and final evaluation see them;
- training: `HFStudent.train` on a default run's data mix (bench/train_throughput.py's), --steps steps plus
  one warm-up, a fresh student with the same seeded adapter each time, the trainer's steady s/step.

The two paths alternate (--repeats rounds, best of each), so load on a shared machine falls on both alike.
Each side's peak resident memory is the kernel's high-water mark reset before it (ioa/phase_memory.py).
Same prompts, greedy: the completions must be identical; same batches: the losses and the trained adapter too.

Run on a CPU with AVX-512 BF16 or AMX (elsewhere autocast to bf16 is emulated and slow):
    OMP_NUM_THREADS=1 .venv/bin/python bench/frozen_cast.py [--prompts 96] [--steps 6] [--repeats 2]
The last line printed is JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from train_throughput import default_preset_problems, run_mix_examples  # noqa: E402

from ioa.answers import prompt_for  # noqa: E402
from ioa.config import PRESETS, StudentConfig  # noqa: E402
from ioa.paths import user_cache_dir  # noqa: E402
from ioa.phase_memory import high_water_mb, reset_high_water  # noqa: E402
from ioa.students.hf import HFStudent, resolve_device, resolve_precision  # noqa: E402


def default_prompts(n: int) -> list[str]:
    return [prompt_for(p) for p in default_preset_problems(n, 5000)]


def generation(student: HFStudent, prompts: list[str], cast: bool) -> tuple[list[str], float, float | None]:
    student.cfg = student.cfg.model_copy(update={"cast_frozen_weights": cast})
    reset_high_water()
    outputs = student.generate(prompts)
    return outputs, student.last_generation["seconds"], high_water_mb()


def training(cfg: StudentConfig, examples, steps: int, cast: bool) -> tuple[dict, dict, float | None]:
    student = HFStudent(cfg.model_copy(update={"cast_frozen_weights": cast}), user_cache_dir(), progress=False)
    reset_high_water()
    with tempfile.TemporaryDirectory() as out:
        metrics = student.train(examples, Path(out), max_steps=steps)
    peak = high_water_mb()
    return metrics, student.trainable_state(), peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prompts", type=int, default=96)
    ap.add_argument("--steps", type=int, default=6, help="measured training steps, after one warm-up step")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    # precision "bf16" would be honoured even where it is emulated, so ask what "auto" picks here
    if resolve_precision("auto", resolve_device("auto")) != "bf16":
        sys.exit("this machine does not run the student in bf16: nothing to compare")
    cfg = StudentConfig(**{k: v for k, v in PRESETS["default"]["student"].items() if k != "max_steps_per_stage"},
                        precision="bf16", max_steps_per_stage=args.steps + 1)

    prompts = default_prompts(args.prompts)
    student = HFStudent(cfg, user_cache_dir(), progress=False)
    student.generate(prompts[:4])  # warm-up
    gen: dict[bool, dict] = {True: {}, False: {}}
    outs: dict[bool, list[str]] = {}
    examples = run_mix_examples(cfg.batch_size * cfg.grad_accum * (args.steps + 1))
    train: dict[bool, dict] = {True: {}, False: {}}
    states: dict[bool, dict] = {}
    losses: dict[bool, list[float]] = {}
    for _ in range(args.repeats):
        for cast in (False, True):
            outs[cast], seconds, peak = generation(student, prompts, cast)
            best = gen[cast]
            best["seconds"] = round(min(best.get("seconds", seconds), seconds), 2)
            best["peak_mb"] = round(max(best.get("peak_mb", 0), peak or 0))
            print(f"generate cast={cast}: {seconds:.1f} s, peak {peak:.0f} MiB", file=sys.stderr, flush=True)
        for cast in (False, True):
            metrics, states[cast], peak = training(cfg, examples, args.steps + 1, cast)
            losses[cast] = metrics["train_loss"]
            best = train[cast]
            best["s_per_step"] = round(min(best.get("s_per_step", metrics["s_per_step"]), metrics["s_per_step"]), 3)
            best["peak_mb"] = round(max(best.get("peak_mb", 0), peak or 0))
            print(f"train cast={cast}: {metrics['s_per_step']:.2f} s/step, peak {peak:.0f} MiB", file=sys.stderr,
                  flush=True)
    same_state = states[True].keys() == states[False].keys() and all(
        torch.equal(states[True][k], states[False][k]) for k in states[True])
    print(json.dumps({
        "threads": torch.get_num_threads(), "prompts": len(prompts), "steps": args.steps,
        "generate": {"per_op": gen[False], "cast_once": gen[True],
                     "wall_ratio": round(gen[False]["seconds"] / gen[True]["seconds"], 2),
                     "identical": f"{sum(a == b for a, b in zip(outs[False], outs[True]))}/{len(prompts)}"},
        "train": {"per_op": train[False], "cast_once": train[True],
                  "step_ratio": round(train[False]["s_per_step"] / train[True]["s_per_step"], 2),
                  "same_losses": losses[True] == losses[False], "same_adapter": same_state},
    }))


if __name__ == "__main__":
    main()
