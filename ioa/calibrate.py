"""The Adapter's calibration pilot: which form of the teacher's solutions this student learns best, per module.

Before the first stage (`adapter.calibrate.enabled`, IOA only) the teacher writes a small slice of problems
for every module the curriculum teaches and solves them once; each candidate form (ioa.adapt.FORM_CHANGES:
the Adapter as configured, the teacher's raw lines, with the goal line, the paper's structured layout,
explicit digits, atomic steps, expanded steps) writes those same checked solutions its own way. A form that
writes every pilot example exactly as an earlier form does is not trained: it would score the same. Every
other form trains `steps` optimizer steps from the student's starting weights on its slice, and the student
then answers pilot items (fresh problems of each module, never probes, test items or training prompts).
Each module takes the form its items scored best under; a tie keeps the earlier form, so the first form
(by default the configured Adapter) is what a module keeps unless another is measurably better. The
curriculum then starts from the starting weights again.

Its steps, its problems (once, however many forms write them) and its teacher calls count against the
run's budget (ioa.methods.budget reads DIR/calibration/). Every form's round is read back when its files
exist, so a killed pilot resumes where it stopped. DIR/adapter.json records the candidates, which were
trained, their pilot scores per module, the choice, and the cost.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from ioa.adapt import adapter_form
from ioa.answers import prompt_for
from ioa.config import AdapterConfig
from ioa.context import Context
from ioa.evaluate import evaluate
from ioa.io import atomic_write_json, atomic_write_jsonl, read_json, read_jsonl
from ioa.loop import distinct_from_probes, probe_band, teacher_usage, usage_delta
from ioa.probe import probe_problems
from ioa.records import Evaluation
from ioa.students.base import state_saved
from ioa.synthesize import stage_difficulties, synthesize_forms
from ioa.types import Example, Problem


def distinct_forms(examples: Mapping[str, Sequence[Example]]) -> dict[str, str | None]:
    """For each form, the earlier form that writes every one of its examples identically (None: it is new)."""
    same: dict[str, str | None] = {}
    seen: dict[tuple[str, ...], str] = {}
    for form, made in examples.items():
        key = tuple(e.completion for e in made)
        same[form] = seen.get(key)
        seen.setdefault(key, form)
    return same


def module_twins(examples: Mapping[str, Sequence[Example]], modules: Sequence[str]) -> dict[str, dict[str, str | None]]:
    """For each module and form, the earlier form that writes this module's examples identically (None: new)."""
    return {m: distinct_forms({f: [e for e in made if e.module == m] for f, made in examples.items()})
            for m in modules}


def choose_forms(scores: Mapping[str, Mapping[str, float]], modules: Sequence[str],
                 twins: Mapping[str, Mapping[str, str | None]] | None = None) -> dict[str, str]:
    """Each module's form: the best pilot accuracy on its items, ties to the form listed first. A form that
    writes a module's examples as an earlier form does is no candidate for that module: its score there is
    the other modules' doing (atomic steps change only multiplication, yet train and score every module)."""
    order = list(scores)
    out = {}
    for m in modules:
        own = [f for f in order if twins is None or (twins.get(m) or {}).get(f) is None] or order[:1]
        out[m] = max(own, key=lambda f: (scores[f].get(m, 0.0), -order.index(f)))
    return out


def pilot_items(ctx: Context, modules: Sequence[str]) -> list[Problem]:
    path = ctx.rd.pilot_items
    if path.exists():
        items = [Problem.from_dict(r) for r in read_jsonl(path)]
    else:
        p, c = ctx.cfg.probe, ctx.cfg.adapter.calibrate
        items = probe_problems(ctx.domain, modules, c.items_per_module, p.difficulty, p.difficulty_spread,
                               ctx.cfg.seed, role="pilot")
        items = distinct_from_probes(ctx, items, role="pilot")
        atomic_write_jsonl(path, [x.to_dict() for x in items])
    ctx.seen.update(prompt_for(x) for x in items)  # never a training prompt later
    return items


def pilot_examples(ctx: Context, modules: Sequence[str], forms: Sequence[str]) -> dict[str, list[Example]]:
    """The pilot's slice in every form (read back when written): the same problems, solved once."""
    rounds = {f: ctx.rd.pilot_form(f) for f in forms}
    if all(r.train.exists() for r in rounds.values()):
        out = {f: [Example.from_dict(x) for x in read_jsonl(r.train)] for f, r in rounds.items()}
        ctx.seen.update(e.prompt for made in out.values() for e in made)
        return out
    c = ctx.cfg.adapter.calibrate
    low, high = probe_band(ctx.cfg)
    targets = [m for m in ctx.domain.modules() if m.id in modules]
    counts = {m.id: stage_difficulties(c.examples_per_module, low, high, 1.0, False, ctx.cfg.seed) for m in targets}
    before = teacher_usage(ctx.teacher)
    adapters = {f: adapter_form(f, ctx.cfg.adapter) for f in forms}
    made = synthesize_forms(ctx.teacher, ctx.domain, targets, counts, adapters, ctx.seen, "pilot", "pilot",
                            ctx.cfg.seed)
    first = forms[0]
    for f in forms:  # the shared problems' cost is written once, with the first form
        r = rounds[f]
        r.path.mkdir(parents=True, exist_ok=True)
        atomic_write_jsonl(r.train, [e.to_dict() for e in made[f].examples])
        if f == first:
            atomic_write_json(r.synthesis, {"examples": len(made[f].examples), "replayed": 0,
                                            "rejected": made[f].rejected, "duplicates": made[f].duplicates,
                                            **usage_delta(before, ctx.teacher)})
    return {f: made[f].examples for f in forms}


def train_and_score(ctx: Context, form: str, examples: list[Example], items: list[Problem]) -> Evaluation:
    """One form's pilot round: `steps` steps from the starting weights, then the pilot items."""
    rdir = ctx.rd.pilot_form(form)
    if rdir.eval.exists():
        return Evaluation.from_dict(read_json(rdir.eval))
    if not state_saved(rdir.state):
        ctx.student.load_state(ctx.rd.pilot_start)
        metrics = ctx.timed("calibrate", lambda: ctx.student.train(examples, rdir.trainer,
                                                                   max_steps=ctx.cfg.adapter.calibrate.steps))
        ctx.student.save_state(rdir.state)
        atomic_write_json(rdir.metrics, metrics)
    else:
        ctx.student.load_state(rdir.state)
    result = ctx.timed("calibrate", lambda: evaluate(ctx.domain, ctx.student, items))
    atomic_write_json(rdir.eval, result.to_dict())
    return result


def calibrate(ctx: Context, modules: Sequence[str]) -> dict[str, str]:
    """module -> the Adapter form it is taught in (adapter.json); runs the pilot unless it is recorded."""
    if ctx.rd.adapter_choice.exists():
        return dict(read_json(ctx.rd.adapter_choice)["choice"])
    c = ctx.cfg.adapter.calibrate
    forms = list(dict.fromkeys(c.forms))
    modules = list(modules)
    ctx.say(f"calibration: {len(forms)} Adapter forms ({', '.join(forms)}) on {c.examples_per_module} problems of "
            f"each of {len(modules)} module(s), {c.steps} step(s) each")
    if not state_saved(ctx.rd.pilot_start):
        ctx.sync_student()
        ctx.student.save_state(ctx.rd.pilot_start)
    items = pilot_items(ctx, modules)
    examples = pilot_examples(ctx, modules, forms)
    same_as = distinct_forms(examples)
    trained = [f for f in forms if same_as[f] is None and examples[f]]
    scores: dict[str, dict[str, float]] = {}
    for form in trained:
        scores[form] = train_and_score(ctx, form, examples[form], items).accuracy
        ctx.say(f"calibration: {form}: " + ", ".join(f"{m} {100 * scores[form].get(m, 0.0):.0f}%" for m in modules))
    twins = module_twins(examples, modules)
    choice = choose_forms(scores, modules, twins) if scores else {m: forms[0] for m in modules}
    # The curriculum starts from the weights the pilot started from (the run's latest state: none yet).
    ctx.student.load_state(ctx.rd.pilot_start)
    ctx.loaded_state = None
    ctx.sync_student()
    words = {f: round(sum(len(e.completion.split()) for e in made) / len(made), 1) for f, made in examples.items()
             if made}
    record = {"candidates": forms, "trained": trained, "same_as": {f: s for f, s in same_as.items() if s},
              "same_as_per_module": {m: {f: s for f, s in t.items() if s} for m, t in twins.items()},
              "modules": modules, "scores": scores, "choice": choice,
              "items_per_module": c.items_per_module, "examples_per_module": c.examples_per_module,
              "steps_per_form": c.steps, "steps": c.steps * len(trained),
              "completion_words": words}
    atomic_write_json(ctx.rd.adapter_choice, record)
    ctx.say("calibration: " + ", ".join(f"{m} -> {f}" for m, f in choice.items()))
    return choice


def chosen_examples(ctx: Context, choice: Mapping[str, str]) -> dict[str, list[Example]]:
    """module -> its pilot examples in the form it is taught in: paid for already, so the first round that
    teaches the module trains on them (and synthesizes that many fewer)."""
    out: dict[str, list[Example]] = {}
    for form in set(choice.values()):
        path = ctx.rd.pilot_form(form).train
        for e in (Example.from_dict(x) for x in read_jsonl(path)) if path.exists() else ():
            if choice.get(e.module) == form:
                out.setdefault(e.module, []).append(e)
    return out


def module_adapters(cfg_adapter: AdapterConfig, choice: Mapping[str, str]) -> dict[str, AdapterConfig]:
    """The Adapter each calibrated module is taught with."""
    return {m: adapter_form(form, cfg_adapter) for m, form in choice.items()}

