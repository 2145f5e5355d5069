"""Every method x seeds on the built-in arithmetic domain at an equal budget, then `ioa compare`.

    python bench/compare_methods.py [--seeds 0,1,2] [--methods ioa,vanilla,...] [--preset compare] [--out runs/compare]
                                    [--jobs N]

Each run is its own `ioa run` process (the real default student, SmolLM2-135M on the CPU) in
OUT/<method>-s<seed>; a run that already finished is kept and one that was stopped is resumed, so the
script can be killed and started again. The comparison lands in OUT/report/compare.{md,html,json}.
The `compare` preset: four modules (two facts the student knows, column addition under multi-digit
multiplication), held-out test items apart from the probes, caps of 128 new examples, 20 optimizer
steps and 600 teacher calls per method (5-12 minutes per run on one thread here; `--jobs 2` runs two
seeds side by side). Every method at a seed starts from the
same pre-training files (probes, test items, the untrained student's answers), computed once by the
seed's first run.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from ioa.config import METHODS  # noqa: E402  (the bench runs from a checkout, the package need not be installed)


def ioa(*args: str) -> list[str]:
    return [sys.executable, "-m", "ioa.cli", *args]


SHARED = ("probes.jsonl", "attempts.jsonl", "responses_before.jsonl", "diagnosis.json", "test_items.jsonl",
          "test_before.json", "probe_usage.json")


def parse_variant(text: str) -> tuple[str, str, list[str]]:
    """'NAME=METHOD,key=value,...' -> (NAME, METHOD, ['key=value', ...]); a plain method name is itself."""
    if "=" not in text.split(",")[0]:
        return text, text, []
    name, rest = text.split("=", 1)
    method, *sets = re.split(r",(?![^\[]*\])", rest)  # a comma inside [...] belongs to a list value
    return name, method, sets


def run_sets(name: str, method: str, sets: list[str], seed: int, args: argparse.Namespace) -> list[str]:
    return [f"method={method}", f"seed={seed}", *([f"label={name}"] if name != method else []), *args.overrides, *sets]


def share_pretraining(first: Path, run_dir: Path, method: str, seed: int, args: argparse.Namespace,
                      sets: list[str]) -> None:
    """Start a run from the seed's first run's pre-training files: the same probes, test items and the
    untrained student's answers (identical for every method at a seed), so they are computed once per
    seed. Only IOA and its ablations spend teacher calls on probing (probe_usage "counted")."""
    import shutil

    sys.path.insert(0, str(ROOT))
    from ioa.config import config_to_yaml, load_config
    from ioa.io import atomic_write_json, read_json

    cfg = load_config(None, args.preset, sets)
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in SHARED:
        if (first / name).exists():
            shutil.copy2(first / name, run_dir / name)
    usage = read_json(run_dir / "probe_usage.json")
    atomic_write_json(run_dir / "probe_usage.json", {**usage, "counted": method.startswith("ioa")})
    (run_dir / "config.yaml").write_text(config_to_yaml(cfg))


def matched_budget(first: Path) -> list[str]:
    """Caps equal to what the seed's first run used (steps, examples, teacher calls), for presets without caps
    of their own such as the default. The first run's teacher calls include its probing, which the other
    methods do not spend (their probe_usage is not counted), so they may synthesize with a few more calls."""
    from ioa.io import read_json

    summary = first / "summary.json"
    if not summary.exists():
        raise SystemExit(f"--match-budget: {summary} is missing; the seed's first run must finish first")
    used = read_json(summary)["budget"]["used"]
    return [f"budget.max_steps={used['steps']}", f"budget.max_examples={used['examples']}",
            f"budget.max_teacher_calls={used['teacher_calls']}"]


def run_seed(seed: int, methods: list[str], args: argparse.Namespace, env: dict[str, str]) -> dict[str, float]:
    """Every method at one seed, in order (the first computes the pre-training files the rest share)."""
    timings = {}
    for spec in methods:
        name, method, extra = parse_variant(spec)
        run_dir = args.out / f"{name}-s{seed}"
        if (run_dir / "summary.json").exists():
            continue
        start = time.perf_counter()
        first = args.out / f"{parse_variant(methods[0])[0]}-s{seed}"
        sets = run_sets(name, method, extra, seed, args)
        if args.match_budget and run_dir != first:
            sets += matched_budget(first)
        if not (run_dir / "config.yaml").exists() and run_dir != first and (first / "summary.json").exists():
            share_pretraining(first, run_dir, method, seed, args, sets)
        if (run_dir / "config.yaml").exists():
            cmd = ioa("resume", str(run_dir), "--no-progress")
        else:
            cmd = ioa("run", "--preset", args.preset, "--run-dir", str(run_dir), "--no-progress",
                      *[x for s in sets for x in ("--set", s)])
        print(f"[{time.strftime('%H:%M:%S')}] {name} seed {seed}", flush=True)
        subprocess.run(cmd, check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
        timings[run_dir.name] = round(time.perf_counter() - start, 1)
        print(f"[{time.strftime('%H:%M:%S')}] {run_dir.name} done in {timings[run_dir.name]} s", flush=True)
    return timings


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated methods; ';'-separated when a "
                    "variant NAME=METHOD,key=value,... is among them (its runs are labelled NAME in the comparison)")
    ap.add_argument("--preset", default="compare")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "compare")
    ap.add_argument("--jobs", type=int, default=1,
                    help="seeds run side by side, each with cores/jobs torch threads (default 1: one seed at a time)")
    ap.add_argument("--match-budget", action="store_true",
                    help="cap every method after the first at the first run's steps, examples and teacher calls "
                         "(for presets without caps, e.g. --preset default --methods ioa,vanilla)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    methods = args.methods.split(";") if ";" in args.methods or "=" in args.methods else args.methods.split(",")
    env = dict(os.environ)
    if args.jobs > 1:  # torch threads that outnumber the cores wait on each other (measured ~10x slower)
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // args.jobs))
    timings: dict[str, float] = {}
    # A seed is a chain (its first run's files are shared by the rest); chains run side by side. Seeds
    # in the given order, so a stopped bench still has whole seeds to compare.
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for done in pool.map(lambda seed: run_seed(seed, methods, args, env), seeds):
            timings.update(done)
    dirs = [args.out / f"{parse_variant(m)[0]}-s{seed}" for seed in seeds for m in methods]
    subprocess.run(ioa("compare", *map(str, dirs), "--out", str(args.out / "report")), check=True, cwd=ROOT)
    print(json.dumps({"runs": len(dirs), "seconds_per_run": timings}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
