"""Every method x seeds on the built-in arithmetic domain at an equal budget, then `ioa compare`.

    python bench/compare_methods.py [--seeds 0,1,2] [--methods ioa,vanilla,...] [--preset compare] [--out runs/compare]

Each run is its own `ioa run` process (the real default student, SmolLM2-135M on the CPU) in
OUT/<method>-s<seed>; a run that already finished is kept and one that was stopped is resumed, so the
script can be killed and started again. The comparison lands in OUT/report/compare.{md,html,json}.
The `compare` preset: four modules, held-out test items apart from the probes, caps of 144 new
examples, 24 optimizer steps and 600 teacher calls per method (about 3 minutes per run here).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
METHODS = ["ioa", "vanilla", "self-instruct", "error-targeted", "ioa-no-identifier", "ioa-no-organizer", "ioa-no-adapter"]


def ioa(*args: str) -> list[str]:
    return [sys.executable, "-m", "ioa.cli", *args]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--preset", default="compare")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "compare")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    methods = args.methods.split(",")
    dirs, timings = [], {}
    for seed in seeds:  # seeds outermost: a stopped bench still has whole seeds to compare
        for method in methods:
            run_dir = args.out / f"{method}-s{seed}"
            dirs.append(run_dir)
            if (run_dir / "summary.json").exists():
                continue
            start = time.perf_counter()
            if (run_dir / "config.yaml").exists():
                cmd = ioa("resume", str(run_dir), "--no-progress")
            else:
                sets = [f"method={method}", f"seed={seed}", *args.overrides]
                cmd = ioa("run", "--preset", args.preset, "--run-dir", str(run_dir), "--no-progress",
                          *[x for s in sets for x in ("--set", s)])
            print(f"[{time.strftime('%H:%M:%S')}] {method} seed {seed}", flush=True)
            subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
            timings[run_dir.name] = round(time.perf_counter() - start, 1)
            print(f"  {timings[run_dir.name]} s", flush=True)
    subprocess.run(ioa("compare", *map(str, dirs), "--out", str(args.out / "report")), check=True, cwd=ROOT)
    print(json.dumps({"runs": len(dirs), "seconds_per_run": timings}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
