"""The report's figures: dependency graph, mastery curves, accuracy before/after and training loss.

Every function takes plain data already read from the run directory and returns a matplotlib Figure
(or None when there is nothing to draw); `png_bytes` renders one with the Agg backend and closes it.
The graph layout: layers by longest-path depth over prerequisite edges (networkx's topological
generations), ordered within a layer by a few barycenter sweeps to reduce crossings (networkx has no
layered layout that orders a layer; Graphviz's `dot` does, but is not a dependency).
"""
from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import matplotlib
import networkx as nx

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

DEFICIENT, TAUGHT, FINE = "#e06666", "#f6b26b", "#b6d7a8"
LABELLED_NODES = 40  # above this the graph is drawn as dots without labels
MAX_PANELS = 24
MAX_BARS = 60


def png_bytes(fig: Figure) -> bytes:
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)
    return buf.getvalue()


# --- dependency graph ---------------------------------------------------------------------------

def layer_depths(ids: Sequence[str], edges: Sequence[tuple[str, str]]) -> dict[str, int]:
    """Longest prerequisite chain ending at each node (0 for a node with no prerequisite), by topological
    generations; in generation order, each in the order of `ids` and `edges`, which is the order nodes
    start in within a layer. Nodes on a cycle (not expected: diagnosis edges are acyclic) share a layer."""
    graph = nx.DiGraph()
    graph.add_nodes_from(ids)
    graph.add_edges_from(edges)
    if not nx.is_directed_acyclic_graph(graph):
        merged = nx.condensation(graph)
        layer = {c: d for d, gen in enumerate(nx.topological_generations(merged)) for c in gen}
        return {n: layer[merged.graph["mapping"][n]] for n in ids}
    return {n: d for d, gen in enumerate(nx.topological_generations(graph)) for n in gen}


def _sweep(layers: list[list[str]], neighbours: dict[str, list[str]], order: range) -> None:
    """Reorder each layer in `order` by the mean position of each node's neighbours in other layers."""
    pos = {n: i - (len(layer) - 1) / 2 for layer in layers for i, n in enumerate(layer)}
    for d in order:
        def key(n: str) -> float:
            near = [pos[m] for m in neighbours[n]]
            return sum(near) / len(near) if near else pos[n]
        layers[d] = [n for _, n in sorted(((key(n), i), n) for i, n in enumerate(layers[d]))]
        pos.update((n, i - (len(layers[d]) - 1) / 2) for i, n in enumerate(layers[d]))


def split_long_edges(depth: dict[str, int], edges: Sequence[tuple[str, str]]) -> dict[tuple[str, str], list[str]]:
    """Each edge -> its chain of nodes, with one dummy node per layer it jumps over (added to `depth`)."""
    chains = {}
    for s, t in edges:
        dummies = [f"\0{s}>{t}#{d}" for d in range(depth[s] + 1, depth[t])]
        for d, name in zip(range(depth[s] + 1, depth[t]), dummies):
            depth[name] = d
        chains[(s, t)] = [s, *dummies, t]
    return chains


def graph_layout(ids: Sequence[str], edges: Sequence[tuple[str, str]], sweeps: int = 4):
    """(node -> (layer, position within the layer, centred on 0), edge -> chain of nodes through dummies)."""
    depth = layer_depths(ids, edges)
    chains = split_long_edges(depth, edges)
    layers: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for n in depth:
        layers[depth[n]].append(n)
    preds: dict[str, list[str]] = {n: [] for n in depth}
    succs: dict[str, list[str]] = {n: [] for n in depth}
    for chain in chains.values():
        for a, b in zip(chain, chain[1:]):
            preds[b].append(a)
            succs[a].append(b)
    for _ in range(sweeps):
        _sweep(layers, preds, range(1, len(layers)))
        _sweep(layers, succs, range(len(layers) - 2, -1, -1))
    pos = {n: (d, i - (len(layer) - 1) / 2) for d, layer in enumerate(layers) for i, n in enumerate(layer)}
    return pos, chains


def _legend(ax, **where) -> None:
    handles = [Patch(facecolor=DEFICIENT, edgecolor="black", label="deficient"),
               Patch(facecolor=TAUGHT, edgecolor="black", label="taught (not deficient)"),
               Patch(facecolor=FINE, edgecolor="grey", label="fine")]
    ax.legend(handles=handles, **(where or dict(loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=3, frameon=False)),
              fontsize=9)


def dependency_graph(ids: Sequence[str], edges: Sequence[tuple[str, str]], deficient: set[str],
                     taught: set[str]) -> Figure | None:
    if not ids:
        return None
    pos, chains = graph_layout(ids, edges)
    colour = {n: DEFICIENT if n in deficient else TAUGHT if n in taught else FINE for n in ids}
    if len(ids) > LABELLED_NODES:
        return _graph_dots(ids, edges, pos, colour)
    return _graph_boxes(ids, chains, pos, colour, taught)


def _graph_boxes(ids, chains, pos, colour, taught) -> Figure:
    row_h = 0.6
    col_w = 0.085 * max(len(n) for n in ids) + 1.0  # inches per layer: the widest label plus room for arrows
    n_layers = max(d for d, _ in pos.values()) + 1
    tallest = max(sum(1 for d, _ in pos.values() if d == k) for k in range(n_layers))
    fig, ax = plt.subplots(figsize=(max(4.0, n_layers * col_w), max(2.0, row_h * tallest + 0.8)))
    ax.set_xlim(-col_w / 2, (n_layers - 0.5) * col_w)
    ax.set_ylim(-(tallest / 2) * row_h, (tallest / 2) * row_h)
    ax.axis("off")
    boxes = {}
    for n in ids:
        d, p = pos[n]
        boxes[n] = ax.text(d * col_w, -p * row_h, n, ha="center", va="center", fontsize=9, zorder=3,
                           fontweight="bold" if n in taught else "normal",
                           bbox=dict(boxstyle="round,pad=0.3", facecolor=colour[n],
                                     edgecolor="black" if n in taught else "grey"))
    arrow = dict(color="#444444", lw=1.0)
    for chain in chains.values():
        s, t, via = chain[0], chain[-1], [(pos[n][0] * col_w, -pos[n][1] * row_h) for n in chain[1:-1]]
        if not via:
            ax.annotate("", xy=(0, 0.5), xycoords=boxes[t], xytext=(1, 0.5), textcoords=boxes[s], zorder=2,
                        arrowprops=dict(arrowstyle="-|>", shrinkA=1, shrinkB=1, **arrow))
            continue
        ax.annotate("", xy=via[0], xycoords="data", xytext=(1, 0.5), textcoords=boxes[s], zorder=2,
                    arrowprops=dict(arrowstyle="-", shrinkA=1, shrinkB=0, **arrow))
        ax.plot([x for x, _ in via], [y for _, y in via], color=arrow["color"], lw=arrow["lw"], zorder=2)
        ax.annotate("", xy=(0, 0.5), xycoords=boxes[t], xytext=via[-1], textcoords="data", zorder=2,
                    arrowprops=dict(arrowstyle="-|>", shrinkA=0, shrinkB=1, **arrow))
    ax.set_title("Discovered prerequisite graph (prerequisite → dependent; columns = depth)", fontsize=10)
    _legend(ax)
    return fig


def _graph_dots(ids, edges, pos, colour) -> Figure:
    n_layers = max(d for d, _ in pos.values()) + 1
    tallest = max(sum(1 for d, _ in pos.values() if d == k) for k in range(n_layers))
    fig, ax = plt.subplots(figsize=(min(16.0, 2 + 1.2 * n_layers), min(12.0, 3 + 0.04 * tallest)))
    xy = {n: (d, -p) for n, (d, p) in pos.items()}
    ax.add_collection(LineCollection([(xy[s], xy[t]) for s, t in edges], colors="#999999", linewidths=0.3, alpha=0.5))
    ax.scatter([xy[n][0] for n in ids], [xy[n][1] for n in ids], c=[colour[n] for n in ids], s=12, edgecolors="#555555",
               linewidths=0.3, zorder=3)
    ax.set_xlabel("depth (longest prerequisite chain)")
    ax.set_yticks([])
    ax.set_title(f"Discovered prerequisite graph: {len(ids)} modules, {len(edges)} edges (labels omitted)", fontsize=10)
    _legend(ax, loc="upper right", framealpha=0.9)
    return fig


# --- mastery curves, accuracy, loss --------------------------------------------------------------

def mastery_curves(stages: Sequence[dict[str, Any]]) -> Figure | None:
    """One panel per gated stage: P_S/P_T per stage module over rounds, threshold dashed."""
    gated = [s for s in stages if not s["bridge"] and any("ratios" in r for r in s["rounds"])][:MAX_PANELS]
    if not gated:
        return None
    cols = min(3, len(gated))
    rows = -(-len(gated) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    for ax, stage in zip(axes.flat, gated):
        _mastery_panel(ax, stage)
    for ax in list(axes.flat)[len(gated):]:
        ax.axis("off")
    fig.suptitle("Mastery per stage: P_S / P_T at each round's gate", fontsize=11)
    fig.tight_layout()
    return fig


def _mastery_panel(ax, stage: dict[str, Any]) -> None:
    rounds = [r for r in stage["rounds"] if "ratios" in r]
    top = 1.05
    for m in stage["modules"]:
        pts = [(r["round"], r["ratios"][m]) for r in rounds if m in r["ratios"]]
        if pts:
            ax.plot([x for x, _ in pts], [y for _, y in pts], marker="o", label=m)
            top = max(top, max(y for _, y in pts) + 0.05)
    ax.axhline(stage["mastery_threshold"], color="black", linestyle="--", linewidth=1,
               label=f"threshold {stage['mastery_threshold']:.2f}")
    ax.set_ylim(0, top)
    last = max(r["round"] for r in rounds)
    ax.set_xlim(-0.3, last + 0.3)
    ax.set_xticks(range(last + 1))
    ax.set_xlabel("round")
    ax.set_ylabel("P_S / P_T")
    ax.set_title(f"stage {stage['index']}: {rounds[-1].get('action', '?')}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")


def accuracy_bars(rows: Sequence[dict[str, Any]]) -> Figure | None:
    """Horizontal bars per module: student before and after, teacher level as a black tick."""
    rows = list(rows)[:MAX_BARS]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 1.3 + 0.42 * len(rows)), layout="constrained")
    ys = range(len(rows))
    before = [100 * r["before"] for r in rows]
    after = [100 * r["after"] if r["after"] is not None else 0.0 for r in rows]
    ax.barh([y + 0.2 for y in ys], before, height=0.38, color="#aaaaaa", label="student before")
    if any(r["after"] is not None for r in rows):
        ax.barh([y - 0.2 for y in ys], after, height=0.38, color="#3d85c6", label="student after")
    ax.scatter([100 * r["p_teacher"] for r in rows], list(ys), marker="|", s=260, color="black", linewidths=2.2,
               label="teacher", zorder=3)
    ax.set_yticks(list(ys))
    ax.set_yticklabels([("● " if r["deficient"] else "") + r["id"] for r in rows], fontsize=8)
    ax.set_ylim(len(rows) - 0.5, -0.5)  # first row on top
    ax.set_xlim(0, 105)
    ax.set_xlabel("accuracy on held-out probes (%)   ● = deficient")
    ax.grid(axis="x", alpha=0.3)
    fig.legend(fontsize=8, loc="outside lower center", ncol=3, frameon=False)
    ax.set_title("Accuracy per module before and after distillation", fontsize=10)
    return fig


def training_loss(series: Sequence[tuple[int, int, list[float], int | None]]) -> Figure | None:
    """series: (stage, round, logged losses, optimizer steps); rounds are laid end to end on one step axis."""
    series = [s for s in series if s[2]]
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(9, 3.4))
    cmap = plt.get_cmap("tab10")
    offset = 0
    for stage, rnd, losses, steps in series:
        span = steps if steps and steps >= len(losses) else len(losses)
        xs = [offset + span * (i + 1) / len(losses) for i in range(len(losses))]
        ax.plot(xs, losses, color=cmap(stage % 10), marker="." if len(losses) < 30 else None, linewidth=1.2)
        if len(series) <= 20:
            ax.text(offset + span / 2, 1.0, f"s{stage}r{rnd}", transform=ax.get_xaxis_transform(), ha="center",
                    va="bottom", fontsize=7)
        offset += span
        ax.axvline(offset, color="#cccccc", linewidth=0.8, linestyle=":")
    ax.set_xlim(0, offset * 1.02)
    ax.set_xlabel("optimizer step (rounds end to end; colour = stage)")
    ax.set_ylabel("training loss")
    ax.set_title("Training loss per round", fontsize=10, pad=14)
    ax.grid(alpha=0.3)
    return fig
