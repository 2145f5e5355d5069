"""The engine every method runs on: probe -> identify -> (the method trains the student, round by round)
-> final evaluation -> merged model -> summary.

Each step writes its output file atomically into the run directory (see `ioa.rundir`) and, when that
file already exists, reads it instead of redoing the work; that is all `ioa resume` needs. Training
inside a round resumes from the trainer's own checkpoints. Synthesis is seeded, so a round killed
before its data was written regenerates exactly the same examples. What a method does between the
diagnosis and the final evaluation is its own (ioa.methods); the helpers here are what they share.
"""
from __future__ import annotations

import os
import random
import shutil
from pathlib import Path
from typing import Any, Sequence

from ioa.answers import prompt_for, student_prompt
from ioa.config import RunConfig
from ioa.context import Context, Timings
from ioa.domains.base import Domain
from ioa.evaluate import evaluate, per_module_accuracy
from ioa.identify import diagnose
from ioa.io import atomic_write_json, atomic_write_jsonl, read_json, read_jsonl
from ioa.methods.base import Method
from ioa.methods.budget import spent, steps_left, steps_within_tokens, train_tokens_left
from ioa.phase_memory import PhaseMemory
from ioa.probe import SEED_BASES, expand_groups, generate_many, grade, probe_problems
from ioa.records import CurvePoint, FinalEval, Item, RoundEval
from ioa.rundir import RoundDir
from ioa.students.base import TakesTrainingSettings, state_saved, world_size
from ioa.summary import summarize
from ioa.teachers.base import Metered, Teacher
from ioa.teachers.metered import MeteredTeacher
from ioa.types import Curriculum, Diagnosis, Example, Problem, Stage


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
    path = ctx.rd.test_items
    if path.exists():
        problems = [Problem.from_dict(r) for r in read_jsonl(path)]
    else:
        p = ctx.cfg.probe
        problems = probe_problems(ctx.domain, run_modules(ctx.cfg, ctx.domain), n, p.difficulty, p.difficulty_spread,
                                  ctx.cfg.seed, role="test")
        problems = distinct_from_probes(ctx, problems)
        atomic_write_jsonl(path, [x.to_dict() for x in problems])
    ctx.test = problems
    ctx.seen.update(prompt_for(x) for x in problems)


def distinct_from_probes(ctx: Context, problems: list[Problem], tries: int = 8, role: str = "test") -> list[Problem]:
    """Held-out items (the test set, or the pilot's) whose questions are neither seen before (probes, test items,
    training prompts) nor each other: small modules (single-digit facts) repeat, so a repeated item is redrawn
    with another seed of the role's range (dropped after `tries`)."""
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
        base = SEED_BASES[role] - 1 - (attempt + 1) * 1_000_000 - ctx.cfg.seed * 100_000
        specs = [(problems[i].module, problems[i].difficulty, base - i) for i in redo]
        pending = list(zip(redo, generate_many(ctx.domain, specs)))
    return [out[i] for i in sorted(out)]


def eval_items(ctx: Context) -> list[Problem]:
    """What results are reported on: the test set when there is one, else every module's probes."""
    return list(ctx.test) if ctx.test else ctx.probe_items(list(ctx.probes))


def ensure_test_before(ctx: Context) -> None:
    path = ctx.rd.test_before
    if ctx.test and not path.exists():
        ctx.sync_student()
        atomic_write_json(path, ctx.timed("evaluate", lambda: evaluate(ctx.domain, ctx.student, ctx.test)).to_dict())


def benchmark_scores(ctx: Context, when: str) -> dict[str, Any] | None:
    """The configured benchmarks (`eval.benchmarks`) on the student as it is now: DIR/benchmarks/<when>/."""
    names = ctx.cfg.eval.benchmarks
    if not names:
        return None
    out, done = ctx.rd.benchmarks(when), ctx.rd.benchmark_results(when)
    if not done.exists() or set(read_json(done).get("benchmarks", {})) != set(names):
        from ioa.evaluation.runner import EvalOptions, run_eval

        ctx.sync_student()
        data_dir = ctx.cfg.eval.data_dir or os.environ.get("IOA_DATA_DIR")
        opts = EvalOptions(model=ctx.cfg.student.model, benchmarks=names, out=out,
                           data_dir=Path(data_dir) if data_dir else None,
                           limit=ctx.cfg.eval.benchmark_limit, seed=ctx.cfg.seed, progress=ctx.progress)
        ctx.timed("benchmarks", lambda: run_eval(opts, student=ctx.student, log=lambda msg: None))
    return read_json(done)


def curve_point(ctx: Context, rdir: RoundDir) -> None:
    """Accuracy on the reported items after a trained round, with the budget spent so far."""
    path = rdir.curve
    if not ctx.cfg.eval.curve or path.exists():
        return
    ctx.sync_student()
    result = ctx.timed("evaluate", lambda: evaluate(ctx.domain, ctx.student, eval_items(ctx)))
    acc = result.accuracy
    point = CurvePoint(**spent(ctx.rd).to_dict(), accuracy=acc, mean=round(sum(acc.values()) / len(acc), 6),
                       items=result.items)
    atomic_write_json(path, point.to_dict())


def ensure_diagnosis(ctx: Context, counts_probing: bool) -> Diagnosis:
    """The Identifier's finding on the probes (diagnosis.json); `counts_probing`: whether the teacher
    calls spent here count against the method's budget (probe_usage.json says so)."""
    rd = ctx.rd
    if not rd.diagnosis.exists():
        items = expand_groups([x for xs in ctx.probes.values() for x in xs])
        ctx.say(f"probing: {len(items)} items (composites and their steps) of {len(ctx.probes)} modules, "
                "teacher and student")
        before = teacher_usage(ctx.teacher)
        t_attempts = grade(ctx.domain, items, ctx.teacher.respond(items), "teacher")
        atomic_write_json(rd.probe_usage, {**usage_delta(before, ctx.teacher), "counted": counts_probing})
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
    ctx.p_teacher = {m.id: m.p_teacher for m in diagnosis.modules}
    return diagnosis


def single_stage(modules: Sequence[str], cfg: RunConfig, shuffle: bool = False) -> Curriculum:
    """One stage over the given modules at the top of the probe band (baselines, no-organizer ablation)."""
    modules = list(dict.fromkeys(modules))
    if shuffle:
        random.Random(f"shuffle:{cfg.seed}").shuffle(modules)
    top = probe_band(cfg)[1]
    return Curriculum(stages=(Stage(index=0, modules=tuple(modules), difficulty=top,
                                    mastery_threshold=cfg.organizer.tau_mastery),))


def teacher_usage(teacher: Teacher) -> dict[str, int]:
    return teacher.snapshot() if isinstance(teacher, Metered) else {"teacher_calls": 0, "teacher_tokens": 0}


def usage_delta(before: dict[str, int], teacher: Teacher) -> dict[str, int]:
    after = teacher_usage(teacher)
    return {k: after[k] - before.get(k, 0) for k in after}


def probe_band(cfg: RunConfig) -> tuple[float, float]:
    p = cfg.probe
    return max(0.0, p.difficulty - p.difficulty_spread), min(1.0, p.difficulty + p.difficulty_spread)


def as_replay(examples: Sequence[Example], prefix: str) -> list[Example]:
    """Copies of earlier examples for this round: kind "replay", ids unique in the run."""
    return [Example.from_dict({**e.to_dict(), "id": f"{prefix}-{i:05d}", "kind": "replay"})
            for i, e in enumerate(examples)]


def write_round_data(rdir: RoundDir, examples: Sequence[Example], made, usage: dict[str, int]) -> None:
    """The round's train.jsonl, then synthesis.json (its counts and teacher usage: the budget reads them)."""
    atomic_write_jsonl(rdir.train, [e.to_dict() for e in examples])
    atomic_write_json(rdir.synthesis, {
        "examples": len(made.examples) - made.reused, "replayed": len(examples) - len(made.examples),
        "rejected": made.rejected, "duplicates": made.duplicates,
        **({"candidates": made.candidates} if made.candidates else {}),
        **({"reused": made.reused} if made.reused else {}), **({"planned": made.planned} if made.planned else {}),
        **usage})


def train_round(ctx: Context, rdir: RoundDir, examples: list[Example], max_steps: int | None = None) -> None:
    """Train on the round's data unless its state already exists; then that state is the latest.

    Steps: `max_steps` when given (a method that shares out its budget itself), else the recipe's plan
    capped by `max_steps_per_stage` and by what the step budget has left.
    """
    state = rdir.state
    if not state_saved(state):
        ctx.sync_student()
        used = spent(ctx.rd)
        cap = steps_left(ctx.cfg.budget, used)
        if max_steps is None and cap is not None:
            max_steps = min(cap, ctx.cfg.student.max_steps_per_stage)
        tokens_left = train_tokens_left(ctx.cfg.budget, used)
        if tokens_left is not None:
            per_step = ctx.cfg.student.batch_size * ctx.cfg.student.grad_accum * world_size()
            fit = steps_within_tokens(tokens_left, ctx.student.count_tokens(examples), per_step)
            max_steps = min(fit, max_steps if max_steps is not None else ctx.cfg.student.max_steps_per_stage)
        if max_steps == 0:  # the token budget is spent: the round keeps the weights it started from
            metrics = {"steps": 0, "tokens_seen": 0, "examples": len(examples), "skipped": "train token budget spent"}
        else:
            kwargs = {} if max_steps is None else {"max_steps": max_steps}
            if ctx.cfg.student.lr_schedule == "run":  # the steps already spent, discarded rounds' included
                kwargs["lr_window"] = (used.steps, ctx.cfg.budget.max_steps)
            metrics = ctx.timed("train", lambda: ctx.student.train(examples, rdir.trainer, **kwargs))
        ctx.student.save_state(state)
        ctx.loaded_state = state
        atomic_write_json(rdir.metrics, metrics)
        shutil.rmtree(rdir.trainer, ignore_errors=True)
    ctx.latest_state = state
    curve_point(ctx, rdir)


def final_eval(ctx: Context) -> FinalEval:
    """Accuracy on every module's probes with the final weights.

    The last gate already evaluated those weights (the state the run ended on) on its modules' probes
    with greedy decoding, so its items are reused and only the modules it did not cover are run.
    """
    if not ctx.rd.final_eval.exists():
        last, reused = scored_with_final_weights(ctx)
        wanted = eval_items(ctx)
        wanted_ids = {x.id for x in wanted}
        reused = [it for it in reused if it["id"] in wanted_ids]
        covered = {it["id"] for it in reused}
        missing = [x for x in wanted if x.id not in covered]
        ctx.sync_student()
        fresh = ctx.timed("evaluate", lambda: evaluate(ctx.domain, ctx.student, missing)).items if missing else []
        items = reused + fresh
        result = FinalEval(accuracy=per_module_accuracy(items), items=items,
                           reused_from=str(last.relative_to(ctx.rd.root)) if reused and last else None)
        atomic_write_json(ctx.rd.final_eval, result.to_dict())
    return FinalEval.from_dict(read_json(ctx.rd.final_eval))


def scored_with_final_weights(ctx: Context) -> tuple[Path | None, list[Item]]:
    """(the file, its items) already scored with the weights the run ended on: the last round's curve
    point (on the reported items) or, reporting on probes, its gate's evaluation."""
    latest = RoundDir.of_state(ctx.latest_state) if ctx.latest_state else None
    if latest and latest.curve.exists():
        return latest.curve, CurvePoint.from_dict(read_json(latest.curve)).items
    if latest and not ctx.test and latest.eval.exists():
        return latest.eval, RoundEval.from_dict(read_json(latest.eval)).items
    return None, []


def meter_teacher(ctx: Context) -> None:
    """Count the teacher's calls for the budget; the call cap is what the run has not spent yet."""
    if not isinstance(ctx.teacher, MeteredTeacher):
        ctx.teacher = MeteredTeacher(ctx.teacher)
    cap = ctx.cfg.budget.max_teacher_calls
    ctx.teacher.limit = None if cap is None else ctx.teacher.calls + max(0, cap - spent(ctx.rd).teacher_calls)


def run(ctx: Context, method: Method) -> dict[str, Any]:
    """One method on one run directory; every finished step is read back, not redone."""
    if method.name != ctx.cfg.method:
        raise ValueError(f"method {method.name!r} asked to run a run configured for {ctx.cfg.method!r}")
    ctx.cfg = method.configure(ctx.cfg)
    if isinstance(ctx.student, TakesTrainingSettings):
        ctx.student.use_training_settings(ctx.cfg.student)
    ctx.timings = Timings(ctx.rd.timings)
    ctx.memory = PhaseMemory(ctx.rd.memory)
    meter_teacher(ctx)
    ensure_probes(ctx)
    ensure_test_items(ctx)
    diagnosis = method.targeted(ensure_diagnosis(ctx, method.counts_probing))
    ensure_test_before(ctx)
    benchmark_scores(ctx, "before")
    meter_teacher(ctx)
    curriculum = method.run(ctx, diagnosis)
    if not ctx.rd.curriculum.exists():
        atomic_write_json(ctx.rd.curriculum, curriculum.to_dict())
    final = final_eval(ctx)
    benchmark_scores(ctx, "after")
    if not ctx.rd.model.exists():  # written atomically: present means complete
        ctx.sync_student()
        ctx.timed("save_model", lambda: ctx.student.save(ctx.rd.model))
    summary = summarize(ctx.rd, diagnosis, curriculum, final, ctx.cfg).to_dict()
    atomic_write_json(ctx.rd.summary, summary)
    return summary  # as written: what `ioa run` prints from, and what tests check
