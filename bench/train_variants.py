"""Speed and peak memory of one training round per attention kernel and micro-batch shape, on a run's own data.

Each variant (training attention, batch_size x grad_accum: the same 8 examples per optimizer step) trains a fresh
default student for `--steps` optimizer steps on the examples of a run's `train.jsonl` (a stage round's file, e.g.
`runs/<run>/stages/0/round-0/train.jsonl`; without one, the procedural teacher's solutions of the default preset's
modules as in bench/train_throughput.py) in its own process, so each peak resident memory (the kernel's high-water
mark, ru_maxrss) is that variant's alone. Reported: seconds per step after the first, loss-bearing (completion)
tokens/s, final loss, peak memory, and each variant's speed against the first one's, measured in the same run;
with `--plot`, every variant's per-step loss on one chart (same data, same order: the curves should overlay).

A variant may change student settings after a third colon, `key=value` joined by `+`, and `head=full` trains with
the full-logits LM head (the path before 2026-12-03), e.g.
`sdpa:2x4:head=full+cast_frozen_weights=false+bf16_base_weights=false+shape_multiple=1+cast_layer_inputs=false+fused_lora=false`.

Run: .venv/bin/python bench/train_variants.py [--train-jsonl F] [--steps 12]
       [--variants sdpa:2x4,eager:2x4,eager:4x2,eager:8x1] [--plot losses.png]; the last line printed is JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from train_throughput import loss_token_share, run_mix_examples  # noqa: E402


def load_examples(path: str | None, n: int):
    from ioa.io import iter_jsonl
    from ioa.types import Example

    if path is None:
        return run_mix_examples(n)
    examples = []
    for line_no, row in iter_jsonl(path):  # names the file and line of a line that is not a JSON object
        try:
            examples.append(Example.from_dict(row))
        except TypeError as err:
            raise SystemExit(f"{path}:{line_no}: not a training example ({err})") from err
    return examples


def parse_settings(text: str) -> dict[str, object]:
    """`key=value+key=value` (student settings; true/false and integers as such) into a dict."""
    settings: dict[str, object] = {}
    for item in filter(None, text.split("+")):
        key, _, value = item.partition("=")
        settings[key] = {"true": True, "false": False}.get(value, int(value) if value.isdigit() else value)
    return settings


def one_variant(spec: str, steps: int, path: str | None) -> dict:
    """One variant `attention:BxA[:settings]` (settings: student fields as `key=value+...`, and `head=full` for
    the full-logits LM head the completion head replaced) trained in this process."""
    from ioa.config import StudentConfig
    from ioa.students import hf_train
    from ioa.students.hf import HFStudent

    attention, shape, *rest = spec.split(":")
    batch, accum = map(int, shape.split("x"))
    settings = parse_settings(rest[0] if rest else "")
    if settings.pop("head", "completion") == "full":
        hf_train.decoder_and_head = lambda model: None
    cfg = StudentConfig(max_steps_per_stage=steps, epochs=1000.0, batch_size=batch, grad_accum=accum,
                        train_attention=attention, **settings)
    student = HFStudent(cfg, Path(os.environ.get("IOA_CACHE", ROOT / ".cache")), progress=False)
    examples = load_examples(path, 8 * steps)
    share = loss_token_share(student, examples)
    with tempfile.TemporaryDirectory() as out:
        metrics = student.train(examples, Path(out), max_steps=steps)
    return {"variant": spec, "s_per_step": round(metrics["s_per_step"], 3),
            "loss_tokens_per_s": round(metrics["steady_tokens_per_s"] * share, 1),
            "final_loss": round(metrics["final_loss"], 4), "train_loss": [round(x, 4) for x in metrics["train_loss"]],
            "peak_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2)}


def plot_losses(results: list[dict], path: str) -> None:
    """Per-step training loss of every variant on one axes: the same data and steps, so the curves should overlay."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for result in results:
        losses = result["train_loss"]
        ax.plot(range(1, len(losses) + 1), losses, marker=".", label=f"{result.get('label') or result['variant']} "
                f"({result['loss_tokens_per_s']:.0f} loss-bearing tokens/s)")
    ax.set(xlabel="optimizer step (8 examples)", ylabel="training loss (completion tokens)", yscale="log",
           title="One training round per variant, the same examples in the same order")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-jsonl", default=None, help="a run's stage-round train.jsonl")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--variants", default="sdpa:2x4,eager:2x4,eager:4x2,eager:8x1",
                        help="attention:batch_sizexgrad_accum[:key=value+...] (student settings; head=full: the "
                        "full-logits head), comma-separated; the first is the baseline")
    parser.add_argument("--plot", default=None, help="write the variants' per-step training loss here (PNG)")
    parser.add_argument("--labels", default=None, help="the variants' names in the plot, comma-separated")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # a child process: one variant
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_variant(args.one, args.steps, args.train_jsonl)))
        return
    results = []
    for variant in args.variants.split(","):
        cmd = [sys.executable, __file__, "--one", variant, "--steps", str(args.steps)]
        if args.train_jsonl:
            cmd += ["--train-jsonl", args.train_jsonl]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        results.append(json.loads(out))
        results[-1]["speed_vs_first"] = round(results[-1]["loss_tokens_per_s"] / results[0]["loss_tokens_per_s"], 3)
        print({k: v for k, v in results[-1].items() if k != "train_loss"}, flush=True)
    for result, label in zip(results, args.labels.split(",") if args.labels else []):
        result["label"] = label
    if args.plot:
        plot_losses(results, args.plot)
    print(json.dumps({"steps": args.steps, "threads": os.environ.get("OMP_NUM_THREADS", "default"),
                      "train_jsonl": args.train_jsonl, "variants": results}))


if __name__ == "__main__":
    main()
