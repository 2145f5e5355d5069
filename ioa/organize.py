"""The Organizer: Diagnosis -> Curriculum (which modules, in which stages, at which difficulty).

Pure functions. The rules:

1. Targets: the teachable deficient modules, most severe first, the top `coverage` share of them
   (at least one when any is deficient). Paper: 20-30% per round.
2. Needed prerequisites: every transitive prerequisite of a target that is teachable and not yet
   mastered (P_S / P_T < tau_mastery) joins the curriculum; mastered ones are not re-taught.
3. Stages: repeatedly take the modules whose prerequisites (transitively, through the whole discovered
   graph) already sit in earlier stages, most severe first, at most `max_modules_per_stage` at a time.
   So a prerequisite is always in a strictly earlier stage than anything that depends on it.
4. Difficulty: a stage's difficulty is the mean Difficulty(k) of its modules (normalized depth in the
   prerequisite graph, from the Identifier). Where two adjacent stages differ by more than tau_zpd,
   bridging stages are inserted with evenly spaced difficulties; a bridge holds the modules of the
   stage it leads into, taught at the intermediate difficulty (a warm-up in the zone of proximal
   development), so every adjacent pair differs by at most tau_zpd.
5. Under a step budget every stage gets at least `min_stage_steps` of it: bridges are dropped and
   neighbouring stages merged until it does (`fit_to_steps`).
6. Every stage carries its mastery threshold tau_mastery: it is passed when
   min_k P_S(k) / P_T(k) >= tau_mastery over its modules (the test is `ioa.grading.mastered`).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import networkx as nx

from ioa.config import OrganizerConfig
from ioa.grading import mastered
from ioa.identify import prerequisite_graph
from ioa.types import Curriculum, Diagnosis, ModuleDiagnosis, Stage


def select_targets(diagnosis: Diagnosis, coverage: float) -> list[str]:
    """Teachable deficient modules, most severe first, cut to the coverage share."""
    deficient = [m for m in diagnosis.modules if m.deficient and m.teachable]
    deficient.sort(key=lambda m: (-m.severity, m.id))
    if not deficient:
        return []
    keep = max(1, math.ceil(coverage * len(deficient) - 1e-9))
    return [m.id for m in deficient[:keep]]


def ancestors(diagnosis: Diagnosis) -> dict[str, set[str]]:
    """Every module's transitive prerequisites."""
    graph = prerequisite_graph([m.id for m in diagnosis.modules], diagnosis.edges)
    return {m.id: nx.ancestors(graph, m.id) for m in diagnosis.modules}


def with_needed_prerequisites(diagnosis: Diagnosis, targets: list[str], tau_mastery: float) -> list[str]:
    above = ancestors(diagnosis)
    by_id = {m.id: m for m in diagnosis.modules}
    chosen = set(targets)
    for t in targets:
        for a in above[t]:
            m = by_id[a]
            if m.teachable and not mastered(m.p_student, m.p_teacher, tau_mastery):
                chosen.add(a)
    return sorted(chosen)


def layer_stages(
    selected: list[str], above: dict[str, set[str]], by_id: dict[str, ModuleDiagnosis], per_stage: int
) -> list[list[str]]:
    """Greedy prerequisite-respecting stages, most severe available modules first."""
    remaining = set(selected)
    placed: set[str] = set()
    stages: list[list[str]] = []
    while remaining:
        available = [k for k in remaining if not ((above[k] & set(selected)) - placed)]
        if not available:
            raise ValueError(f"prerequisite cycle among {sorted(remaining)}; the diagnosis must be acyclic")
        available.sort(key=lambda k: (-by_id[k].severity, k))
        stage = available[:per_stage]
        stages.append(stage)
        placed |= set(stage)
        remaining -= set(stage)
    return stages


def cumulative_groups(groups: list[list[str]]) -> list[list[str]]:
    """Each stage's modules with every module an earlier stage introduced before them (`organizer.cumulative`):
    [[a, b], [c], [d]] -> [[a, b], [a, b, c], [a, b, c, d]]. The dependency order is kept, as a module's
    prerequisites are introduced no later than it."""
    out: list[list[str]] = []
    for group in groups:
        earlier = out[-1] if out else []
        out.append(earlier + [m for m in group if m not in earlier])
    return out


def bridge(stages: list[Stage], tau_zpd: float) -> list[Stage]:
    """Insert bridging stages so adjacent difficulties differ by at most tau_zpd; re-index."""
    out: list[Stage] = []
    for stage in stages:
        if out:
            prev = out[-1].difficulty
            jump = stage.difficulty - prev
            count = math.ceil(abs(jump) / tau_zpd - 1e-9) - 1
            for i in range(1, count + 1):
                level = round(prev + jump * i / (count + 1), 6)
                out.append(Stage(index=0, modules=stage.modules, difficulty=level,
                                 mastery_threshold=stage.mastery_threshold, bridge=True))
        out.append(stage)
    return [Stage(index=i, modules=s.modules, difficulty=s.difficulty,
                  mastery_threshold=s.mastery_threshold, bridge=s.bridge) for i, s in enumerate(out)]


def organize(diagnosis: Diagnosis, cfg: OrganizerConfig, coverage: float = 1.0,
             total_steps: int | None = None) -> Curriculum:
    """The curriculum for a diagnosis; with `total_steps` (a run's step budget under the by-stage step
    plan) its stages are fitted so each gets at least `cfg.min_stage_steps` (`fit_to_steps`)."""
    targets = select_targets(diagnosis, coverage)
    selected = with_needed_prerequisites(diagnosis, targets, cfg.tau_mastery)
    by_id = {m.id: m for m in diagnosis.modules}
    groups = layer_stages(selected, ancestors(diagnosis), by_id, cfg.max_modules_per_stage)
    if cfg.cumulative:
        groups = cumulative_groups(groups)
    stages = [
        Stage(index=i, modules=tuple(g), difficulty=round(sum(by_id[k].difficulty for k in g) / len(g), 6),
              mastery_threshold=cfg.tau_mastery)
        for i, g in enumerate(groups)
    ]
    planned = stages if cfg.cumulative else bridge(stages, cfg.tau_zpd)
    if cfg.step_plan == "by-stage":
        planned = fit_to_steps(planned, total_steps, cfg.min_stage_steps)
    return Curriculum(stages=tuple(planned))


BRIDGE_WEIGHT = 0.25  # a bridge stage synthesizes a quarter of a stage's examples per module (IOA.round_examples)


def step_shares(stages: Sequence[Stage], total: int) -> list[int]:
    """Optimizer steps per stage out of a run's `total`, in proportion to what each stage teaches: one
    unit per module of a real stage, BRIDGE_WEIGHT per module of a bridge (largest remainders, ties to
    the earlier stage; at least one step a stage while there are enough).

    Without a plan the first stage's remedial rounds can spend the whole budget: a compare run with
    column addition under multi-digit multiplication (five stages with bridges) spent its 20 steps on
    the first stage and never taught the second.
    """
    if not stages:
        return []
    weights = [len(s.modules) * (BRIDGE_WEIGHT if s.bridge else 1.0) for s in stages]
    floor = 1 if total >= len(stages) else 0
    rest = total - floor * len(stages)
    exact = [rest * w / sum(weights) for w in weights]
    shares = [int(x) for x in exact]
    for i in sorted(range(len(stages)), key=lambda i: (-(exact[i] - shares[i]), i))[: rest - sum(shares)]:
        shares[i] += 1
    return [s + floor for s in shares]


def fit_to_steps(stages: Sequence[Stage], total: int | None, min_steps: int) -> list[Stage]:
    """The stages re-planned so each gets at least `min_steps` of a run's `total` optimizer steps:
    bridges go first (they are warm-ups, the first thing a small budget cannot afford), then the
    adjacent pair with the smallest combined share is merged into one stage (its modules in order, the
    later stage's difficulty) until every share reaches `min_steps` or one stage is left. Merging only
    neighbours keeps the dependency order: a prerequisite is never later than what needs it, at worst
    taught beside it. Without a step budget (or `min_steps` 0) the stages are returned as they are.

    Measured reason: under the compare preset's 20 steps the chain curriculum had five stages of 2-7
    steps, and the column addition taught first fell to 24% while later stages trained (one mixed
    stage: 52%; see README).
    """
    out = list(stages)
    if total is None or min_steps <= 0:
        return out
    if out and min(step_shares(out, total)) < min_steps:
        out = [s for s in out if not s.bridge]
    while len(out) > 1:
        shares = step_shares(out, total)
        if min(shares) >= min_steps:
            break
        i = min(range(len(out) - 1), key=lambda j: (shares[j] + shares[j + 1], j))
        a, b = out[i], out[i + 1]
        merged = Stage(index=0, modules=a.modules + tuple(m for m in b.modules if m not in a.modules),
                       difficulty=max(a.difficulty, b.difficulty), mastery_threshold=b.mastery_threshold)
        out[i: i + 2] = [merged]
    return [dataclasses.replace(s, index=i) for i, s in enumerate(out)]
