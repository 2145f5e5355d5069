"""Paired statistics for comparing two methods on the same seeds and the same held-out items.

One seed's runs share their probes and test items, so a difference between two methods is measured
item by item. `paired_bootstrap` resamples both sources of noise at once: seeds (which modules turned
out deficient, which problems were drawn, training randomness) and, inside each resampled seed, items
per module (the same resampled items for both methods, so the pairing is kept). A group's score is the
mean over its modules of per-module accuracy, as in `ioa compare`'s tables. Pure and deterministic:
the same input and `seed` give the same interval.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

# module -> (method's correctness per item, reference's correctness per item), aligned by item
SeedPairs = Mapping[str, tuple[Sequence[bool], Sequence[bool]]]


@dataclass(frozen=True)
class PairedInterval:
    """Mean paired difference (method - reference, accuracy in [-1, 1]) with a percentile interval."""

    mean: float
    low: float
    high: float
    seeds: int
    level: float = 0.95

    @property
    def verdict(self) -> str:
        """'ahead' / 'behind' when the whole interval is on one side of 0, else 'within noise'."""
        if self.low > 1e-12:
            return "ahead"
        if self.high < -1e-12:
            return "behind"
        return "within noise"

    def to_dict(self) -> dict[str, float | int | str]:
        return {"mean": round(self.mean, 6), "low": round(self.low, 6), "high": round(self.high, 6),
                "seeds": self.seeds, "level": self.level, "verdict": self.verdict}


def paired_bootstrap(seeds: Sequence[SeedPairs], n_boot: int = 4000, level: float = 0.95, seed: int = 0) -> PairedInterval | None:
    """The paired difference of group means over `seeds` (each: that seed's modules of the group) and
    its bootstrap interval, resampling seeds and, within each, items per module. None without data."""
    seeds = [s for s in seeds if any(len(a) for a, _ in s.values())]
    if not seeds:
        return None
    rng = np.random.default_rng(seed)
    observed, per_seed = [], np.empty((n_boot, len(seeds)))
    for j, pairs in enumerate(seeds):
        diffs_obs, diffs_boot = [], []
        for module in sorted(pairs):
            a, b = (np.asarray(x, dtype=float) for x in pairs[module])
            if len(a) != len(b):
                raise ValueError(f"module {module}: {len(a)} items for the method, {len(b)} for the reference")
            if not len(a):
                continue
            diffs_obs.append(a.mean() - b.mean())
            idx = rng.integers(0, len(a), size=(n_boot, len(a)))
            diffs_boot.append((a[idx] - b[idx]).mean(axis=1))
        observed.append(float(np.mean(diffs_obs)))
        per_seed[:, j] = np.mean(diffs_boot, axis=0)
    pick = rng.integers(0, len(seeds), size=(n_boot, len(seeds)))
    boot = np.take_along_axis(per_seed, pick, axis=1).mean(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(boot, [tail, 1 - tail])
    return PairedInterval(float(np.mean(observed)), float(low), float(high), len(seeds), level)
