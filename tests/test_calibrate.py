"""The Adapter calibration pilot (ioa.calibrate): candidate forms trained from the same starting weights on the
same problems, scored on pilot items, each module taught in the form it learned best; budget and resume."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pytest
from fakes import Interrupt, LearningFake
from test_methods import CAPS, make_ctx, new_examples

from ioa.calibrate import choose_forms, distinct_forms
from ioa.io import read_json, read_jsonl
from ioa.methods.budget import spent
from ioa.methods.registry import run
from ioa.report import write_report
from ioa.students.base import STATE_FILE
from ioa.types import Example

CALIBRATE = {"adapter.calibrate.enabled": True, "adapter.calibrate.forms": "[configured, raw, goal, structured]",
             "adapter.calibrate.steps": 2}


class FormSensitiveFake(LearningFake):
    """Learns column addition ten times faster from completions that open with the goal line, and every module
    a little slower from the structured layout; other examples as the learning fake does."""

    def train(self, examples: Sequence[Example], out_dir: Path, max_steps: int | None = None,
              lr_window: tuple[int, int] | None = None) -> dict:
        self.train_calls += 1
        if self.interrupt_at_train == self.train_calls:
            raise Interrupt()
        for e in examples:
            rate = (10 * self.rate if e.module == "multi_digit_addition" and e.completion.startswith("Goal:")
                    else self.rate / 2 if e.completion.startswith("Given:") else self.rate)
            m = self.mastery.get(e.module, 0.0)
            self.mastery[e.module] = round(min(1.0, m + rate * (1 - m)), 6)
        steps = len(examples) if max_steps is None else min(len(examples), max_steps)
        return {"steps": steps, "tokens_seen": sum(self.count_tokens(examples[:steps])), "final_loss": 0.5}


def calibrated_ctx(tmp_path, name="cal", interrupt_at_train=None, **over):
    ctx = make_ctx(tmp_path, "ioa", name=name, **{**CALIBRATE, **over})
    ctx.student = FormSensitiveFake(ctx.student.initial, ctx.domain.declared_prerequisites(),
                                    interrupt_at_train=interrupt_at_train)
    return ctx


def test_each_module_is_taught_in_the_form_it_learned_best(tmp_path):
    ctx = calibrated_ctx(tmp_path)
    summary = run(ctx)
    record = read_json(ctx.rd.adapter_choice)
    assert record["candidates"] == ["configured", "raw", "goal", "structured"]
    # on these modules the configured Adapter (goal line off) writes the teacher's own lines: not trained twice
    assert record["same_as"] == {"raw": "configured"} and record["trained"] == ["configured", "goal", "structured"]
    taught = record["modules"]
    assert "multi_digit_addition" in taught and set(record["scores"]["goal"]) >= set(taught)
    assert record["choice"]["multi_digit_addition"] == "goal"
    assert all(record["choice"][m] == "configured" for m in taught if m != "multi_digit_addition")
    for e in new_examples(ctx.rd):
        if e["kind"] in ("synth", "remedial") and e["module"] in taught:
            assert e["completion"].startswith("Goal:") == (e["module"] == "multi_digit_addition"), e
    assert summary["adapter_choice"] == record["choice"]
    # the pilot's steps, problems (once, not once per form) and calls are spent from the run's budget
    pilot_steps = sum(read_json(r.metrics)["steps"] for r in ctx.rd.pilot_forms() if r.metrics.exists())
    assert pilot_steps == 3 * CALIBRATE["adapter.calibrate.steps"] == record["steps"]
    used = spent(ctx.rd)
    assert used.steps <= CAPS["budget.max_steps"] and used.examples <= CAPS["budget.max_examples"]
    first = read_json(ctx.rd.pilot_form("configured").synthesis)
    # 8 problems a module, less a duplicate the small fact modules may not replace
    assert 8 * len(taught) - 2 <= first["examples"] <= 8 * len(taught)
    assert first["teacher_calls"] >= 2 * first["examples"]
    assert not ctx.rd.pilot_form("goal").synthesis.exists()
    # round 0 trains on the pilot's problems in the chosen form, paid for once, and makes that many fewer new ones
    round0 = read_jsonl(ctx.rd.round(0, 0).train)
    reused = [e for e in round0 if "-pilot-" in e["id"]]
    chosen = {e["problem_id"]: e["completion"] for f in set(record["choice"].values())
              for e in read_jsonl(ctx.rd.pilot_form(f).train) if record["choice"][e["module"]] == f}
    assert reused and {e["problem_id"]: e["completion"] for e in reused} == chosen
    synthesis = read_json(ctx.rd.round(0, 0).synthesis)
    assert synthesis["reused"] == len(reused) and synthesis["examples"] == sum(
        e["kind"] == "synth" for e in round0) - len(reused)
    assert used.examples == first["examples"] + sum(read_json(r.synthesis)["examples"] for r in ctx.rd.all_rounds())
    # pilot items are neither probes, test items nor training prompts
    pilot = {x["question"] for x in read_jsonl(ctx.rd.pilot_items)}
    held_out = {x["question"] for path in (ctx.rd.probes, ctx.rd.test_items) for x in read_jsonl(path)}
    assert pilot and not pilot & held_out
    assert not pilot & {e["prompt"].split("\n")[0] for e in new_examples(ctx.rd)}


def test_the_curriculum_starts_from_the_weights_the_pilot_started_from(tmp_path):
    ctx = calibrated_ctx(tmp_path)
    run(ctx)
    start = read_json(ctx.rd.pilot_start / STATE_FILE)["mastery"]
    assert start == ctx.student.initial
    # round 0's weights are the starting weights trained on round 0's examples, and nothing of the pilot's
    again = FormSensitiveFake(start, ctx.domain.declared_prerequisites())
    again.train([Example.from_dict(x) for x in read_jsonl(ctx.rd.round(0, 0).train)], tmp_path / "again")
    assert read_json(ctx.rd.round(0, 0).state / STATE_FILE)["mastery"] == again.mastery


def test_the_report_shows_each_forms_pilot_score_and_the_choice(tmp_path):
    ctx = calibrated_ctx(tmp_path)
    run(ctx)
    write_report(ctx.rd.root)
    text = (ctx.rd.root / "report.md").read_text()
    section = text.split("## Adapter calibration")[1].split("\n## ")[0]
    assert "| raw | no (writes as configured) |" in section
    goal_row = next(line for line in section.splitlines() if line.startswith("| goal |"))
    assert "←" in goal_row and goal_row.count("%") == len(read_json(ctx.rd.adapter_choice)["modules"])


def test_a_killed_pilot_resumes_to_the_uninterrupted_choice(tmp_path):
    whole = calibrated_ctx(tmp_path, name="whole")
    run(whole)
    cut = calibrated_ctx(tmp_path, name="cut", interrupt_at_train=2)  # inside the second form's steps
    with pytest.raises(Interrupt):
        run(cut)
    assert not cut.rd.adapter_choice.exists() and cut.rd.pilot_form("configured").eval.exists()
    resumed = run(calibrated_ctx(tmp_path, name="cut"))
    assert read_json(cut.rd.adapter_choice) == read_json(whole.rd.adapter_choice)
    assert resumed["budget"] == read_json(whole.rd.summary)["budget"]


def test_ablation_without_the_adapter_runs_no_pilot(tmp_path):
    ctx = make_ctx(tmp_path, "ioa-no-adapter", **CALIBRATE)
    run(ctx)
    assert not ctx.rd.adapter_choice.exists() and not ctx.rd.calibration.exists()


def test_choose_forms_takes_the_best_score_and_the_earlier_form_on_a_tie():
    scores = {"configured": {"a": 0.5, "b": 0.5}, "goal": {"a": 0.75, "b": 0.5}, "structured": {"a": 0.75, "b": 0.25}}
    assert choose_forms(scores, ["a", "b"]) == {"a": "goal", "b": "configured"}


def test_a_form_that_writes_a_module_as_an_earlier_form_does_is_no_candidate_for_it():
    scores = {"configured": {"add": 0.5, "mul": 0.25}, "atomic": {"add": 0.75, "mul": 0.5}}
    twins = {"add": {"configured": None, "atomic": "configured"}, "mul": {"configured": None, "atomic": None}}
    assert choose_forms(scores, ["add", "mul"], twins) == {"add": "configured", "mul": "atomic"}


def test_distinct_forms_names_the_earlier_form_that_writes_the_same():
    def ex(text):
        return Example(id="x", module="m", prompt="p", completion=text, answer="1", difficulty=0.0, kind="pilot")
    forms = {"configured": [ex("a"), ex("b")], "raw": [ex("a"), ex("b")], "goal": [ex("Goal"), ex("b")]}
    assert distinct_forms(forms) == {"configured": None, "raw": "configured", "goal": None}


def test_an_unknown_form_is_named_with_the_known_ones():
    from ioa.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=r"adapter.calibrate.forms.0: Input should be 'configured', 'raw'"):
        load_config(None, None, ["adapter.calibrate.forms=[bogus]"])


def test_every_configurable_form_has_its_adapter_changes():
    from ioa.adapt import FORM_CHANGES
    from ioa.config import ADAPTER_FORMS

    assert tuple(FORM_CHANGES) == ADAPTER_FORMS
