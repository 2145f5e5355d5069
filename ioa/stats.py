"""Paired statistics for comparing two methods on the same seeds and the same held-out items.

One seed's runs share their probes and test items, so a difference between two methods is measured
item by item. `paired_bootstrap` resamples both sources of noise at once: seeds (which modules turned
out deficient, which problems were drawn, training randomness) and, inside each resampled seed, items
per module (the same resampled items for both methods, so the pairing is kept). A group's score is the
mean over its modules of per-module accuracy, as in `ioa compare`'s tables. Pure and deterministic:
the same input and `seed` give the same interval.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Collection, Mapping, Sequence

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


def paired_bootstrap(seeds: Sequence[SeedPairs], n_boot: int = 4000, level: float = 0.95,
                     seed: int = 0) -> PairedInterval | None:
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


def sign_test_p(losses: int, gains: int) -> float:
    """One-sided exact sign test: the chance of at least `losses` losses among the `losses + gains`
    items that changed, if losing and gaining were equally likely. 1.0 when nothing changed."""
    n = losses + gains
    if n == 0 or losses == 0:
        return 1.0
    return sum(math.comb(n, k) for k in range(losses, n + 1)) / 2**n


def item_changes(earlier: Sequence[Mapping], later: Sequence[Mapping],
                 modules: Collection[str] | None = None) -> tuple[int, int]:
    """(losses, gains) from `earlier` to `later` over the items both scored (matched by id), optionally
    only those of `modules`: an item right before and wrong after is a loss, the reverse a gain."""
    before = {it["id"]: bool(it["correct"]) for it in earlier if modules is None or it.get("module") in modules}
    losses = gains = 0
    for it in later:
        if it["id"] in before and (modules is None or it.get("module") in modules):
            was, now = before[it["id"]], bool(it["correct"])
            losses += was and not now
            gains += now and not was
    return losses, gains
