"""Benchmark: `ioa identify` over 1,000 modules and 1,000,000 attempts against a plain json.loads pass.

    python bench/identify_speed.py [--modules 1000] [--attempts 1000000] [--file /tmp/ioa-bench-attempts.jsonl]

Generates a synthetic attempts file (a random layered prerequisite DAG; groups of one problem plus its
prerequisite steps, for teacher and student), then times, in the same run:
  baseline  a plain `json.loads` over every line of the file (the issue's yardstick)
  identify  the `ioa identify --outcomes` command end to end (parse, validate, diagnose, write)
and prints one JSON line with both times and their ratio (target: ratio <= 3).
"""
from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def generate(path: Path, n_modules: int, n_attempts: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    modules = [f"m{i:04d}" for i in range(n_modules)]
    prereqs = {m: rng.sample(modules[:i], k=min(i, rng.randint(1, 3))) if i else [] for i, m in enumerate(modules)}
    mastery = {m: rng.uniform(0.3, 1.0) for m in modules}
    lines, g = [], 0
    while len(lines) < n_attempts:
        target = modules[rng.randrange(1, n_modules)]
        for learner in ("teacher", "student"):
            steps = [(a, learner == "teacher" or rng.random() < mastery[a]) for a in prereqs[target]]
            ok = all(s for _, s in steps) and (learner == "teacher" or rng.random() < mastery[target])
            lines.append(json.dumps({"learner": learner, "module": target, "group": f"g{g}", "role": "problem",
                                     "correct": ok}))
            lines.extend(json.dumps({"learner": learner, "module": a, "group": f"g{g}", "role": "step", "correct": s})
                         for a, s in steps)
        g += 1
    path.write_text("\n".join(lines[:n_attempts]) + "\n")


def time_json_loads(path: Path) -> float:
    start = time.perf_counter()
    with path.open("rb") as f:
        for line in f:
            json.loads(line)
    return time.perf_counter() - start


def time_identify(path: Path) -> float:
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "ioa.cli", "identify", "--outcomes", str(path), "--out", out],
                       check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--modules", type=int, default=1000)
    ap.add_argument("--attempts", type=int, default=1_000_000)
    ap.add_argument("--file", type=Path, default=Path(tempfile.gettempdir()) / "ioa-bench-attempts.jsonl")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if not args.file.exists():
        generate(args.file, args.modules, args.attempts)
    baseline = min(time_json_loads(args.file) for _ in range(args.repeat))
    identify = min(time_identify(args.file) for _ in range(args.repeat))
    print(json.dumps({"modules": args.modules, "attempts": args.attempts, "json_loads_s": round(baseline, 3),
                      "ioa_identify_s": round(identify, 3), "ratio": round(identify / baseline, 2)}))


if __name__ == "__main__":
    main()
