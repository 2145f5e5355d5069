"""The Identifier: attempts -> Diagnosis (gaps, prerequisite edges, connectivity, severity).

Pure functions over a polars frame of attempts (columns learner, module, group, role, correct); no
models and no files. Counting is vectorized (one join and one group-by), never a loop over module pairs.

Rules, exactly as implemented:

* P_L(k) for learner L is L's accuracy on attempts whose role is "problem" and whose module is k; a
  module L only met as a step falls back to L's accuracy on those steps. No attempts -> 0.0.
* Gap(k) = (P_T - P_S) / P_T (thresholds are compared with a 1e-9 tolerance for float noise). P_T = 0
  means the teacher cannot do k: the module is reported as not teachable, its gap is None and it is
  never deficient. Deficient: teachable and gap > tau_gap.
* Prerequisite edges by conditional performance. Inside one group (a composite problem), each step
  attempt on module A is paired with each problem attempt on module B != A by the same learner; only
  the learners in `dependency_learners` (default: the student) are counted, because pooling a
  near-perfect teacher with the student adds (ok, ok) pairs everywhere and manufactures correlation
  between unrelated skills. Over all such pairs, with a = step correct and b = problem correct:
      A -> B  iff  n >= min_support, A failed in at least min_source_failures pairs, B succeeded
                   and A succeeded at least once each, and
                   P(a | b)        >= tau_high   (success on B implies success on A)
                   P(b | not a)    <= tau_low    (failure on A implies failure on B)
                   P(b | a) - P(b | not a) >= tau_dep   (A's success lifts B's success)
  `support` is n, the number of pairs.
* Cycles are broken deterministically: while the graph has a cycle, the weakest edge on it (smallest
  lift, then smallest support, then the lexicographically largest (source, target)) is dropped and a
  warning is issued; dropped edges are kept in the diagnosis.
* A declared prior (`prior` pairs, e.g. the domain's declared prerequisites, with cfg.prior = "declared"):
  a declared A -> B found by the analysis is marked "confirmed"; one not found is still an edge, marked
  "prior", unless the data can test it and contradict it: n >= min_support pairs, A failed at least
  min_source_failures times and succeeded at least once, B succeeded at least min_source_failures times
  (a student who never solves B gives no contrast), and the lift P(b | a) - P(b | not a) <= 0.
  Those are kept in `rejected_prior`. Found edges that were not declared are marked "data".
  An untrained student fails nearly every composite, so on its own the analysis rarely has the
  contrast to find an edge; the prior lets the data confirm or reject instead of having to discover.
* Connectivity(k) = |{modules that depend on k, directly or transitively}| / (m - 1), in [0, 1].
* Severity(k) = alpha * clip(gap, 0, 1) + (1 - alpha) * Connectivity(k) (gap taken as 0 when None).
* Difficulty(k) = longest prerequisite chain ending at k / longest chain in the graph (0 when there
  are no edges): how far up the hierarchy k sits. The Organizer uses it for the difficulty ramp.
"""
from __future__ import annotations

import warnings
from typing import Iterable

import networkx as nx
import polars as pl

from ioa.attempts import attempts_frame
from ioa.config import IdentifierConfig
from ioa.types import Attempt, Diagnosis, Edge, ModuleDiagnosis

# Comparisons with thresholds allow for float noise: (1 - 0.7) / 1 is 0.30000000000000004, and a gap
# of exactly tau_gap must not count as "greater than" it.
EPS = 1e-9


class CycleWarning(UserWarning):
    pass


def module_accuracy(df: pl.DataFrame) -> pl.DataFrame:
    """Per module: p_teacher, p_student, n_teacher, n_student (problem attempts; steps as fallback)."""
    per = df.group_by("module", "learner", "role").agg(
        pl.len().alias("n"), pl.col("correct").sum().alias("ok")
    )
    problems = per.filter(pl.col("role") == "problem").drop("role")
    steps = per.filter(pl.col("role") == "step").drop("role")
    merged = steps.join(problems, on=["module", "learner"], how="full", coalesce=True, suffix="_p")
    merged = merged.select(
        "module",
        "learner",
        pl.when(pl.col("n_p").is_not_null()).then(pl.col("n_p")).otherwise(pl.col("n")).alias("n"),
        pl.when(pl.col("n_p").is_not_null()).then(pl.col("ok_p")).otherwise(pl.col("ok")).alias("ok"),
    )
    wide = merged.pivot(on="learner", index="module", values=["n", "ok"], aggregate_function="sum")
    cols = {}
    for learner in ("teacher", "student"):
        n, ok = f"n_{learner}", f"ok_{learner}"
        n_expr = pl.col(n).fill_null(0) if n in wide.columns else pl.lit(0)
        ok_expr = pl.col(ok).fill_null(0) if ok in wide.columns else pl.lit(0)
        cols[n] = n_expr.cast(pl.Int64)
        cols[f"p_{learner}"] = pl.when(n_expr > 0).then(ok_expr / n_expr).otherwise(0.0).cast(pl.Float64)
    return wide.select("module", **cols).sort("module")


def pair_counts(df: pl.DataFrame, learners: Iterable[str] = ("student",)) -> pl.DataFrame:
    """Per ordered (source=A, target=B): n, n_a, n_b, n_ab over same-group, same-learner pairs."""
    df = df.filter(pl.col("learner").is_in(list(learners)))
    steps = df.filter(pl.col("role") == "step").select(
        "learner", "group", pl.col("module").alias("source"), pl.col("correct").alias("a")
    )
    problems = df.filter(pl.col("role") == "problem").select(
        "learner", "group", pl.col("module").alias("target"), pl.col("correct").alias("b")
    )
    pairs = steps.join(problems, on=["learner", "group"], how="inner")
    pairs = pairs.filter(pl.col("source") != pl.col("target"))
    return pairs.group_by("source", "target").agg(
        pl.len().alias("n"),
        pl.col("a").sum().alias("n_a"),
        pl.col("b").sum().alias("n_b"),
        (pl.col("a") & pl.col("b")).sum().alias("n_ab"),
    )


def _ratio(num: pl.Expr, den: pl.Expr) -> pl.Expr:
    """num / den, 0.0 where den is 0 (rows with a zero denominator never pass an edge's thresholds)."""
    return pl.when(den > 0).then(num / den).otherwise(0.0)


def scored_pairs(counts: pl.DataFrame) -> pl.DataFrame:
    """pair_counts plus p_a_given_b, p_b_given_not_a, p_b_given_a, lift and n_fail_a per (source, target)."""
    n_fail_a = pl.col("n") - pl.col("n_a")
    return counts.with_columns(
        _ratio(pl.col("n_ab"), pl.col("n_b")).alias("p_a_given_b"),
        _ratio(pl.col("n_b") - pl.col("n_ab"), n_fail_a).alias("p_b_given_not_a"),
        _ratio(pl.col("n_ab"), pl.col("n_a")).alias("p_b_given_a"),
        n_fail_a.alias("n_fail_a"),
    ).with_columns((pl.col("p_b_given_a") - pl.col("p_b_given_not_a")).alias("lift"))


def _edge(r: dict, origin: str = "data") -> Edge:
    return Edge(source=r["source"], target=r["target"], support=int(r["n"]),
                p_source_ok_given_target_ok=round(r["p_a_given_b"], 6),
                p_target_ok_given_source_fail=round(r["p_b_given_not_a"], 6), lift=round(r["lift"], 6), origin=origin)


def candidate_edges(counts: pl.DataFrame, cfg: IdentifierConfig) -> list[Edge]:
    """Apply the three conditional-performance thresholds and the minimum support."""
    eps = EPS
    kept = scored_pairs(counts).filter(
        (pl.col("n") >= cfg.min_support)
        & (pl.col("n_b") > 0) & (pl.col("n_a") > 0) & (pl.col("n_fail_a") >= cfg.min_source_failures)
        & (pl.col("p_a_given_b") >= cfg.tau_high - eps)
        & (pl.col("p_b_given_not_a") <= cfg.tau_low + eps)
        & (pl.col("lift") >= cfg.tau_dep - eps)
    ).sort("source", "target")
    return [_edge(r) for r in kept.iter_rows(named=True)]


def with_prior(found: list[Edge], counts: pl.DataFrame, prior: Iterable[tuple[str, str]],
               cfg: IdentifierConfig) -> tuple[list[Edge], list[Edge]]:
    """(edges, rejected): found edges marked data/confirmed, plus declared edges the data do not reject."""
    import dataclasses

    declared = set(prior)
    found_keys = {(e.source, e.target) for e in found}
    edges = [dataclasses.replace(e, origin="confirmed" if (e.source, e.target) in declared else "data") for e in found]
    rows = {(r["source"], r["target"]): r for r in scored_pairs(counts).iter_rows(named=True)}
    rejected = []
    for key in sorted(declared - found_keys):
        r = rows.get(key)
        if r is None:  # never observed together: nothing to test, the declaration stands
            edges.append(Edge(key[0], key[1], 0, 0.0, 0.0, 0.0, origin="prior"))
            continue
        # A student who never solves B gives no contrast either way: that is no evidence against A -> B.
        testable = (r["n"] >= cfg.min_support and r["n_fail_a"] >= cfg.min_source_failures and r["n_a"] > 0
                    and r["n_b"] >= cfg.min_source_failures)
        (rejected if testable and r["lift"] <= EPS else edges).append(_edge(r, origin="prior"))
    return sorted(edges, key=lambda e: (e.source, e.target)), rejected


def prerequisite_graph(nodes: Iterable[str], edges: Iterable[Edge]) -> nx.DiGraph:
    """The modules, prerequisite -> dependent. Nodes and edges go in sorted order, so every traversal
    networkx makes of the graph (and so every cycle found and every order) is deterministic."""
    graph = nx.DiGraph()
    graph.add_nodes_from(sorted(set(nodes)))
    graph.add_edges_from(sorted((e.source, e.target) for e in edges))
    return graph


def break_cycles(edges: list[Edge]) -> tuple[list[Edge], list[Edge]]:
    """(kept, dropped): drop the weakest edge of each cycle until the graph is acyclic. The cycle is the
    first one a depth-first search in sorted order meets (`nx.find_cycle`)."""
    kept = {(e.source, e.target): e for e in edges}
    dropped: list[Edge] = []
    while True:
        try:
            cycle = nx.find_cycle(prerequisite_graph((n for pair in kept for n in pair), kept.values()))
        except nx.NetworkXNoCycle:
            return sorted(kept.values(), key=lambda e: (e.source, e.target)), dropped
        weakest = min((kept[c] for c in cycle), key=lambda e: (e.lift, e.support, _desc(e.source), _desc(e.target)))
        del kept[(weakest.source, weakest.target)]
        dropped.append(weakest)
        path = " -> ".join([cycle[0][0]] + [t for _, t in cycle])
        warnings.warn(f"prerequisite cycle {path}: dropped weakest edge {weakest.source} -> {weakest.target}",
                      CycleWarning, stacklevel=2)


def _desc(text: str) -> tuple[int, ...]:
    """Sort key that orders strings in reverse, so min() picks the lexicographically largest."""
    return tuple(-ord(c) for c in text) + (0,)


def topological_order(nodes: Iterable[str], edges: Iterable[Edge]) -> list[str]:
    """Prerequisites first; ties in sorted order."""
    return list(nx.lexicographical_topological_sort(prerequisite_graph(nodes, edges)))


def descendants(nodes: list[str], edges: list[Edge]) -> dict[str, set[str]]:
    """Every module's transitive dependents."""
    graph = prerequisite_graph(nodes, edges)
    return {n: nx.descendants(graph, n) for n in nodes}


def depths(nodes: list[str], edges: list[Edge]) -> dict[str, int]:
    """Length of the longest prerequisite chain ending at each module: its topological generation (a
    module joins the generation after the last of its prerequisites). Assumes an acyclic graph."""
    generations = nx.topological_generations(prerequisite_graph(nodes, edges))
    return {n: depth for depth, layer in enumerate(generations) for n in layer}


def severity(gap: float | None, connectivity: float, alpha: float) -> float:
    g = min(max(gap or 0.0, 0.0), 1.0)
    return alpha * g + (1.0 - alpha) * connectivity


def diagnose(attempts: pl.DataFrame | Iterable[Attempt], cfg: IdentifierConfig,
             prior: Iterable[tuple[str, str]] = ()) -> Diagnosis:
    """The whole Identifier: accuracies, gaps, edges (acyclic), connectivity and severity per module.
    `prior`: declared (prerequisite, module) pairs, used when cfg.prior is "declared"."""
    df = attempts if isinstance(attempts, pl.DataFrame) else attempts_frame(attempts)
    acc = module_accuracy(df)
    modules = acc["module"].to_list()
    counts = pair_counts(df, cfg.dependency_learners)
    found = candidate_edges(counts, cfg)
    rejected: list[Edge] = []
    if cfg.prior == "declared":
        inside = set(modules)
        found, rejected = with_prior(found, counts, [(a, b) for a, b in prior if a in inside and b in inside], cfg)
    edges, dropped = break_cycles(found)
    known = set(modules)
    edges = [e for e in edges if e.source in known and e.target in known]
    below = descendants(modules, edges)
    depth = depths(modules, edges)
    max_depth = max(depth.values(), default=0)
    denom = max(len(modules) - 1, 1)
    out = []
    for row in acc.iter_rows(named=True):
        k, pt, ps = row["module"], row["p_teacher"], row["p_student"]
        gap = (pt - ps) / pt if pt > 0 else None
        conn = len(below[k]) / denom
        out.append(ModuleDiagnosis(
            id=k, p_teacher=round(pt, 6), p_student=round(ps, 6),
            gap=None if gap is None else round(gap, 6),
            deficient=gap is not None and gap > cfg.tau_gap + EPS,
            teachable=pt > 0, connectivity=round(conn, 6),
            severity=round(severity(gap, conn, cfg.alpha), 6),
            difficulty=round(depth[k] / max_depth, 6) if max_depth else 0.0,
            n_teacher=row["n_teacher"], n_student=row["n_student"],
        ))
    return Diagnosis(modules=tuple(out), edges=tuple(edges), dropped_edges=tuple(dropped),
                     rejected_prior=tuple(rejected))


def parse_diagnosis(data: object, source: str) -> Diagnosis:
    """A Diagnosis from JSON data, checked field by field; fields the contract omits are derived.

    Required per module: id, p_teacher, p_student, deficient, severity. Optional: gap, teachable
    (default P_T > 0), connectivity (0), difficulty (normalized depth recomputed from the edges).
    Required per edge: source, target.
    """
    if not isinstance(data, dict) or not isinstance(data.get("modules"), list):
        raise ValueError(f"{source}: expected an object with a 'modules' list")
    modules, edges = [], []
    for i, m in enumerate(data["modules"]):
        where = f"{source}: modules[{i}]"
        if not isinstance(m, dict):
            raise ValueError(f"{where}: expected an object")
        for key, kind in (("id", str), ("p_teacher", (int, float)), ("p_student", (int, float)),
                          ("deficient", bool), ("severity", (int, float))):
            if not isinstance(m.get(key), kind) or (kind is not bool and isinstance(m.get(key), bool)):
                raise ValueError(f"{where}.{key}: missing or of the wrong type (got {m.get(key)!r})")
        modules.append(m)
    ids = {m["id"] for m in modules}
    for i, e in enumerate(data.get("edges", [])):
        if not isinstance(e, dict) or e.get("source") not in ids or e.get("target") not in ids:
            raise ValueError(f"{source}: edges[{i}]: source and target must name modules in 'modules'")
        edges.append(Edge(source=e["source"], target=e["target"], support=int(e.get("support", 0)),
                          p_source_ok_given_target_ok=float(e.get("p_source_ok_given_target_ok", 1.0)),
                          p_target_ok_given_source_fail=float(e.get("p_target_ok_given_source_fail", 0.0)),
                          lift=float(e.get("lift", 1.0))))
    edges, dropped = break_cycles(edges)
    depth = depths(sorted(ids), edges)
    top = max(depth.values(), default=0)
    out = tuple(ModuleDiagnosis(
        id=m["id"], p_teacher=float(m["p_teacher"]), p_student=float(m["p_student"]), gap=m.get("gap"),
        deficient=m["deficient"], teachable=bool(m.get("teachable", m["p_teacher"] > 0)),
        connectivity=float(m.get("connectivity", 0.0)), severity=float(m["severity"]),
        difficulty=float(m["difficulty"]) if "difficulty" in m else (depth[m["id"]] / top if top else 0.0),
        n_teacher=int(m.get("n_teacher", 0)), n_student=int(m.get("n_student", 0)),
    ) for m in modules)
    return Diagnosis(modules=out, edges=tuple(edges), dropped_edges=tuple(dropped))
