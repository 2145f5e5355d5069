"""Figures of `ioa compare`: accuracy per method with error bars, and accuracy against examples used."""
from __future__ import annotations

from typing import Any, Sequence

from ioa.report_plots import plt  # Agg backend already selected there


def accuracy_bars(rows: Sequence[dict[str, Any]]):
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(rows)), 3.8))
    width = 0.38
    for k, (key, label, color) in enumerate((("deficient_after", "deficient modules", "#e06666"),
                                             ("all_after", "all modules", "#6fa8dc"))):
        xs = [i + (k - 0.5) * width for i in range(len(rows))]
        means = [100 * (r[key][0] or 0) for r in rows]
        stds = [100 * (r[key][1] or 0) for r in rows]  # one run per method: no error bar
        ax.bar(xs, means, width, yerr=stds, capsize=3, label=label, color=color)
    before = [100 * (r["deficient_before"][0] or 0) for r in rows]
    ax.scatter([i - 0.5 * width for i in range(len(rows))], before, marker="_", s=300, color="black",
               label="deficient, before", zorder=3)
    ax.set_xticks(range(len(rows)), [r["method"] for r in rows], rotation=20, ha="right")
    ax.set_ylabel("held-out accuracy (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def sample_efficiency(rows: Sequence[dict[str, Any]]):
    """Mean accuracy over all modules against new training examples used, one line per run."""
    if not any(c for r in rows for c in r["curves"]):
        return None
    fig, ax = plt.subplots(figsize=(6.5, 4))
    cmap = plt.get_cmap("tab10")
    for i, r in enumerate(rows):
        for j, curve in enumerate(r["curves"]):
            if not curve:
                continue
            ax.plot([p["examples"] for p in curve], [100 * p["mean"] for p in curve], marker="o", ms=3, lw=1.2,
                    alpha=0.8, color=cmap(i % 10), label=r["method"] if j == 0 else None)
    ax.set_xlabel("new training examples used")
    ax.set_ylabel("mean held-out accuracy, all modules (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
