"""Peak resident memory and wall time of one `ioa run`: batches of 8 in one pass against 4 x 2 accumulated.

Both runs start from nothing in fresh run directories under one temporary folder, same preset and
seed, one after the other (one torch thread each unless OMP_NUM_THREADS says otherwise). The
baseline trains with `student.batch_size=8, grad_accum=1` (the default before 2026-12-03); the new
default is `batch_size=4, grad_accum=2`: the same 8 examples per optimizer step and the same loss
(summed over the accumulated micro-batches, divided by their completion tokens), half the
activations held at once. Peak RSS is sampled from /proc/PID/status (VmRSS of the run's process
tree, every 0.25 s) and cross-checked with the kernel's VmHWM of the main process.

Tried and dropped (2026-12-03): a fixed glibc mmap threshold (mallopt M_MMAP_THRESHOLD 64 KiB, or
MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_ at 1 MiB) cut the smoke run's peak from 3.68 to 2.87 GB
but made training 1.8-2.1x and generation 1.4-1.8x slower (every large tensor a fresh mmap and its
page faults); MALLOC_ARENA_MAX=2 changed nothing.

Run: .venv/bin/python bench/peak_memory.py [--preset smoke] [--order before,after]; the last line is JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def rss_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in KiB, 0 when it is gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
        fields = dict(line.split(":", 1) for line in lines if ":" in line)
    except OSError:
        return 0, 0
    def kb(key: str) -> int:
        return int(fields.get(key, "0 kB").split()[0])
    return kb("VmRSS"), kb("VmHWM")


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def tree_rss_kb(pid: int) -> int:
    todo, total = [pid], 0
    while todo:
        p = todo.pop()
        total += rss_kb(p)[0]
        todo += children(p)
    return total


def measure(preset: str, run_dir: Path, overrides: list[str], seed: int) -> dict[str, float]:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    cmd = [sys.executable, "-m", "ioa.cli", "run", "--preset", preset, "--run-dir", str(run_dir), "--no-progress",
           "--quiet", "--set", f"seed={seed}"] + [arg for o in overrides for arg in ("--set", o)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak_tree, peak_hwm = 0, 0
    while proc.poll() is None:
        peak_tree = max(peak_tree, tree_rss_kb(proc.pid))
        peak_hwm = max(peak_hwm, rss_kb(proc.pid)[1])
        time.sleep(0.25)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr.read()[-2000:]}")
    summary = json.loads((run_dir / "summary.json").read_text())
    return {"wall_s": round(wall, 1), "peak_rss_gb": round(peak_tree / 1024**2, 3),
            "peak_hwm_gb": round(peak_hwm / 1024**2, 3),
            "deficient_after": summary["deficient"].get("mean_after"),
            "modules_after": {m["id"]: m["p_student_after"] for m in summary["modules"]}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="smoke")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--order", default="before,after", help="which run goes first (the second sees a warm page cache)")
    args = ap.parse_args()
    settings = {"before": ["student.batch_size=8", "student.grad_accum=1"], "after": []}
    out: dict[str, dict[str, float]] = {}
    runs = Path.cwd() / "runs"
    with tempfile.TemporaryDirectory(prefix="ioa-peak-", dir=runs if runs.is_dir() else None) as tmp:
        for name in args.order.split(","):
            out[name] = measure(args.preset, Path(tmp) / name, settings[name], args.seed)
            print(f"{name}: {out[name]}", flush=True)
    d, t = out["before"], out["after"]
    ratio = t["peak_rss_gb"] / d["peak_rss_gb"]
    print(f"peak RSS {d['peak_rss_gb']:.2f} GB -> {t['peak_rss_gb']:.2f} GB ({ratio:.2f}x); "
          f"wall {d['wall_s']:.0f} s -> {t['wall_s']:.0f} s ({t['wall_s'] / d['wall_s']:.2f}x)")
    print(json.dumps({"preset": args.preset, **{f"{k}_{m}": v for k, r in out.items() for m, v in r.items()}}))


if __name__ == "__main__":
    main()
