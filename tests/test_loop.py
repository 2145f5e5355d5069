"""The staged loop's logic on the real arithmetic domain and procedural teacher, with a fake learner.

These check resume, gates, remediation, replay and the run directory; the real student's end-to-end
run is in test_smoke_run.py.
"""
from __future__ import annotations

import json

import pytest
from fakes import Interrupt, LearningFake

from ioa.config import load_config
from ioa.context import Context
from ioa.domains import load_domain
from ioa.io import read_jsonl
from ioa.methods.registry import run
from ioa.records import Evaluation
from ioa.rundir import RunDir
from ioa.teachers import load_teacher

MODULES = ["addition_facts", "place_value", "multi_digit_addition", "multiplication_facts",
           "multi_digit_multiplication"]
START = {"addition_facts": 0.55, "place_value": 0.95, "multi_digit_addition": 0.3, "multiplication_facts": 0.4,
         "multi_digit_multiplication": 0.1}


def make_ctx(tmp_path, name="run", interrupt_at_train=None, rate=0.03, remedial_rate=None, interference=0.0, **over):
    overrides = [f"modules=[{', '.join(MODULES)}]", "probe.items_per_module=40", "identifier.coverage=1",
                 "synthesis.examples_per_module=12", "synthesis.remedial_examples_per_module=12",
                 "synthesis.max_remedial_rounds=3", "identifier.min_support=5"] + [f"{k}={v}" for k, v in over.items()]
    cfg = load_config(None, None, overrides)
    domain = load_domain("arithmetic")
    student = LearningFake(START, domain.declared_prerequisites(), interrupt_at_train=interrupt_at_train, rate=rate,
                          remedial_rate=remedial_rate, interference=interference)
    rd = RunDir(tmp_path / name)
    rd.root.mkdir(parents=True, exist_ok=True)
    return Context(cfg=cfg, rd=rd, domain=domain, teacher=load_teacher("procedural", domain), student=student,
                   progress=False)


def all_examples(rd):
    return [e for f in sorted((rd.root / "stages").rglob("train.jsonl")) for e in read_jsonl(f)]


def test_run_teaches_in_order_with_gates_and_writes_everything(tmp_path):
    ctx = make_ctx(tmp_path)
    summary = run(ctx)
    rd = ctx.rd
    for f in (rd.probes, rd.attempts, rd.diagnosis, rd.curriculum, rd.final_eval, rd.summary, rd.model):
        assert f.exists(), f
    assert summary["status"] == "finished"
    cur = json.loads(rd.curriculum.read_text())["stages"]
    first = {}
    for s in cur:
        for m in s["modules"]:
            first.setdefault(m, s["index"])
    diag = json.loads(rd.diagnosis.read_text())
    for e in diag["edges"]:
        if e["source"] in first and e["target"] in first:
            assert first[e["source"]] < first[e["target"]]
    # every stage that is not a bridge has a gate per round; remediation only after a failed gate
    for s in summary["stages"]:
        if s["bridge"]:
            assert all("action" not in r for r in s["rounds"])
            continue
        actions = [r["action"] for r in s["rounds"]]
        assert all(a == "remediate" for a in actions[:-1]) and actions[-1] in ("advance", "advance-unmastered")
    # ids unique across the run; remedial examples point at probe items the student got wrong
    examples = all_examples(rd)
    assert len({e["id"] for e in examples}) == len(examples)
    probe_ids = {json.loads(line)["id"] for line in rd.probes.read_text().splitlines()}
    remedial = [e for e in examples if e["kind"] == "remedial"]
    assert remedial and all(e["remediates"] in probe_ids for e in remedial)
    # no training example is a held-out probe item
    probe_q = {json.loads(line)["question"] for line in rd.probes.read_text().splitlines()}
    assert not any(e["prompt"].split("\n\n")[0] in probe_q for e in examples)
    d = summary["deficient"]
    assert d["count"] >= 2 and d["mean_after"] > d["mean_before"]
    # the final evaluation reuses the last gate's results for the weights the run ended on
    final = json.loads(rd.final_eval.read_text())
    last = [s for s in summary["stages"] if not s["bridge"]][-1]
    assert final["reused_from"] == f"stages/{last['index']}/round-{last['selected_round']}/eval.json"
    assert set(final["accuracy"]) == set(MODULES)


def test_replay_mixes_in_mastered_modules(tmp_path):
    ctx = make_ctx(tmp_path, rate=0.1, **{"synthesis.replay_fraction": 0.3})
    summary = run(ctx)
    examples = all_examples(ctx.rd)
    replayed = [e for e in examples if "-replay-" in e["id"]]
    rehearsed = [e for e in examples if "-rehearse-" in e["id"]]
    assert rehearsed and all(e["kind"] == "replay" for e in rehearsed)  # remedial rounds rehearse their stage
    mastered = {m["id"] for m in summary["modules"] if "mastered_at_stage" in m}
    known = set(summary["prior_knowledge"]["modules"])
    assert known == {"place_value"}  # P_S = 0.95 before the run
    taught = {m for s in summary["stages"] if not s["bridge"] for m in s["modules"]}
    assert replayed and {e["module"] for e in replayed} <= mastered | known | taught
    assert any(e["module"] == "place_value" for e in replayed)  # made fresh: it was never taught
    assert summary["prior_knowledge"]["drop_points"] is not None
    untaught = summary["not_taught"]
    assert untaught["modules"] == [m["id"] for m in summary["modules"] if not m["taught"]]
    assert untaught["change_points"] == pytest.approx(100 * (untaught["mean_after"] - untaught["mean_before"]),
                                                      abs=0.01)
    lengths = summary["completion_tokens"]
    taught = {m["id"] for m in summary["modules"] if m["taught"]}
    assert set(lengths) >= taught and all(v["examples"] > 0 and v["adapted"] > 0 and v["raw"] > 0
                                          for v in lengths.values())
    bleed = summary["layout_bleed"]  # the fake answers "Answer: N" only: nothing in any module's layout
    assert set(bleed["after"]) >= set(lengths) and bleed["mean_after"] == 0.0  # replayed modules have a layout too
    first_gate = json.loads(next((ctx.rd.root / "stages").rglob("eval.json")).read_text())
    assert set(first_gate["layout_bleed"]) <= set(bleed["after"])


@pytest.mark.parametrize("interrupt_at", [1, 2, 4])
def test_interrupted_run_resumes_to_the_same_finished_state(tmp_path, interrupt_at):
    reference = run(make_ctx(tmp_path, "reference"))
    ctx = make_ctx(tmp_path, "interrupted", interrupt_at_train=interrupt_at)
    with pytest.raises(Interrupt):
        run(ctx)
    assert not ctx.rd.summary.exists()
    resumed_ctx = make_ctx(tmp_path, "interrupted")  # a fresh process: new student, same directory
    resumed = run(resumed_ctx)
    strip = lambda s: {k: v for k, v in s.items() if k != "timings"}
    assert strip(resumed) == strip(reference)
    ref_ids = [e["id"] for e in all_examples(RunDir(tmp_path / "reference"))]
    assert [e["id"] for e in all_examples(resumed_ctx.rd)] == ref_ids  # nothing lost, nothing duplicated


def test_resume_of_a_finished_run_redoes_nothing(tmp_path):
    run(make_ctx(tmp_path))
    again = make_ctx(tmp_path)
    run(again)
    assert again.student.train_calls == 0


def test_a_harmful_remedial_round_is_rolled_back(tmp_path):
    ctx = make_ctx(tmp_path, rate=0.05, remedial_rate=-0.5, **{"synthesis.max_remedial_rounds": 1})
    summary = run(ctx)
    final = json.loads(ctx.rd.final_eval.read_text())["accuracy"]
    for stage in summary["stages"]:
        if stage["bridge"]:
            continue
        assert [r["action"] for r in stage["rounds"]] == ["remediate", "advance-unmastered"]
        assert stage["selected_round"] == 0
        first = stage["rounds"][0]["accuracy"]
        assert all(stage["rounds"][1]["accuracy"][m] < first[m] for m in stage["modules"])
    last_real = [s for s in summary["stages"] if not s["bridge"]][-1]
    for m in last_real["modules"]:  # the model carried on from round 0, not from the worse round 1
        assert final[m] == last_real["rounds"][0]["accuracy"][m]


def test_round_selection_counts_retention_not_only_the_stage(tmp_path):
    # remediation helps the remediated modules but wipes out what the student knew before (place_value)
    ctx = make_ctx(tmp_path, rate=0.05, interference=0.8, **{"synthesis.max_remedial_rounds": 1})
    summary = run(ctx)
    first_real = next(s for s in summary["stages"] if not s["bridge"])
    r0, r1 = (r["accuracy"] for r in first_real["rounds"])
    assert r1["place_value"] < r0["place_value"]  # retention module evaluated at the gate
    assert first_real["selected_round"] == 0
    assert summary["prior_knowledge"]["modules"] == ["place_value"]


def test_round_choice_skips_a_round_that_cost_the_kept_modules():
    from ioa.methods.ioa import choose_round

    kept = {"facts": 1.0}
    good_but_forgetful = (0.80, 1, Evaluation({"taught": 0.9, "facts": 0.7}))
    steady = (0.75, 0, Evaluation({"taught": 0.5, "facts": 1.0}))
    assert choose_round([steady, good_but_forgetful], kept, None) == (1, pytest.approx(0.3))  # guard off: best mean
    assert choose_round([steady, good_but_forgetful], kept, 0.05) == (0, 0.0)
    # every round cost more than the guard: the one that cost least
    worse = (0.9, 0, Evaluation({"taught": 1.0, "facts": 0.5}))
    assert choose_round([worse, good_but_forgetful], kept, 0.05)[0] == 1
    assert choose_round([steady], {}, 0.05) == (0, 0.0)  # nothing kept: nothing to guard


def test_last_unless_worse_rolls_back_only_on_a_significant_loss():
    from ioa.methods.ioa import choose_round

    def gate_eval(correct_facts: int, correct_taught: int, n: int = 8) -> Evaluation:
        items = [{"id": f"f{i}", "module": "facts", "correct": i < correct_facts} for i in range(n)]
        items += [{"id": f"t{i}", "module": "taught", "correct": i < correct_taught} for i in range(n)]
        return Evaluation({"facts": correct_facts / n, "taught": correct_taught / n}, items)

    def tried(*evals):
        return [(sum(e.accuracy.values()) / 2, i, e) for i, e in enumerate(evals)]

    kept = {"facts": 1.0}
    # one fact item lost, one taught item gained: noise; `best` rolls back (known drop 12.5 > 5 points)
    noisy = tried(gate_eval(8, 3), gate_eval(7, 4))
    assert choose_round(noisy, kept, 0.05, "best")[0] == 0
    assert choose_round(noisy, kept, 0.05, "last-unless-worse") == (1, pytest.approx(0.125))
    # six of eight facts lost, two taught items gained: significant on the kept modules (p = 1/64)
    forgetful = tried(gate_eval(8, 3), gate_eval(2, 5))
    assert choose_round(forgetful, kept, 0.05, "last-unless-worse")[0] == 0
    # significant over all items, with nothing kept
    worse = tried(gate_eval(8, 8), gate_eval(2, 2))
    assert choose_round(worse, {}, None, "last-unless-worse")[0] == 0
    assert choose_round(tried(gate_eval(8, 3)), kept, 0.05, "last-unless-worse")[0] == 0  # one round


@pytest.mark.parametrize("counts_rehearsal", [True, False])
def test_a_remedial_round_keeps_the_replay_share_with_its_rehearsal(tmp_path, counts_rehearsal):
    ctx = make_ctx(tmp_path, rate=0.03, **{"synthesis.replay_fraction": 0.3,
                                           "synthesis.replay_counts_rehearsal": counts_rehearsal})
    run(ctx)
    remedial_rounds = [f for f in sorted((ctx.rd.root / "stages").rglob("train.jsonl")) if f.parent.name != "round-0"]
    shares = []
    for f in remedial_rounds:
        rows = read_jsonl(f)
        replayed = sum("-replay-" in e["id"] for e in rows)
        if replayed and any("-rehearse-" in e["id"] for e in rows):
            shares.append(replayed / len(rows))
    assert shares
    if counts_rehearsal:
        assert all(abs(x - 0.3) < 0.06 for x in shares)
    else:  # counted against the new examples only, rehearsal dilutes it
        assert all(x < 0.3 - 0.06 for x in shares)


@pytest.mark.parametrize("plan", ["by-stage", "greedy"])
def test_a_step_budget_is_shared_across_the_stages(tmp_path, plan):
    ctx = make_ctx(tmp_path, **{"budget.max_steps": 40, "organizer.step_plan": plan, "student.max_steps_per_stage": 30,
                                "organizer.min_stage_steps": 0})  # the plan over many short stages, unfitted
    summary = run(ctx)
    stages = json.loads(ctx.rd.curriculum.read_text())["stages"]
    trained = {int(p.parent.parent.name): p for p in (ctx.rd.root / "stages").rglob("round-*/metrics.json")}
    steps = {i: sum(json.loads(p.read_text())["steps"]
                    for p in (ctx.rd.root / "stages" / str(i)).glob("round-*/metrics.json"))
             for i in trained}
    assert len(stages) >= 3 and summary["budget"]["used"]["steps"] <= 40
    if plan == "by-stage":
        from ioa.organize import step_shares
        from ioa.types import Stage

        shares = step_shares([Stage.from_dict(s) for s in stages], 40)
        assert set(trained) == {s["index"] for s in stages}  # every stage reached
        for position in range(len(stages)):  # never past its share plus what earlier stages left
            assert sum(steps.get(t["index"], 0) for t in stages[: position + 1]) <= sum(shares[: position + 1])
    else:  # first come, first served: the first stage's rounds spend the budget
        assert set(trained) != {s["index"] for s in stages}


@pytest.mark.parametrize("which", ["all", "mastered"])
def test_later_stages_review_what_earlier_stages_taught(tmp_path, which):
    # a slow learner: the first stage's modules stay below mastery
    ctx = make_ctx(tmp_path, rate=0.01, **{"synthesis.replay_taught": which, "synthesis.replay_fraction": 0.3,
                                           "synthesis.max_remedial_rounds": 0})
    summary = run(ctx)
    stages = [s for s in json.loads(ctx.rd.curriculum.read_text())["stages"] if not s["bridge"]]
    assert len(stages) >= 2
    unmastered = [m for m in stages[0]["modules"]
                  if not any(x["id"] == m and "mastered_at_stage" in x for x in summary["modules"])]
    assert unmastered
    last = ctx.rd.round(stages[-1]["index"], 0).train
    replayed = {e["module"] for e in read_jsonl(last) if e["kind"] == "replay"}
    assert bool(set(unmastered) & replayed) == (which == "all")


def test_a_train_token_budget_cuts_the_steps():
    from ioa.methods.budget import steps_within_tokens

    assert steps_within_tokens(1000, [100, 150], 2) == 4 and steps_within_tokens(99, [100], 1) == 0
    assert steps_within_tokens(10, [], 1) == 0


@pytest.mark.parametrize("cap", [None, 6000, 1500])
def test_a_run_keeps_to_its_train_token_budget(tmp_path, cap):
    over = {"student.batch_size": 1, "synthesis.max_remedial_rounds": 1}
    if cap:
        over["budget.max_train_tokens"] = cap
    summary = run(make_ctx(tmp_path, **over))
    used = summary["budget"]["used"]["trained_tokens"]
    if cap is None:
        assert used > 6000
    else:  # steps are cut at each round's mean example length: within one example of the cap
        assert cap * 0.8 <= used <= cap + 80, used


def test_every_untaught_module_is_kept_not_only_the_mastered_ones():
    from ioa.methods.ioa import known_before
    from ioa.types import Curriculum, Diagnosis, ModuleDiagnosis, Stage

    def diag(id_, ps, deficient):
        return ModuleDiagnosis(id=id_, p_teacher=1.0, p_student=ps, gap=1 - ps, deficient=deficient, teachable=True,
                               connectivity=0.0, severity=0.0, difficulty=0.0)

    diagnosis = Diagnosis(modules=(diag("mastered", 0.95, False), diag("half_known", 0.75, False),
                                   diag("taught", 0.1, True), diag("left_for_later", 0.2, True)), edges=())
    curriculum = Curriculum(stages=(Stage(index=0, modules=("taught",), difficulty=0.0, mastery_threshold=0.9),))
    assert known_before(diagnosis, 0.9) == {"mastered": 0.95}
    assert known_before(diagnosis, 0.9, curriculum) == {"mastered": 0.95, "half_known": 0.75}


def test_replay_weights_shift_the_share_toward_dropped_modules():
    from ioa.synthesize import replay_counts

    even = replay_counts(["a", "b", "c"], 0.5, 10)
    assert even == {"a": 4, "b": 3, "c": 3} and sum(even.values()) == 10
    boosted = replay_counts(["a", "b", "c"], 0.5, 10, {"c": 2.0})
    assert boosted == {"a": 3, "b": 2, "c": 5} and sum(boosted.values()) == 10


def test_taught_modules_get_their_own_replay_share():
    from ioa.synthesize import replay_counts, replay_shares

    # one pool (the default): replay_fraction split evenly over kept and taught modules
    share, weights = replay_shares(["facts"], ["column"], 0.3, 0.0)
    assert share == 0.3 and weights == {"facts": 1.0, "column": 1.0}
    # a share of its own for what earlier stages taught: 0.1 kept + 0.4 taught of a round of 100
    share, weights = replay_shares(["facts"], ["column"], 0.1, 0.4)
    counts = replay_counts(list(weights), share, 50, weights)
    assert share == 0.5 and counts == {"facts": 10, "column": 40}
    # nothing kept: the taught share alone; a dropped module's boost still applies inside its group
    share, weights = replay_shares([], ["a", "b"], 0.3, 0.4, {"b": 2.0})
    assert share == 0.4 and weights["b"] == 2 * weights["a"]


def test_taught_replay_rehearses_what_earlier_stages_really_taught():
    from ioa.synthesize import replay_counts, replay_shares

    # a prerequisite stage that found 3 fresh examples, then a column stage of 144: the share follows them
    share, weights = replay_shares(["kept"], ["facts", "column"], 0.1, 0.4, None, {"facts": 3, "column": 144}, 96)
    counts = replay_counts(list(weights), share, 96, weights)
    assert share == 0.5 and counts["column"] > 30 * counts.get("facts", 0) and counts["kept"] == 19
    # only the 3-example stage before this round of 96 new: rehearsal cannot be 40% of the round
    share, weights = replay_shares(["kept"], ["facts"], 0.1, 0.4, None, {"facts": 3}, 96)
    counts = replay_counts(list(weights), share, 96, weights)
    assert share < 0.12 and counts.get("facts", 0) <= 3 and counts["kept"] >= 10
    # earlier stages taught at least a round's worth: the full share, as without the counts
    assert replay_shares(["kept"], ["column"], 0.1, 0.4, None, {"column": 144}, 96) == \
        replay_shares(["kept"], ["column"], 0.1, 0.4)
    # nothing taught at all: no taught replay, the kept modules keep their share
    assert replay_shares(["kept"], ["facts"], 0.1, 0.4, None, {"facts": 0}, 96) == (0.1, {"kept": 1.0})


def test_a_later_stage_replays_what_earlier_stages_taught_at_its_own_share(tmp_path):
    ctx = make_ctx(tmp_path, **{"synthesis.replay_fraction": 0.1, "synthesis.taught_replay_fraction": 0.4,
                                "synthesis.max_remedial_rounds": 0})
    run(ctx)
    stages = json.loads(ctx.rd.curriculum.read_text())["stages"]
    taught_before, shares = set(), []
    for st in stages:
        rows = read_jsonl(ctx.rd.round(st["index"], 0).train)
        if taught_before and not st.get("bridge"):
            shares.append(sum(e["kind"] == "replay" and e["module"] in taught_before for e in rows) / len(rows))
        if not st.get("bridge"):
            taught_before |= set(st["modules"])
    assert shares and all(abs(x - 0.4) < 0.08 for x in shares), shares


def test_replay_shares_leave_room_for_new_examples():
    from ioa.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="at most 0.9"):
        load_config(None, overrides=["synthesis.replay_fraction=0.5", "synthesis.taught_replay_fraction=0.5"])


def test_the_declared_prior_orders_the_curriculum(tmp_path):
    ctx = make_ctx(tmp_path, **{"identifier.prior": "declared", "synthesis.max_remedial_rounds": 0})
    summary = run(ctx)
    diagnosis = json.loads(ctx.rd.diagnosis.read_text())
    origins = {(e["source"], e["target"]): e["origin"] for e in diagnosis["edges"]}
    assert origins[("addition_facts", "multi_digit_addition")] in ("confirmed", "prior")
    assert set(origins.values()) <= {"data", "confirmed", "prior"}
    stage_of = {m: s["index"] for s in summary["stages"] if not s["bridge"] for m in s["modules"]}
    assert len({s["index"] for s in summary["stages"] if not s["bridge"]}) >= 2
    for (a, b) in origins:  # every prerequisite that is taught comes in an earlier stage
        if a in stage_of and b in stage_of:
            assert stage_of[a] < stage_of[b]


def test_student_replay_trains_on_its_own_checked_answers(tmp_path):
    ctx = make_ctx(tmp_path, rate=0.1, **{"synthesis.replay_fraction": 0.3, "synthesis.replay_source": "student"})
    summary = run(ctx)
    assert summary["prior_knowledge"]["modules"] == ["place_value"]
    own = [e for e in all_examples(ctx.rd) if e["module"] == "place_value"]
    assert own and all(e["kind"] == "replay" and e["completion"] == e["raw"].strip() for e in own)
    from ioa.methods.error_targeted import as_problem
    from ioa.types import Example

    probes = {x.question for x in ctx.probe_items(["place_value"])}
    for e in own:  # only answers the domain's checker accepts, to problems apart from the probes
        problem = as_problem(Example.from_dict(e))
        assert problem.question not in probes and ctx.domain.check(problem, e["completion"])
    teacher_run = make_ctx(tmp_path, name="teacher-replay", rate=0.1,
                           **{"synthesis.replay_fraction": 0.3, "adapter.goal_line": True})
    run(teacher_run)
    theirs = [e for e in all_examples(teacher_run.rd) if e["module"] == "place_value"]
    assert theirs and all(e["completion"].startswith("Goal:") for e in theirs)  # the teacher's adapted solutions


def test_a_remedial_round_smaller_than_one_step_is_not_trained(tmp_path, capsys):
    # one remedial example per failing module against 16 examples a step: never a step's worth
    ctx = make_ctx(tmp_path, rate=0.02, **{"synthesis.max_remedial_rounds": 2,
                                           "synthesis.remedial_examples_per_module": 1,
                                           "student.batch_size": 4, "student.grad_accum": 4})
    summary = run(ctx)
    assert summary["status"] == "finished"
    err = capsys.readouterr().err
    real = [s for s in summary["stages"] if not s["bridge"]]
    remediated = [s for s in real if s["rounds"][0]["action"] == "remediate"]
    assert remediated, "no stage failed its gate: the test shows nothing"
    for stage in remediated:
        assert len(stage["rounds"]) == 2 and "steps" not in stage["rounds"][1]  # made, not trained, no third
        assert stage["selected_round"] == 0
    assert err.count("fewer than one step's 16: not trained") == len(remediated)
    assert not list(ctx.rd.root.glob("stages/*/round-1/metrics.json"))


def test_the_run_says_each_phase_and_decision(tmp_path, capsys):
    ctx = make_ctx(tmp_path, rate=0.05, **{"synthesis.max_remedial_rounds": 1})
    summary = run(ctx)
    err = capsys.readouterr().err
    assert "ioa: probing: " in err and "ioa: diagnosis: deficient " in err and "ioa: curriculum: " in err
    real = [s for s in summary["stages"] if not s["bridge"]]
    assert err.count("training on ") == sum(len(s["rounds"]) for s in summary["stages"])
    assert err.count("ioa: gate: min P_S/P_T ") == sum(len(s["rounds"]) for s in real)
    assert "-> remediate" in err and err.count(" ends on round ") == len(real)
    quiet = make_ctx(tmp_path, name="quiet")
    quiet.quiet = True
    run(quiet)
    assert capsys.readouterr().err == ""


def test_replay_keeps_its_share_when_a_module_runs_out_of_fresh_problems(tmp_path):
    from ioa.methods.ioa import fill_to

    assert fill_to([], 3) == [] and fill_to(["a"] * 4, 2) == ["a", "a"]
    # place_value at the easy end has few distinct problems, most held out as probes: replay repeats the rest
    ctx = make_ctx(tmp_path, rate=0.1, **{"synthesis.replay_fraction": 0.3, "probe.difficulty": 0.0,
                                          "probe.difficulty_spread": 0.0, "probe.items_per_module": 12})
    run(ctx)
    for path in sorted((ctx.rd.root / "stages").rglob("train.jsonl")):
        made = json.loads(path.with_name("synthesis.json").read_text())["examples"]
        rows = read_jsonl(path)
        replay = [e for e in rows if "-replay-" in e["id"]]
        rehearsed = sum("-rehearse-" in e["id"] for e in rows)
        if made and replay:
            assert len(replay) == round((made + rehearsed) * 0.3 / 0.7), path
    assert fill_to(["a", "b"], 5) == ["a", "b", "a", "b", "a"]


def test_replay_draws_from_the_whole_range_when_the_probe_band_is_held_out(tmp_path):
    import random

    from ioa.answers import prompt_for
    from ioa.methods.ioa import StageLog, replay_for

    ctx = make_ctx(tmp_path)
    band = {prompt_for(ctx.domain.generate("addition_facts", 0.0, seed)) for seed in range(2000)}
    assert 10 <= len(band) <= 40  # single-digit facts at the easy end: a few dozen problems
    ctx.seen |= band  # every one of them held out (probes and test items) or used
    log = StageLog(mastered={"addition_facts": 1.0}, known=["addition_facts"])
    got = replay_for(ctx, log, "addition_facts", 6, "s0r0", random.Random(0), 0.0, 0.0)
    assert len(got) >= 4 and all(e.prompt not in band for e in got)  # before: none; fill_to tops up
    assert all(e.difficulty > 0.0 and e.module == "addition_facts" for e in got)
