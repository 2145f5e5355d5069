"""Synthesis: a stage's modules -> adapted, verified, de-duplicated training examples.

The teacher makes new problems (never the held-out probe items), solves them, and its answer is
verified with the domain's checker before the Adapter rewrites the solution; rejected items are
counted, not trained on. The teacher's raw output is kept on every example.
"""
from __future__ import annotations

import dataclasses
import hashlib
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Sequence

from tqdm.auto import tqdm

from ioa.adapt import adapt_solution, load_ramp
from ioa.answers import prompt_for
from ioa.config import AdapterConfig
from ioa.domains.base import (
    ChecksMany,
    Domain,
    PosesSteps,
    WorksSteps,
    WritesAtomicSteps,
    WritesBorrowSteps,
    WritesCarrySteps,
    WritesCheckedSteps,
    WritesExplicitDigits,
    WritesLongDivision,
    WritesPeeledColumns,
    WritesStoppedTable,
    WritesTableSteps,
)
from ioa.teachers.base import AdaptsSolutions, MakesProblemsInBatches, Metered, Teacher
from ioa.types import Example, Module, Problem, Solution

# Synthesis seeds live below this; probe seeds start at ioa.probe.PROBE_SEED_BASE (1e9).
SYNTH_SEED_SPACE = 500_000_000


def seed_base(*parts: object) -> int:
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % SYNTH_SEED_SPACE


@dataclass
class Synthesis:
    examples: list[Example] = field(default_factory=list)
    rejected: int = 0  # teacher answers that failed verification
    duplicates: int = 0
    candidates: int = 0  # examples written before `synthesis.candidates_per_example` kept the hardest (0: no choice)
    reused: int = 0  # of `examples`, those paid for earlier (the calibration pilot's): not counted again
    planned: int = 0  # new examples the round asked for (0: not recorded); fewer are made when a band runs out

    def plus(self, more: "Synthesis") -> "Synthesis":
        """These examples followed by `more`'s, their rejected and duplicate counts added."""
        return dataclasses.replace(self, examples=self.examples + more.examples, rejected=self.rejected + more.rejected,
                                   duplicates=self.duplicates + more.duplicates)


def make_many(teacher: Teacher, specs: Sequence[tuple[str, float, int]]) -> list[Problem]:
    """One problem per (module, difficulty, seed): in one batch when the teacher can (LLM teachers send
    the requests concurrently), else one at a time."""
    if isinstance(teacher, MakesProblemsInBatches):
        return list(teacher.make_problems_many(specs))
    return [teacher.make_problems(m, d, 1, s)[0] for m, d, s in specs]


def check_many(domain: Domain, problems: Sequence[Problem], responses: Sequence[str]) -> list[bool]:
    if isinstance(domain, ChecksMany):
        return list(domain.check_many(problems, responses))
    return [domain.check(p, r) for p, r in zip(problems, responses, strict=True)]


def _budget_left(teacher: Teacher) -> int | None:
    if not isinstance(teacher, Metered) or teacher.limit is None:
        return None
    return max(0, teacher.limit - teacher.calls)


def _new_problems(teacher: Teacher, module: Module, difficulties: Sequence[float], base: int,
                  seen: set[str]) -> tuple[list[tuple[int, Problem]], int]:
    """(item index, problem) for problems whose prompts are new; retries duplicates with fresh seeds.

    Small modules (e.g. single-digit facts) run out of new problems; an item still duplicated after four
    seeds is dropped. `seen` holds the prompts already used (probes and earlier examples).
    """
    found: dict[int, Problem] = {}
    taken: set[str] = set()
    pending = list(range(len(difficulties)))
    duplicates = 0
    for attempt in range(4):
        left = _budget_left(teacher)
        if left is not None:  # each new problem costs two calls (write, solve); found ones still need solving
            pending = pending[: max(0, left - len(found)) // 2]
        if not pending:
            break
        made = make_many(teacher, [(module.id, difficulties[i], base + i * 4 + attempt) for i in pending])
        retry = []
        for i, problem in zip(pending, made):
            prompt = prompt_for(problem)
            if prompt in seen or prompt in taken:
                duplicates += 1
                retry.append(i)
            else:
                taken.add(prompt)
                found[i] = problem
        pending = retry
    return sorted(found.items()), duplicates


def checked_solutions(teacher: Teacher, domain: Domain,
                      problems: Sequence[Problem]) -> tuple[list[tuple[int, Solution]], int]:
    """The teacher's solutions that pass the domain's checker, as (index into problems, solution), and
    how many were rejected. A teacher is never trusted unchecked."""
    if not problems:
        return [], 0
    solutions = teacher.solve(problems)
    ok = check_many(domain, problems, [s.raw for s in solutions])
    kept = [(i, s) for i, (s, good) in enumerate(zip(solutions, ok)) if good]
    return kept, len(problems) - len(kept)


def worked_steps(domain: Domain, problem: Problem, expand: frozenset[str],
                 adapter: AdapterConfig) -> dict[str, list[str]]:
    """The domain's worked lines for each of the problem's steps whose module is in `expand` (the
    modules the student has not mastered), keyed by step question: what `adapter.expand_steps` writes
    out. Where the domain poses the step as a problem of its module (`PosesSteps`), the lines are in the form
    the Adapter trains that module in (explicit digits, carry and borrow steps), so a composite repeats its
    prerequisite's own lines. Empty when the transform is off or the domain has no worked steps."""
    if not (adapter.expand_steps and expand and isinstance(domain, WorksSteps)):
        return {}
    worked = {}
    for step in problem.steps:
        if step.module not in expand:
            continue
        posed = domain.step_problem(step) if isinstance(domain, PosesSteps) else None
        # posed: the form the step's own module is trained in, as in its own examples (its solution is worked_step's)
        lines = solving_text(domain, posed, posed.solution, adapter).splitlines() if posed else domain.worked_step(step)
        if lines:
            worked[step.question] = lines
    return worked


# The Adapter's switches for the domain's own forms of a problem, in the order solving_text tries them:
# (AdapterConfig switch, domain capability, the capability's method).
DOMAIN_FORMS = (
    ("atomic_steps", WritesAtomicSteps, "atomic_lines"),
    ("table_stop", WritesStoppedTable, "stopped_table_lines"),
    ("table_steps", WritesTableSteps, "table_lines"),
    ("long_division", WritesLongDivision, "long_division_lines"),
    ("checked_steps", WritesCheckedSteps, "checked_lines"),
    ("explicit_digits", WritesExplicitDigits, "explicit_lines"),
    ("peel_columns", WritesPeeledColumns, "peeled_lines"),
)


def solving_text(domain: Domain, problem: Problem, text: str, adapter: AdapterConfig) -> str:
    """The solving lines the Adapter rewrites: the domain's own form of the problem for the first switch of
    DOMAIN_FORMS that is on and has one (atomic steps, stopped table, table steps, long division, checked steps,
    explicit digits, peeled columns), else the teacher's own; with `carry_steps`, those lines with each carried
    three-term sum taken as two sums; with `borrow_steps`, each borrowed teen difference taken through ten. The
    teacher's answer was checked already; these lines come from the problem itself and end on the same answer."""
    for switch, capability, form in DOMAIN_FORMS:
        if getattr(adapter, switch) and isinstance(domain, capability):
            lines = getattr(domain, form)(problem)
            if lines:
                text = "\n".join(lines)
                break
    if adapter.carry_steps and isinstance(domain, WritesCarrySteps):
        text = "\n".join(domain.carry_step_lines(text.splitlines()))
    if adapter.borrow_steps and isinstance(domain, WritesBorrowSteps):
        text = "\n".join(domain.borrow_step_lines(text.splitlines()))
    return text


def _checked_problems(
    teacher: Teacher, domain: Domain, module: Module, difficulties: Sequence[float], base: int, seen: set[str],
) -> tuple[list[tuple[int, Problem, Solution]], int, int]:
    """(item index, problem, checked solution) for new problems, the rejected count and duplicates.

    The teacher's answers are verified with the domain's checker; only those that pass are returned.
    """
    indexed, duplicates = _new_problems(teacher, module, difficulties, base, seen)
    left = _budget_left(teacher)
    if left is not None:
        indexed = indexed[:left]
    if not indexed:
        return [], 0, duplicates
    solved, rejected = checked_solutions(teacher, domain, [p for _, p in indexed])
    return [(*indexed[j], s) for j, s in solved], rejected, duplicates


def _adapted_texts(teacher: Teacher, domain: Domain, module: Module, kept: Sequence[tuple[int, Problem, Solution]],
                   adapter: AdapterConfig, names: dict[str, str], expand: frozenset[str]) -> list[str]:
    """The Adapter's rewrite of each checked solution (the LLM teacher's own rewrite where it has one)."""
    if isinstance(teacher, AdaptsSolutions):
        return list(teacher.adapt_many([p for _, p, _ in kept], [s for _, _, s in kept], [module] * len(kept),
                                       adapter))
    texts = []
    for _, p, s in kept:
        text = solving_text(domain, p, s.text, adapter)
        texts.append(adapt_solution(p, text, s.raw, module, adapter, names, worked_steps(domain, p, expand, adapter),
                                    domain_form=text != s.text))
    return texts


def _example(id_prefix: str, index: int, module: Module, problem: Problem, text: str, raw: str, kind: str,
             target: str = "") -> Example:
    return Example(id=f"{id_prefix}-{index:05d}", module=module.id, prompt=prompt_for(problem), completion=text,
                   answer=problem.answer, difficulty=problem.difficulty, kind=kind, problem_id=problem.id, raw=raw,
                   remediates=target, meta=dict(problem.meta))


def synthesize(
    teacher: Teacher, domain: Domain, modules: Iterable[Module], counts: dict[str, list[float]],
    adapter: AdapterConfig, seen: set[str], id_prefix: str, kind: str, seed: int,
    remediates: dict[str, list[str]] | None = None, progress: bool = False, expand: frozenset[str] = frozenset(),
    adapters: Mapping[str, AdapterConfig] | None = None,
) -> Synthesis:
    """Examples for each module at the given difficulties (one example per difficulty).

    A teacher with a call `limit` (the equal budget) is never asked past it: synthesis stops there.
    `expand`: the modules whose steps the Adapter writes out in their own worked form (`expand_steps`).
    `adapters`: a module's own Adapter (the calibration pilot's choice) instead of `adapter`.
    """
    out = Synthesis()
    names = {m.id: m.name for m in domain.modules()}
    for module in tqdm(list(modules), desc=f"synthesize {kind}", unit="module", disable=not progress):
        kept, rejected, duplicates = _checked_problems(
            teacher, domain, module, counts.get(module.id, []), seed_base(seed, id_prefix, module.id), seen)
        texts = _adapted_texts(teacher, domain, module, kept, (adapters or {}).get(module.id, adapter), names, expand)
        out.rejected += rejected
        out.duplicates += duplicates
        targets = (remediates or {}).get(module.id, ())
        for (i, problem, solution), text in zip(kept, texts):
            seen.add(prompt_for(problem))
            out.examples.append(_example(id_prefix, len(out.examples), module, problem, text, solution.raw, kind,
                                         targets[i] if targets else ""))
    return out


def synthesize_forms(
    teacher: Teacher, domain: Domain, modules: Iterable[Module], counts: dict[str, list[float]],
    adapters: Mapping[str, AdapterConfig], seen: set[str], id_prefix: str, kind: str, seed: int,
    expand: frozenset[str] = frozenset(),
) -> dict[str, Synthesis]:
    """The same checked teacher solutions written in each form of `adapters` (form name -> Adapter): the
    problems are made and solved once, so the forms differ in their text only (the calibration pilot)."""
    out = {form: Synthesis() for form in adapters}
    names = {m.id: m.name for m in domain.modules()}
    for module in modules:
        kept, rejected, duplicates = _checked_problems(
            teacher, domain, module, counts.get(module.id, []), seed_base(seed, id_prefix, module.id), seen)
        seen.update(prompt_for(problem) for _, problem, _ in kept)
        for form, adapter in adapters.items():
            made = out[form]
            made.rejected += rejected
            made.duplicates += duplicates
            for (_, problem, solution), text in zip(kept, _adapted_texts(teacher, domain, module, kept, adapter,
                                                                         names, expand)):
                made.examples.append(_example(id_prefix, len(made.examples), module, problem, text, solution.raw,
                                              kind))
    return out


def own_answers(
    teacher: Teacher, domain: Domain, respond: Callable[[Sequence[Problem]], list[str]], module: Module,
    difficulties: Sequence[float], seen: set[str], id_prefix: str, seed: int, n: int,
) -> Synthesis:
    """Up to `n` examples of the student's own answers that the domain's checker accepts, to fresh
    problems the teacher writes (one per difficulty; never a probe, test item or earlier prompt).

    Replaying these keeps what the student already does right in its own words (RL's Razor: forgetting
    tracks how far training pulls the model from its own distribution); `respond` is the student's.
    """
    out = Synthesis()
    indexed, out.duplicates = _new_problems(teacher, module, difficulties,
                                            seed_base(seed, id_prefix, module.id, "own"), seen)
    problems = [p for _, p in indexed]
    if not problems:
        return out
    responses = respond(problems)
    ok = check_many(domain, problems, responses)
    for problem, response, good in zip(problems, responses, ok):
        if not good:
            out.rejected += 1
            continue
        if len(out.examples) >= n:
            break
        seen.add(prompt_for(problem))
        out.examples.append(Example(
            id=f"{id_prefix}-{len(out.examples):05d}", module=module.id, prompt=prompt_for(problem),
            completion=response.strip(), answer=problem.answer, difficulty=problem.difficulty, kind="replay",
            problem_id=problem.id, raw=response, meta=dict(problem.meta),
        ))
    return out


def stage_difficulties(n: int, low: float, high: float, reach: float, ramp: bool, seed: int) -> list[float]:
    """n difficulties for one module in a stage: rising from the easy end (load ramp) or uniform.

    `reach` in (0, 1] is how far into the band [low, high] the stage goes (1 for a regular stage,
    the bridge's position for a bridging stage).
    """
    top = low + (high - low) * reach
    if ramp:
        return load_ramp(n, low, top)
    rng = random.Random(seed)
    return [round(rng.uniform(low, top), 4) for _ in range(n)]


def step_up_band(low: float, high: float) -> tuple[float, float]:
    """The next difficulty band above [low, high]: as wide, starting at its top, clipped at 1."""
    return high, round(min(1.0, high + (high - low)), 6)


def shortfalls(asked: Mapping[str, Sequence[float]], examples: Sequence[Example]) -> dict[str, int]:
    """Per module, how many of the examples asked for (`asked`: module -> difficulties) were not made."""
    made = Counter(e.module for e in examples)
    return {module: len(ds) - made[module] for module, ds in asked.items() if len(ds) > made[module]}


def shared_shortfall(asked: Mapping[str, Sequence[float]], examples: Sequence[Example], low: float, high: float,
                     ramp: bool, seed: int) -> dict[str, list[float]]:
    """Difficulties in [low, high] for the examples the modules of `asked` could not make (their band ran out of
    new problems), split evenly over the modules that made all they were asked for, in `asked`'s order; empty
    when nothing is short or no module can take it (`synthesis.share_shortfall`, `baseline.share_shortfall`)."""
    short = shortfalls(asked, examples)
    takers = [m for m in asked if m not in short and asked[m]]
    missing = sum(short.values())
    if not missing or not takers:
        return {}
    return {m: stage_difficulties(missing // len(takers) + (i < missing % len(takers)), low, high, 1.0, ramp, seed)
            for i, m in enumerate(takers)}


def remedial_targets(failed: Sequence[Problem], per_module: int) -> tuple[dict[str, list[float]], dict[str, list[str]]]:
    """Difficulties (and the failed item each answers) for remedial examples: like the student's errors."""
    by_module: dict[str, list[Problem]] = {}
    for p in failed:
        by_module.setdefault(p.module, []).append(p)
    counts: dict[str, list[float]] = {}
    targets: dict[str, list[str]] = {}
    for module, items in by_module.items():
        picks = [items[i % len(items)] for i in range(per_module)]
        counts[module] = [p.difficulty for p in picks]
        targets[module] = [p.id for p in picks]
    return counts, targets


def replay_shares(kept: Sequence[str], taught: Sequence[str], kept_share: float, taught_share: float,
                  boost: Mapping[str, float] | None = None, taught_examples: Mapping[str, int] | None = None,
                  n_new: int = 0) -> tuple[float, dict[str, float]]:
    """The round's whole replay share and each replayed module's weight in it: the modules kept from before
    the run split `kept_share`, those earlier stages taught split `taught_share` (0: both groups are one
    pool sharing `kept_share`, as before the split). `boost` multiplies a module's weight (forgetting).

    With `taught_examples` (how many examples earlier stages taught of each module) the taught share is a
    rehearsal of that material: split in proportion to it, and shrunk when the earlier stages taught fewer
    examples than the round has new ones (`n_new`). In two compare seeds a prerequisite stage of addition
    facts trained on 3 examples (the probe band had no fresh ones), and an even split gave it 77 of the next
    stage's 192 examples, 40% of the round spent on a module the student already had at 88%."""
    boost = boost or {}
    taught = [m for m in taught if m not in kept]
    if taught_share <= 0 or not taught:
        return kept_share, {m: boost.get(m, 1.0) for m in [*kept, *taught]}
    mass = {m: 1.0 for m in taught}
    if taught_examples is not None:
        mass = {m: float(max(0, taught_examples.get(m, 0))) for m in taught}
        if n_new > 0:
            taught_share *= min(1.0, sum(mass.values()) / n_new)
    total = sum(mass.values())
    if total <= 0 or taught_share <= 0:
        return kept_share, {m: boost.get(m, 1.0) for m in kept}
    share = (kept_share if kept else 0.0) + taught_share
    weights = {m: kept_share / len(kept) * boost.get(m, 1.0) for m in kept}
    weights.update({m: taught_share * mass[m] / total * boost.get(m, 1.0) for m in taught if mass[m] > 0})
    return share, weights


def replay_counts(modules: Sequence[str], share: float, n_new: int,
                  weights: Mapping[str, float] | None = None) -> dict[str, int]:
    """How many replayed examples each mastered module gets so replay is `share` of the stage's data,
    split in proportion to `weights` (default 1 each; largest remainders, ties by module id)."""
    if not modules or share <= 0 or n_new == 0:
        return {}
    want = round(n_new * share / (1 - share))
    ordered = sorted(modules)
    w = [max(0.0, (weights or {}).get(m, 1.0)) for m in ordered]
    if not sum(w):
        w = [1.0] * len(ordered)
    exact = [want * x / sum(w) for x in w]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(ordered)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in by_remainder[: want - sum(counts)]:
        counts[i] += 1
    return {m: k for m, k in zip(ordered, counts) if k}
