"""Per-module paired differences between two methods' finished runs, with the bootstrap `ioa compare` uses.

`ioa compare` reports groups (deficient, known, all modules); the question after a comparison is usually which
module carried a difference. For each module deficient in every seed's reference run (or every module with
`--all`), this prints both methods' mean accuracy after, the paired difference over the seeds both ran with its
95% interval (seeds, then items within a seed; ioa.stats.paired_bootstrap) and how many seeds the method was
ahead, level or behind.

Run: .venv/bin/python bench/per_module_paired.py RUNS_DIR METHOD REFERENCE [--seeds 0,1,2] [--all]
     e.g. bench/per_module_paired.py runs/dflt ioa-cumul ioa   (run folders RUNS_DIR/<method>-s<seed>)
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ioa.compare import load_result, seed_pairs  # noqa: E402
from ioa.stats import paired_bootstrap  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path)
    parser.add_argument("method")
    parser.add_argument("reference")
    parser.add_argument("--seeds", default=None, help="comma-separated; default: every seed both finished")
    parser.add_argument("--all", action="store_true", help="every module, not only those deficient in every seed")
    args = parser.parse_args()
    def finished(method: str) -> set[int]:  # ioa-s3, not ioa-share-s3
        found = (re.fullmatch(rf"{re.escape(method)}-s(\d+)", p.parent.name)
                 for p in args.runs.glob(f"{method}-s*/summary.json"))
        return {int(m.group(1)) for m in found if m}

    seeds = ([int(s) for s in args.seeds.split(",")] if args.seeds
             else sorted(finished(args.method) & finished(args.reference)))
    if not seeds:
        raise SystemExit(f"{args.runs}: no seed with both {args.method}-s<seed> and {args.reference}-s<seed> finished")
    pairs = [(load_result(args.runs / f"{args.method}-s{s}"), load_result(args.runs / f"{args.reference}-s{s}"))
             for s in seeds]
    modules = sorted(set.intersection(*(set(ref.after) if args.all else set(ref.deficient) for _, ref in pairs)))
    print(f"{args.method} - {args.reference}, seeds {','.join(map(str, seeds))} (points; 95% interval)")
    items = [seed_pairs(mine, ref, "all") for mine, ref in pairs]  # per seed: module -> both runs' items
    for m in modules:
        diffs = [mine.after.get(m, 0.0) - ref.after.get(m, 0.0) for mine, ref in pairs]
        ahead, level, behind = (sum(d > 1e-9 for d in diffs), sum(abs(d) <= 1e-9 for d in diffs),
                                sum(d < -1e-9 for d in diffs))
        ci = paired_bootstrap([{m: seed[m]} for seed in items if m in seed])
        mean_a = 100 * sum(mine.after.get(m, 0.0) for mine, _ in pairs) / len(pairs)
        mean_b = 100 * sum(ref.after.get(m, 0.0) for _, ref in pairs) / len(pairs)
        interval = f"{100 * ci.mean:+.1f} [{100 * ci.low:+.1f}, {100 * ci.high:+.1f}] {ci.verdict}" if ci else "n/a"
        print(f"  {m:28s} {mean_a:5.1f} vs {mean_b:5.1f}  {interval}  {ahead}/{level}/{behind}")


if __name__ == "__main__":
    main()
