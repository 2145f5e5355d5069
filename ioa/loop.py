"""The staged distillation loop: probe -> identify -> organize -> per stage (synthesize -> train ->
evaluate -> mastery gate -> remediate or advance) -> final evaluation -> merged model -> summary.

Each step writes its output file atomically into the run directory (see `ioa.rundir`) and, when that
file already exists, reads it instead of redoing the work; that is all `ioa resume` needs. Training
inside a round resumes from the trainer's own checkpoints. Synthesis is seeded, so a round killed
before its data was written regenerates exactly the same examples.
"""
from __future__ import annotations

import dataclasses
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from tqdm.auto import tqdm

from ioa.answers import prompt_for, student_prompt
from ioa.config import RunConfig
from ioa.domains.base import Domain
from ioa.evaluate import evaluate, gate, per_module_accuracy
from ioa.identify import diagnose
from ioa.io import atomic_write_json, atomic_write_jsonl, read_json, read_jsonl
from ioa.layouts import bleed_share, module_layouts
from ioa.methods.budget import (
    Usage,
    examples_left,
    spent,
    steps_left,
    steps_within_tokens,
    train_tokens_left,
    trim_counts,
)
from ioa.organize import mastered, organize, step_shares
from ioa.probe import TEST_SEED_BASE, expand_groups, generate_many, grade, probe_problems
from ioa.rundir import RunDir
from ioa.stats import item_changes, sign_test_p
from ioa.students.base import STATE_FILE, Student, world_size
from ioa.summary import summarize
from ioa.synthesize import own_answers, remedial_targets, replay_counts, stage_difficulties, synthesize
from ioa.teachers.base import Teacher
from ioa.teachers.metered import MeteredTeacher
from ioa.types import Curriculum, Diagnosis, Example, Problem, Stage


class Timings:
    """Wall seconds per phase, accumulated across resumes in timings.json. Phases never nest."""

    def __init__(self, path: Path):
        self.path = path
        self.data: dict[str, float] = read_json(path) if path.exists() else {}

    def add(self, phase: str, seconds: float) -> None:
        self.data[phase] = round(self.data.get(phase, 0.0) + seconds, 3)
        atomic_write_json(self.path, self.data)


@dataclass
class Context:
    cfg: RunConfig
    rd: RunDir
    domain: Domain
    teacher: Teacher
    student: Student
    progress: bool = True
    probes: dict[str, list[Problem]] = field(default_factory=dict)
    test: list[Problem] = field(default_factory=list)  # held-out test set (eval.test_items_per_module)
    p_teacher: dict[str, float] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)  # prompts already used: probes and synthesized examples
    latest_state: Path | None = None  # student state the run has reached
    loaded_state: Path | None = None  # student state currently in memory
    timings: Timings | None = None
    quiet: bool = False  # no phase messages (errors and the final lines only)
    unmastered: frozenset[str] = frozenset()  # unmastered by the diagnosis: the Adapter writes their steps out

    def say(self, message: str) -> None:
        """One line on stderr per phase and decision, so a long run says what it is doing."""
        if not self.quiet:
            print(f"ioa: {message}", file=sys.stderr, flush=True)

    def sync_student(self) -> None:
        if self.latest_state != self.loaded_state and self.latest_state is not None:
            self.student.load_state(self.latest_state)
        self.loaded_state = self.latest_state

    def probe_items(self, modules: Sequence[str]) -> list[Problem]:
        return [x for m in modules for x in self.probes.get(m, [])]

    def timed(self, phase: str, fn: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        try:
            return fn()
        finally:
            if self.timings:
                self.timings.add(phase, time.perf_counter() - start)


def run_modules(cfg: RunConfig, domain: Domain) -> list[str]:
    known = [m.id for m in domain.modules()]
    if cfg.modules is None:
        return known
    for i, m in enumerate(cfg.modules):
        if m not in known:
            raise ValueError(f"modules[{i}]: unknown module {m!r} in domain {domain.name!r}; known: {', '.join(known)}")
    return list(cfg.modules)


def ensure_probes(ctx: Context) -> None:
    if ctx.rd.probes.exists():
        problems = [Problem.from_dict(r) for r in read_jsonl(ctx.rd.probes)]
    else:
        p = ctx.cfg.probe
        problems = probe_problems(ctx.domain, run_modules(ctx.cfg, ctx.domain), p.items_per_module, p.difficulty,
                                  p.difficulty_spread, ctx.cfg.seed)
        atomic_write_jsonl(ctx.rd.probes, [x.to_dict() for x in problems])
    for x in problems:
        ctx.probes.setdefault(x.module, []).append(x)
        ctx.seen.add(prompt_for(x))
        ctx.seen.update(student_prompt(s.question) for s in x.steps)  # steps have short answers: an Answer: line


def ensure_test_items(ctx: Context) -> None:
    """The held-out test set, when configured: evaluated before the run and at the end, nothing else."""
    n = ctx.cfg.eval.test_items_per_module
    if n == 0:
        return
    path = ctx.rd.root / "test_items.jsonl"
    if path.exists():
        problems = [Problem.from_dict(r) for r in read_jsonl(path)]
    else:
        p = ctx.cfg.probe
        problems = probe_problems(ctx.domain, run_modules(ctx.cfg, ctx.domain), n, p.difficulty, p.difficulty_spread,
                                  ctx.cfg.seed, test=True)
        problems = distinct_from_probes(ctx, problems)
        atomic_write_jsonl(path, [x.to_dict() for x in problems])
    ctx.test = problems
    ctx.seen.update(prompt_for(x) for x in problems)


def distinct_from_probes(ctx: Context, problems: list[Problem], tries: int = 8) -> list[Problem]:
    """Test items whose questions are neither probes nor each other: small modules (single-digit facts)
    repeat, so a repeated item is redrawn with another seed (dropped after `tries`)."""
    taken = set(ctx.seen)
    out: dict[int, Problem] = {}
    pending = list(enumerate(problems))
    for attempt in range(tries):
        redo = []
        for i, x in pending:
            prompt = prompt_for(x)
            if prompt in taken:
                redo.append(i)
            else:
                taken.add(prompt)
                out[i] = x
        if not redo:
            break
        base = TEST_SEED_BASE - 1 - (attempt + 1) * 1_000_000 - ctx.cfg.seed * 100_000
        specs = [(problems[i].module, problems[i].difficulty, base - i) for i in redo]
        pending = list(zip(redo, generate_many(ctx.domain, specs)))
    return [out[i] for i in sorted(out)]


def eval_items(ctx: Context) -> list[Problem]:
    """What results are reported on: the test set when there is one, else every module's probes."""
    return list(ctx.test) if ctx.test else ctx.probe_items(list(ctx.probes))


def ensure_test_before(ctx: Context) -> None:
    path = ctx.rd.root / "test_before.json"
    if ctx.test and not path.exists():
        ctx.sync_student()
        atomic_write_json(path, ctx.timed("evaluate", lambda: evaluate(ctx.domain, ctx.student, ctx.test)))


def benchmark_scores(ctx: Context, when: str) -> dict[str, Any] | None:
    """The configured benchmarks (`eval.benchmarks`) on the student as it is now: DIR/benchmarks/<when>/."""
    names = ctx.cfg.eval.benchmarks
    if not names:
        return None
    out = ctx.rd.root / "benchmarks" / when
    done = out / "results.json"
    if not done.exists() or set(read_json(done).get("benchmarks", {})) != set(names):
        from ioa.evaluation.runner import EvalOptions, run_eval

        ctx.sync_student()
        data_dir = ctx.cfg.eval.data_dir or os.environ.get("IOA_DATA_DIR")
        opts = EvalOptions(model=ctx.cfg.student.model, benchmarks=names, out=out,
                           data_dir=Path(data_dir) if data_dir else None,
                           limit=ctx.cfg.eval.benchmark_limit, seed=ctx.cfg.seed, progress=ctx.progress)
        ctx.timed("benchmarks", lambda: run_eval(opts, student=ctx.student, log=lambda msg: None))
    return read_json(done)


def curve_point(ctx: Context, rdir: Path) -> None:
    """Accuracy on the reported items after a trained round, with the budget spent so far."""
    path = rdir / "curve.json"
    if not ctx.cfg.eval.curve or path.exists():
        return
    ctx.sync_student()
    result = ctx.timed("evaluate", lambda: evaluate(ctx.domain, ctx.student, eval_items(ctx)))
    acc = result["accuracy"]
    atomic_write_json(path, {**spent(ctx.rd).to_dict(), "accuracy": acc, "mean": round(sum(acc.values()) / len(acc), 6),
                             "items": result["items"]})


def ensure_diagnosis(ctx: Context) -> Diagnosis:
    rd = ctx.rd
    if not rd.diagnosis.exists():
        items = expand_groups([x for xs in ctx.probes.values() for x in xs])
        ctx.say(f"probing: {len(items)} items (composites and their steps) of {len(ctx.probes)} modules, "
                "teacher and student")
        before = teacher_usage(ctx.teacher)
        t_attempts = grade(ctx.domain, items, ctx.teacher.respond(items), "teacher")
        # Baselines probe only to report P_T and the before-accuracy; only IOA spends its budget here.
        atomic_write_json(rd.root / "probe_usage.json",
                          {**usage_delta(before, ctx.teacher), "counted": ctx.cfg.method.startswith("ioa")})
        ctx.sync_student()
        responses = ctx.timed("probe", lambda: ctx.student.respond(items))
        s_attempts = grade(ctx.domain, items, responses, "student")
        atomic_write_jsonl(rd.responses_before,
                           [{"id": i.id, "module": i.module, "response": r} for i, r in zip(items, responses)])
        atomic_write_jsonl(rd.attempts, [a.to_dict() for a in t_attempts + s_attempts])
        # Steps may exercise modules outside the run (e.g. place_value inside multi-digit addition);
        # they cannot be probed or gated here, so the diagnosis covers the run's modules only.
        inside = set(ctx.probes)
        attempts = [a for a in t_attempts + s_attempts if a.module in inside]
        diagnosis = ctx.timed("identify",
                              lambda: diagnose(attempts, ctx.cfg.identifier, ctx.domain.declared_prerequisites()))
        atomic_write_json(rd.diagnosis, diagnosis.to_dict())
    diagnosis = Diagnosis.from_dict(read_json(rd.diagnosis))
    deficient = [m.id for m in diagnosis.modules if m.deficient]
    others = [m.id for m in diagnosis.modules if not m.deficient]
    edges = ", ".join(f"{e.source}->{e.target} ({e.origin})" for e in diagnosis.edges) or "none"
    ctx.say(f"diagnosis: deficient {', '.join(deficient) or 'none'}; "
            f"not deficient {', '.join(others) or 'none'}; edges {edges}")
    if ctx.cfg.method == "ioa-no-identifier":  # ablation: no gap targeting, every teachable module is taught
        # (applied on reading: diagnosis.json stays the Identifier's finding, the same for every method)
        diagnosis = dataclasses.replace(diagnosis, modules=tuple(
            dataclasses.replace(m, deficient=m.teachable) for m in diagnosis.modules))
    ctx.p_teacher = {m.id: m.p_teacher for m in diagnosis.modules}
    return diagnosis


def ensure_curriculum(ctx: Context, diagnosis: Diagnosis) -> Curriculum:
    if not ctx.rd.curriculum.exists():
        cur = organize(diagnosis, ctx.cfg.organizer, ctx.cfg.identifier.coverage, ctx.cfg.budget.max_steps)
        if ctx.cfg.method == "ioa-no-organizer":  # ablation: the targeted modules in one shuffled stage
            cur = single_stage([m for s in cur.stages if not s.bridge for m in s.modules], ctx.cfg, shuffle=True)
        atomic_write_json(ctx.rd.curriculum, cur.to_dict())
    cur = Curriculum.from_dict(read_json(ctx.rd.curriculum))
    ctx.say(f"curriculum: {len(cur.stages)} stage(s): " + " -> ".join(
        f"[{', '.join(s.modules)}]" + (" (bridge)" if s.bridge else "") for s in cur.stages))
    return cur


def one_stage_takes_the_budget(ctx: Context) -> bool:
    """The no-organizer ablation under an equal budget: with no gates there are no remedial rounds, so
    its one stage gets every example and step the budget allows (as the one-stage baselines do) instead
    of IOA's per-stage share; the comparison then measures the curriculum, not a smaller budget."""
    return ctx.cfg.method == "ioa-no-organizer"


def single_stage(modules: Sequence[str], cfg: RunConfig, shuffle: bool = False) -> Curriculum:
    """One stage over the given modules at the top of the probe band (baselines, no-organizer ablation)."""
    modules = list(dict.fromkeys(modules))
    if shuffle:
        random.Random(f"shuffle:{cfg.seed}").shuffle(modules)
    top = probe_band(cfg)[1]
    return Curriculum(stages=(Stage(index=0, modules=tuple(modules), difficulty=top,
                                    mastery_threshold=cfg.organizer.tau_mastery),))


def teacher_usage(teacher: Teacher) -> dict[str, int]:
    snap = getattr(teacher, "snapshot", None)
    return snap() if snap else {"teacher_calls": 0, "teacher_tokens": 0}


def usage_delta(before: dict[str, int], teacher: Teacher) -> dict[str, int]:
    after = teacher_usage(teacher)
    return {k: after[k] - before.get(k, 0) for k in after}


def bridge_reach(curriculum: Curriculum, stage: Stage) -> float:
    """How far into the difficulty band a stage's examples go: 1, or a bridge's place in its jump."""
    if not stage.bridge:
        return 1.0
    stages = curriculum.stages
    before = next(s for s in reversed(stages[: stage.index]) if not s.bridge)
    after = next(s for s in stages[stage.index + 1:] if not s.bridge)
    span = after.difficulty - before.difficulty
    return round((stage.difficulty - before.difficulty) / span, 6) if span else 1.0


def known_before(diagnosis: Diagnosis, tau_mastery: float, curriculum: Curriculum | None = None) -> dict[str, float]:
    """Modules to keep, with their pre-run accuracy: replayed and checked at every gate so the student
    does not forget them. With a curriculum: every teachable, non-deficient module it does not teach (a
    module just below mastery but not deficient, e.g. subtraction facts at 75%, was neither taught nor
    protected and fell to 60% in a default run; deficient modules left for a later run are not kept);
    without: the modules mastered before the run."""
    if curriculum is not None:
        taught = {m for s in curriculum.stages for m in s.modules}
        return {m.id: m.p_student for m in diagnosis.modules if m.teachable and not m.deficient and m.id not in taught}
    return {m.id: m.p_student for m in diagnosis.modules
            if m.teachable and not m.deficient and mastered(m.p_student, m.p_teacher, tau_mastery)}


@dataclass
class StageLog:
    """What the loop knows about finished stages: their examples, gates and retention checks."""

    examples: list[Example] = field(default_factory=list)
    mastered: dict[str, float] = field(default_factory=dict)  # module -> accuracy when mastered
    taught: list[str] = field(default_factory=list)  # modules of finished (non-bridge) stages
    known: list[str] = field(default_factory=list)  # modules kept from before the run (not taught)
    replayed: list[Example] = field(default_factory=list)  # replay examples so far (reused for known modules)
    latest: dict[str, float] = field(default_factory=dict)  # module -> accuracy at the latest gate

    def dropped(self) -> list[str]:
        """Mastered or kept modules whose accuracy at the latest gate is below what it was."""
        return [m for m, acc in self.mastered.items() if m in self.latest and self.latest[m] < acc - 1e-9]


def probe_band(cfg: RunConfig) -> tuple[float, float]:
    p = cfg.probe
    return max(0.0, p.difficulty - p.difficulty_spread), min(1.0, p.difficulty + p.difficulty_spread)


def as_replay(examples: Sequence[Example], prefix: str) -> list[Example]:
    """Copies of earlier examples for this round: kind "replay", ids unique in the run."""
    return [Example.from_dict({**e.to_dict(), "id": f"{prefix}-{i:05d}", "kind": "replay"})
            for i, e in enumerate(examples)]


def fill_to(examples: list[Example], k: int) -> list[Example]:
    """`examples` repeated in order until there are k (none when there are none).

    A module of few distinct problems runs out of fresh ones: single-digit facts in the probe band are a
    few dozen problems, most of them held out as probes and test items, so a compare run's 30% replay
    share came out as 7 of 71 examples and the facts the student knew fell. Repeating what replay could
    make keeps the share; the copies are reused data, as every replay example is.
    """
    if not examples:
        return []
    return [examples[i % len(examples)] for i in range(k)]


def replay_for(ctx: Context, log: StageLog, module_id: str, k: int, prefix: str, rng: random.Random,
               low: float, high: float) -> list[Example]:
    """Up to k replay examples of one module: the run's earlier examples of it, else earlier replays,
    topped up with fresh ones (the teacher's, or the student's own answers for a kept module)."""
    pool = [e for e in log.examples if e.module == module_id and e.kind != "replay"]
    pool = pool or [e for e in log.replayed if e.module == module_id]  # never taught: earlier replays
    if len(pool) >= k:
        return rng.sample(pool, k)
    module = next(m for m in ctx.domain.modules() if m.id == module_id)
    need = k - len(pool)
    if module_id in log.known and ctx.cfg.synthesis.replay_source == "student":
        # twice the problems, since only the answers the checker accepts are kept
        difficulties = stage_difficulties(2 * need, low, high, 1.0, False, ctx.cfg.seed)
        ctx.sync_student()
        made = ctx.timed("replay_own", lambda: own_answers(
            ctx.teacher, ctx.domain, ctx.student.respond, module, difficulties, ctx.seen, f"{prefix}-own-{module_id}",
            ctx.cfg.seed, need))
        return pool + made.examples
    made: list[Example] = []
    # The probe band first; what it cannot give comes from the module's whole difficulty range: with 30
    # test items and 8 probes held out, the band's single-digit addition facts were all taken in one compare
    # seed, so the run replayed none of them (fill_to repeats only what exists).
    for band, tag in (((low, high), "fresh"), ((0.0, 1.0), "wide")):
        if len(made) >= need:
            break
        difficulties = {module_id: stage_difficulties(need - len(made), *band, 1.0, ctx.cfg.adapter.load_ramp,
                                                      ctx.cfg.seed)}
        made += synthesize(ctx.teacher, ctx.domain, [module], difficulties, ctx.cfg.adapter, ctx.seen,
                           f"{prefix}-{tag}-{module_id}", "replay", ctx.cfg.seed, expand=ctx.unmastered).examples
    return pool + made


def replay_examples(ctx: Context, stage: Stage, log: StageLog, n_new: int, prefix: str) -> list[Example]:
    """Examples of modules kept from before the run, mastered in an earlier stage and (`replay_taught:
    all`) taught in one without reaching mastery, `replay_fraction` of the round's data: sampled from
    the run's earlier examples of a module, or freshly made for modules the student knew before the run."""
    boost = {m: ctx.cfg.synthesis.retention_boost for m in log.dropped()}  # forgetting gets more replay
    reviewed = list(log.mastered) + (log.taught if ctx.cfg.synthesis.replay_taught == "all" else [])
    reviewed = [m for m in dict.fromkeys(reviewed) if m not in stage.modules]
    counts = replay_counts(reviewed, ctx.cfg.synthesis.replay_fraction, n_new, boost)
    rng = random.Random(f"replay:{ctx.cfg.seed}:{prefix}")
    low, high = probe_band(ctx.cfg)
    picked: list[Example] = []
    for module_id, k in counts.items():
        picked += fill_to(replay_for(ctx, log, module_id, k, prefix, rng, low, high), k)
    return as_replay(picked, f"{prefix}-replay")


def round_examples(ctx: Context, stage: Stage, rnd: int, reach: float, last_eval: dict | None, failing: Sequence[str],
                   log: StageLog) -> list[Example]:
    """The round's training data: synthesized (round 0) or remedial (later), plus replay."""
    path = ctx.rd.round(stage.index, rnd) / "train.jsonl"
    if path.exists():
        examples = [Example.from_dict(r) for r in read_jsonl(path)]
        ctx.seen.update(e.prompt for e in examples)
        return examples
    syn = ctx.cfg.synthesis
    low, high = probe_band(ctx.cfg)
    modules = [m for m in ctx.domain.modules() if m.id in stage.modules]
    prefix = f"s{stage.index}r{rnd}"
    used = spent(ctx.rd)
    allowed = examples_left(ctx.cfg.budget, used)
    if allowed == 0 or steps_left(ctx.cfg.budget, used) == 0:
        return []  # the equal budget is spent: the method stops here
    before = teacher_usage(ctx.teacher)
    if rnd == 0:
        n = syn.examples_per_module if not stage.bridge else max(4, syn.examples_per_module // 4)
        if one_stage_takes_the_budget(ctx) and allowed is not None:
            n = -(-allowed // len(modules))  # no remedial rounds to spend it on: the one stage gets it all
        counts = trim_counts({m.id: stage_difficulties(n, low, high, reach, ctx.cfg.adapter.load_ramp, ctx.cfg.seed)
                              for m in modules}, allowed)
        kind = "bridge" if stage.bridge else "synth"
        made = synthesize(ctx.teacher, ctx.domain, modules, counts, ctx.cfg.adapter, ctx.seen, prefix, kind,
                          ctx.cfg.seed, progress=ctx.progress, expand=ctx.unmastered)
    else:
        correct = {it["id"]: it["correct"] for it in last_eval["items"]}
        wrong = [x for x in ctx.probe_items(failing) if not correct.get(x.id, True)]
        counts, targets = remedial_targets(wrong, syn.remedial_examples_per_module)
        counts = trim_counts(counts, allowed)
        targets = {m: targets[m][: len(ds)] for m, ds in counts.items()}
        remediated = [m for m in modules if m.id in counts]
        made = synthesize(ctx.teacher, ctx.domain, remediated, counts, ctx.cfg.adapter, ctx.seen, prefix, "remedial",
                          ctx.cfg.seed, targets, progress=ctx.progress, expand=ctx.unmastered)
    rehearsal: list[Example] = []
    if rnd > 0:  # rehearse the stage's own earlier examples 1:1, so remediation does not narrow the student
        own = [e for e in log.examples if e.module in stage.modules and e.id.startswith(f"s{stage.index}r")]
        rehearsal = random.Random(f"rehearse:{ctx.cfg.seed}:{prefix}").sample(own, min(len(own), len(made.examples)))
    # Replay is its share of the whole round, rehearsal included: counted against the new examples
    # only, a remedial round's replay fell from 30% to 18% and the facts the student knew fell with it.
    n_taught = len(made.examples) + (len(rehearsal) if syn.replay_counts_rehearsal else 0)
    replayed = replay_examples(ctx, stage, log, n_taught, prefix) + as_replay(rehearsal, f"{prefix}-rehearse")
    examples = made.examples + replayed
    write_round_data(path, examples, made, usage_delta(before, ctx.teacher))
    return examples


def write_round_data(path: Path, examples: Sequence[Example], made, usage: dict[str, int]) -> None:
    """The round's train.jsonl, then synthesis.json (its counts and teacher usage: the budget reads them)."""
    atomic_write_jsonl(path, [e.to_dict() for e in examples])
    atomic_write_json(path.with_name("synthesis.json"), {
        "examples": len(made.examples), "replayed": len(examples) - len(made.examples), "rejected": made.rejected,
        "duplicates": made.duplicates, **usage})


def train_round(ctx: Context, rdir: Path, examples: list[Example], max_steps: int | None = None) -> None:
    """Train on the round's data unless its state already exists; then that state is the latest.

    Steps: `max_steps` when given (baselines share out their budget themselves), else the recipe's plan
    capped by `max_steps_per_stage` and by what the step budget has left (all of it for the one stage
    of the no-organizer ablation).
    """
    state = rdir / "state"
    if not (state / STATE_FILE).exists():
        ctx.sync_student()
        used = spent(ctx.rd)
        cap = steps_left(ctx.cfg.budget, used)
        if max_steps is None and cap is not None:
            max_steps = cap if one_stage_takes_the_budget(ctx) else min(cap, ctx.cfg.student.max_steps_per_stage)
        tokens_left = train_tokens_left(ctx.cfg.budget, used)
        if tokens_left is not None:
            per_step = ctx.cfg.student.batch_size * ctx.cfg.student.grad_accum * world_size()
            fit = steps_within_tokens(tokens_left, ctx.student.count_tokens(examples), per_step)
            max_steps = min(fit, max_steps if max_steps is not None else ctx.cfg.student.max_steps_per_stage)
        if max_steps == 0:  # the token budget is spent: the round keeps the weights it started from
            metrics = {"steps": 0, "tokens_seen": 0, "examples": len(examples), "skipped": "train token budget spent"}
        else:
            kwargs = {} if max_steps is None else {"max_steps": max_steps}
            metrics = ctx.timed("train", lambda: ctx.student.train(examples, rdir / "trainer", **kwargs))
        ctx.student.save_state(state)
        ctx.loaded_state = state
        atomic_write_json(rdir / "metrics.json", metrics)
        shutil.rmtree(rdir / "trainer", ignore_errors=True)
    ctx.latest_state = state
    curve_point(ctx, rdir)


def eval_round(ctx: Context, rdir: Path, stage: Stage, log: StageLog) -> dict[str, Any]:
    """Held-out accuracy on the stage's modules and, for retention, on every earlier stage's modules."""
    path = rdir / "eval.json"
    if not path.exists():
        retention = [m for m in list(log.taught) + list(log.known) if m not in stage.modules]
        retention = list(dict.fromkeys(retention))
        ctx.sync_student()
        result = ctx.timed("evaluate",
                           lambda: evaluate(ctx.domain, ctx.student, ctx.probe_items(list(stage.modules) + retention)))
        layouts = module_layouts(e.to_dict() for e in log.examples + log.replayed)
        atomic_write_json(path, {**result, "stage_modules": list(stage.modules), "retention_modules": retention,
                                 "layout_bleed": bleed_share(result["items"], layouts)})
    return read_json(path)


def stage_steps_left(ctx: Context, curriculum: Curriculum, stage: Stage, used: Usage | None = None) -> int | None:
    """Steps this stage may still train under `organizer.step_plan: by-stage` (its share plus what earlier
    stages left unspent); None without a step budget or a plan."""
    total = ctx.cfg.budget.max_steps
    if total is None or ctx.cfg.organizer.step_plan != "by-stage" or one_stage_takes_the_budget(ctx):
        return None
    shares = step_shares(curriculum.stages, total)
    position = [s.index for s in curriculum.stages].index(stage.index)
    return max(0, sum(shares[: position + 1]) - (used or spent(ctx.rd)).steps)


def round_steps(ctx: Context, curriculum: Curriculum, stage: Stage) -> int | None:
    """The step cap of the stage's next round: the per-round cap, the run's budget and the stage's share."""
    used = spent(ctx.rd)
    left = stage_steps_left(ctx, curriculum, stage, used)
    if left is None:
        return None
    return min(left, ctx.cfg.student.max_steps_per_stage, steps_left(ctx.cfg.budget, used))


def run_stage(ctx: Context, curriculum: Curriculum, stage: Stage, log: StageLog) -> None:
    reach = bridge_reach(curriculum, stage)
    last_eval: dict | None = None
    failing: list[str] = list(stage.modules)
    rounds = 1 if stage.bridge else ctx.cfg.synthesis.max_remedial_rounds + 1
    tried: list[tuple[float, int, dict]] = []  # (mean accuracy over evaluated modules, round, eval) per gated round
    for rnd in range(rounds):
        rdir = ctx.rd.round(stage.index, rnd)
        steps = round_steps(ctx, curriculum, stage)
        if steps == 0 and not (rdir / "state" / STATE_FILE).exists():
            break  # the stage's share of the step budget is spent
        examples = ctx.timed("synthesize", lambda: round_examples(ctx, stage, rnd, reach, last_eval, failing, log))  # noqa: B023 (called at once)
        if not examples:  # nothing left to remediate (e.g. the teacher could not verify any answer)
            break
        log.examples.extend(e for e in examples if e.kind != "replay")
        log.replayed.extend(e for e in examples if e.kind == "replay")
        kinds: dict[str, int] = {}
        for e in examples:
            kinds[e.kind] = kinds.get(e.kind, 0) + 1
        ctx.say(f"stage {stage.index} round {rnd}: training on {len(examples)} examples ("
                + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) + ")")
        train_round(ctx, rdir, examples, steps)
        if stage.bridge:
            return
        last_eval = eval_round(ctx, rdir, stage, log)
        acc = last_eval["accuracy"]  # the stage's modules and the retention modules alike
        log.latest.update(acc)
        tried.append((sum(acc.values()) / len(acc), rnd, last_eval))
        decision_path = rdir / "gate.json"
        if not decision_path.exists():
            decision = gate(last_eval["accuracy"], ctx.p_teacher, stage.modules, stage.mastery_threshold)
            share_spent = stage_steps_left(ctx, curriculum, stage) == 0  # no steps of its share left to remediate
            final = decision["passed"] or rnd == rounds - 1 or share_spent
            decision["action"] = "advance" if decision["passed"] else ("advance-unmastered" if final else "remediate")
            atomic_write_json(decision_path, decision)
        decision = read_json(decision_path)
        ratios = ", ".join(f"{m} {r:.2f}" for m, r in decision["ratios"].items())
        ctx.say(f"gate: min P_S/P_T {decision['min_ratio']:.2f} {'>=' if decision['passed'] else '<'} "
                f"{decision['threshold']:.2f} -> {decision['action']} ({ratios})")
        failing = decision["failing"]
        if decision["action"] != "remediate":
            break
    if tried:
        last_eval = keep_best_round(ctx, stage, tried, {m: log.mastered[m] for m in log.known if m in log.mastered})
        log.latest.update(last_eval["accuracy"])
    log.taught.extend(m for m in stage.modules if m not in log.taught)
    if last_eval is not None:
        for m, acc in last_eval["accuracy"].items():
            if m in stage.modules and mastered(acc, ctx.p_teacher.get(m, 0.0), stage.mastery_threshold):
                log.mastered[m] = acc


def known_drop(accuracy: dict[str, float], kept: dict[str, float]) -> float:
    """How far the kept modules' mean accuracy fell below their pre-run accuracy (0 when none was evaluated)."""
    shared = [m for m in kept if m in accuracy]
    if not shared:
        return 0.0
    return sum(kept[m] - accuracy[m] for m in shared) / len(shared)


def choose_round(tried: list[tuple[float, int, dict]], kept: dict[str, float], max_drop: float | None,
                 rule: str = "best", alpha: float = 0.05) -> tuple[int, float]:
    """(index into `tried`, known drop) of the round a stage ends on.

    best: the best mean held-out accuracy over every module its gate evaluated, ties to the later
    round, among the rounds whose kept modules fell no more than `max_drop`; when every round fell
    more, the one that cost the kept modules least.
    last-unless-worse: the last round, unless an earlier one beats it on the same gated items by a
    one-sided paired sign test at `alpha`, over all items or over the kept modules' items; among such
    rounds, the `best` rule picks.
    """
    drops = [known_drop(t[2]["accuracy"], kept) for t in tried]
    candidates = list(range(len(tried)))
    if rule == "last-unless-worse":
        last = len(tried) - 1
        candidates = [i for i in range(last) if beats(tried[i][2], tried[last][2], set(kept), alpha)]
        if not candidates:
            return last, drops[last]
    eligible = [i for i in candidates if max_drop is None or drops[i] <= max_drop + 1e-9]
    if eligible:
        best = max(eligible, key=lambda i: (tried[i][0], tried[i][1]))
    else:
        best = min(candidates, key=lambda i: (drops[i], -tried[i][0], -tried[i][1]))
    return best, drops[best]


def beats(earlier: dict, later: dict, kept: set[str], alpha: float) -> bool:
    """Whether `later` (a gate's eval) lost significantly more of the items `earlier` got right than it
    gained, over all items or over the kept modules' items."""
    items_a, items_b = earlier.get("items", []), later.get("items", [])
    groups = [None, kept] if kept else [None]
    return any(sign_test_p(*item_changes(items_a, items_b, g)) < alpha for g in groups)


def keep_best_round(ctx: Context, stage: Stage, tried: list[tuple[float, int, dict]],
                    kept: dict[str, float] | None = None) -> dict:
    """The round the stage ends on, by `organizer.round_choice` over every module its gate evaluated
    (the stage's own and the retention modules: earlier stages, prior knowledge); see `choose_round`.

    A remedial round can make things worse (a narrow data mix, a fresh learning-rate schedule): a
    default run's remedial round raised the stage's modules from 48% to 53% while prior knowledge fell
    from 97.5% to 42.5%. But a rolled-back round's steps are lost, and on 8 probes a module most
    differences are one or two items, so `last-unless-worse` rolls back only on a significant loss.
    Measured over 5 paired compare seeds, `best` (the default) kept the known modules 13 points better:
    the remedial rounds it rolled back had mostly cost them. `selected.json` says which round and rule.
    """
    org = ctx.cfg.organizer
    i, drop = choose_round(tried, kept or {}, org.max_known_drop, org.round_choice, org.round_alpha)
    score, rnd, result = tried[i]
    ctx.say(f"stage {stage.index} ends on round {rnd} of {len(tried)} (mean held-out accuracy {100 * score:.1f}%, "
            f"kept modules {-100 * drop:+.1f} points)")
    ctx.latest_state = ctx.rd.round(stage.index, rnd) / "state"
    path = ctx.rd.round(stage.index, 0).parent / "selected.json"
    if not path.exists():
        atomic_write_json(path, {"round": rnd, "mean_accuracy": round(score, 6), "rounds": len(tried),
                                 "known_drop": round(drop, 6), "max_known_drop": org.max_known_drop,
                                 "rule": org.round_choice})
    return result


def final_eval(ctx: Context) -> dict[str, Any]:
    """Accuracy on every module's probes with the final weights.

    The last gate already evaluated those weights (the state the run ended on) on its modules' probes
    with greedy decoding, so its items are reused and only the modules it did not cover are run.
    """
    if not ctx.rd.final_eval.exists():
        # Items already scored with the final weights: the round's curve point (on the reported items) or,
        # reporting on probes, the last gate's evaluation.
        curve = ctx.latest_state.parent / "curve.json" if ctx.latest_state else None
        gate_eval = ctx.latest_state.parent / "eval.json" if ctx.latest_state else None
        last = curve if curve and curve.exists() else (gate_eval if not ctx.test else None)
        reused = read_json(last)["items"] if last and last.exists() else []
        wanted = eval_items(ctx)
        wanted_ids = {x.id for x in wanted}
        reused = [it for it in reused if it["id"] in wanted_ids]
        covered = {it["id"] for it in reused}
        missing = [x for x in wanted if x.id not in covered]
        ctx.sync_student()
        fresh = ctx.timed("evaluate", lambda: evaluate(ctx.domain, ctx.student, missing))["items"] if missing else []
        items = reused + fresh
        result = {"accuracy": per_module_accuracy(items), "items": items,
                  "reused_from": str(last.relative_to(ctx.rd.root)) if reused else None}
        atomic_write_json(ctx.rd.final_eval, result)
    return read_json(ctx.rd.final_eval)


def run_ioa(ctx: Context, diagnosis: Diagnosis) -> Curriculum:
    """IOA (and its ablations): the Organizer's curriculum, stage by stage with gates."""
    curriculum = ensure_curriculum(ctx, diagnosis)
    known = known_before(diagnosis, ctx.cfg.organizer.tau_mastery,
                         curriculum if ctx.cfg.synthesis.replay_untaught else None)
    log = StageLog(mastered=dict(known), known=list(known))
    ctx.unmastered = frozenset(m.id for m in diagnosis.modules
                               if not mastered(m.p_student, m.p_teacher, ctx.cfg.organizer.tau_mastery))
    for stage in tqdm(curriculum.stages, desc="stages", unit="stage", disable=not ctx.progress):
        run_stage(ctx, curriculum, stage, log)
    return curriculum


def meter_teacher(ctx: Context) -> None:
    """Count the teacher's calls for the budget; the call cap is what the run has not spent yet."""
    if not isinstance(ctx.teacher, MeteredTeacher):
        ctx.teacher = MeteredTeacher(ctx.teacher)
    cap = ctx.cfg.budget.max_teacher_calls
    ctx.teacher.limit = None if cap is None else ctx.teacher.calls + max(0, cap - spent(ctx.rd).teacher_calls)


def run(ctx: Context) -> dict[str, Any]:
    """The whole method on one run directory; every finished step is read back, not redone."""
    from ioa.methods import is_baseline, method_config

    ctx.cfg = method_config(ctx.cfg)
    ctx.timings = Timings(ctx.rd.timings)
    meter_teacher(ctx)
    ensure_probes(ctx)
    ensure_test_items(ctx)
    diagnosis = ensure_diagnosis(ctx)
    ensure_test_before(ctx)
    benchmark_scores(ctx, "before")
    meter_teacher(ctx)
    if is_baseline(ctx.cfg.method):
        from ioa.methods.baselines import BASELINE_RUNNERS

        curriculum = BASELINE_RUNNERS[ctx.cfg.method](ctx, diagnosis)
        if not ctx.rd.curriculum.exists():
            atomic_write_json(ctx.rd.curriculum, curriculum.to_dict())
    else:
        curriculum = run_ioa(ctx, diagnosis)
    final = final_eval(ctx)
    benchmark_scores(ctx, "after")
    if not ctx.rd.model.exists():  # written atomically: present means complete
        ctx.sync_student()
        ctx.timed("save_model", lambda: ctx.student.save(ctx.rd.model))
    summary = summarize(ctx.rd, diagnosis, curriculum, final, ctx.cfg)
    atomic_write_json(ctx.rd.summary, summary)
    return summary
