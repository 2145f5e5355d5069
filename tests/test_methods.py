"""Baselines, ablations and the equal budget, on the arithmetic domain with the learning fake."""
from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest
from fakes import Interrupt, LearningFake

from ioa.config import load_config
from ioa.context import Context
from ioa.domains import load_domain
from ioa.io import read_json, read_jsonl
from ioa.methods.baselines import even_counts
from ioa.methods.budget import Usage, evenly_spaced, examples_left, spent, trim_counts
from ioa.methods.error_targeted import like_failed
from ioa.methods.ioa import StageLog, carried_rehearsal, steps_for_made
from ioa.methods.registry import METHODS as REGISTRY
from ioa.methods.registry import run
from ioa.methods.self_instruct import RougeL
from ioa.rundir import RunDir
from ioa.synthesize import shared_shortfall, shortfalls, step_up_band
from ioa.teachers import load_teacher
from ioa.types import Example, Stage

MODULES = ["addition_facts", "place_value", "multi_digit_addition", "multiplication_facts"]
START = {"addition_facts": 0.95, "place_value": 0.95, "multi_digit_addition": 0.3, "multiplication_facts": 0.4}
CAPS = {"budget.max_examples": 40, "budget.max_steps": 12, "budget.max_teacher_calls": 400}


def make_ctx(tmp_path, method, name=None, interrupt_at_train=None, **over):
    overrides = [f"method={method}", f"modules=[{', '.join(MODULES)}]", "probe.items_per_module=30",
                 "identifier.coverage=1",
                 "synthesis.examples_per_module=16", "synthesis.remedial_examples_per_module=8",
                 "synthesis.max_remedial_rounds=1", "identifier.min_support=5", "eval.test_items_per_module=10",
                 "eval.curve=true", "baseline.error_rounds=2"]
    overrides += [f"{k}={v}" for k, v in {**CAPS, **over}.items()]
    cfg = load_config(None, None, overrides)
    domain = load_domain("arithmetic")
    student = LearningFake(START, domain.declared_prerequisites(), interrupt_at_train=interrupt_at_train)
    rd = RunDir(tmp_path / (name or method))
    rd.root.mkdir(parents=True, exist_ok=True)
    return Context(cfg=cfg, rd=rd, domain=domain, teacher=load_teacher("procedural", domain), student=student,
                   progress=False)


def new_examples(rd):
    return [e for f in sorted((rd.root / "stages").rglob("train.jsonl")) for e in read_jsonl(f)
            if e["kind"] != "replay"]


METHODS = ["ioa", "vanilla", "easy-to-hard", "self-instruct", "error-targeted", "ioa-no-identifier", "ioa-no-organizer",
           "ioa-no-adapter"]


@pytest.mark.parametrize("method", METHODS)
def test_every_method_finishes_within_the_equal_budget(tmp_path, method):
    ctx = make_ctx(tmp_path, method)
    summary = run(ctx)
    assert summary["status"] == "finished" and summary["method"] == method
    used = summary["budget"]["used"]
    assert 0 < used["examples"] <= CAPS["budget.max_examples"]
    assert 0 < used["steps"] <= CAPS["budget.max_steps"]
    assert used["teacher_calls"] <= CAPS["budget.max_teacher_calls"]
    assert used == spent(ctx.rd).to_dict()
    assert len(new_examples(ctx.rd)) == used["examples"]
    # results are reported on the held-out test set, apart from probes and from every training prompt
    test = [json.loads(line) for line in (ctx.rd.root / "test_items.jsonl").read_text().splitlines()]
    probes = {json.loads(line)["question"] for line in ctx.rd.probes.read_text().splitlines()}
    assert summary["reported_on"] == "test" and not probes & {t["question"] for t in test}
    trained = {e["prompt"].split("\n\n")[0] for e in new_examples(ctx.rd)}
    assert not trained & ({t["question"] for t in test} | probes)
    final = read_json(ctx.rd.final_eval)
    assert {it["id"] for it in final["items"]} == {t["id"] for t in test}
    # a learning curve point per trained round, with the budget spent by then
    curve = summary["curve"]
    assert curve[0]["examples"] == 0 and curve[-1]["examples"] == used["examples"]
    assert [p["examples"] for p in curve] == sorted(p["examples"] for p in curve)


def test_only_ioa_counts_probing_against_its_budget(tmp_path):
    ioa = run(make_ctx(tmp_path, "ioa"))
    vanilla = run(make_ctx(tmp_path, "vanilla"))
    probe_calls = read_json(tmp_path / "ioa" / "probe_usage.json")["teacher_calls"]
    assert probe_calls > 0 and read_json(tmp_path / "vanilla" / "probe_usage.json")["counted"] is False
    assert ioa["budget"]["used"]["teacher_calls"] >= probe_calls + 2 * ioa["budget"]["used"]["examples"]
    # duplicates a small module repeats are redrawn, and each redraw is a call too
    assert (2 * vanilla["budget"]["used"]["examples"] <= vanilla["budget"]["used"]["teacher_calls"]
            <= CAPS["budget.max_teacher_calls"])


def test_teacher_call_cap_stops_synthesis_at_it(tmp_path):
    ctx2 = make_ctx(tmp_path, "ioa", name="probe-only")
    run(ctx2)
    probe_calls = read_json(ctx2.rd.root / "probe_usage.json")["teacher_calls"]
    cap = probe_calls + 21  # room for ten examples (write + solve) and one spare call
    ctx = make_ctx(tmp_path, "ioa", name="capped", **{"budget.max_teacher_calls": cap, "budget.max_examples": 1000})
    summary = run(ctx)
    used = summary["budget"]["used"]
    # stopped at the cap: every call but at most one spent; redrawn duplicates cost some examples
    assert cap - 1 <= used["teacher_calls"] <= cap and 6 <= used["examples"] <= 10


def test_vanilla_spreads_raw_examples_evenly_over_all_modules(tmp_path):
    ctx = make_ctx(tmp_path, "vanilla")
    run(ctx)
    examples = new_examples(ctx.rd)
    per_module = {m: sum(e["module"] == m for e in examples) for m in MODULES}
    # ten each, less the few a small module cannot supply without repeating a probe or test item
    assert all(8 <= n <= 10 for n in per_module.values()) and sum(per_module.values()) >= 36
    assert all(e["completion"] == e["raw"] for e in examples)  # raw teacher solutions
    assert len(list((ctx.rd.root / "stages" / "0").glob("round-*"))) == 1
    assert read_json(ctx.rd.round(0, 0).metrics)["steps"] == CAPS["budget.max_steps"]


def test_self_instruct_pool_has_no_near_duplicates(tmp_path):
    ctx = make_ctx(tmp_path, "self-instruct", **{"budget.max_examples": 60})
    run(ctx)
    stats = read_json(ctx.rd.round(0, 0).self_instruct)
    assert stats["seed_tasks"] + stats["filtered_seen"] >= 4 * len(MODULES) and stats["generated"] > 0
    assert stats["filtered_similar"] > 0  # single-digit facts collide quickly
    questions = [e["prompt"].split("\n\n")[0] for e in new_examples(ctx.rd)]
    rouge = RougeL()
    for i, q in enumerate(questions):  # seed tasks come first and are all kept
        assert i < stats["seed_tasks"] or rouge.max_against_pool(q) < 0.7
        rouge.add(q)


def test_error_targeted_targets_the_students_training_errors_not_probes(tmp_path):
    ctx = make_ctx(tmp_path, "error-targeted")
    run(ctx)
    errors = read_json(ctx.rd.round(0, 1).errors)
    first = {e["id"]: e for e in read_jsonl(ctx.rd.round(0, 0).train)}
    assert errors["checked"] == len(first) and errors["wrong"]
    second = [e for e in read_jsonl(ctx.rd.round(0, 1).train) if e["kind"] != "replay"]
    assert second and all(e["remediates"] in errors["wrong"] for e in second)
    wrong_modules = {first[i]["module"] for i in errors["wrong"]}
    assert {e["module"] for e in second} <= wrong_modules
    replay = [e for e in read_jsonl(ctx.rd.round(0, 1).train) if e["kind"] == "replay"]
    assert len(replay) == len(first)  # retrains on all earlier data


def test_the_registry_holds_every_configurable_method_as_a_method():
    from ioa.config import METHODS as CONFIG_METHODS
    from ioa.methods.base import Method
    from ioa.methods.ioa import IOA
    from ioa.methods.registry import METHODS as REGISTRY

    assert tuple(REGISTRY) == CONFIG_METHODS == tuple(METHODS)
    for name, method in REGISTRY.items():
        assert isinstance(method, Method) and method.name == name
        assert method.counts_probing == name.startswith("ioa")  # only IOA's Identifier spends budget probing
    parts = {name: (m.identify, m.organize, m.adapt) for name, m in REGISTRY.items() if isinstance(m, IOA)}
    assert parts == {"ioa": (True, True, True), "ioa-no-identifier": (False, True, True),
                     "ioa-no-organizer": (True, False, True), "ioa-no-adapter": (True, True, False)}


def test_a_method_runs_only_the_run_configured_for_it(tmp_path):
    from ioa.loop import run as run_method
    from ioa.methods.registry import METHODS as REGISTRY

    with pytest.raises(ValueError, match="configured for 'ioa'"):
        run_method(make_ctx(tmp_path, "ioa"), REGISTRY["vanilla"])


def test_ablations_switch_off_one_part_each(tmp_path):
    # The goal line on: on these modules the default Adapter (goal line off) writes the teacher's lines
    # unchanged, so only with it does full IOA's Adapter rewrite something for the ablation to switch off.
    rewriting = {"adapter.goal_line": True}
    full = make_ctx(tmp_path, "ioa", **rewriting)
    run(full)
    full_diag = read_json(full.rd.diagnosis)
    assert any(not m["deficient"] for m in full_diag["modules"])

    no_id = make_ctx(tmp_path, "ioa-no-identifier")
    run(no_id)
    assert any(not m["deficient"] for m in read_json(no_id.rd.diagnosis)["modules"])  # the file keeps the finding
    taught = {m for s in read_json(no_id.rd.curriculum)["stages"] for m in s["modules"]}
    assert taught == {m["id"] for m in read_json(no_id.rd.diagnosis)["modules"] if m["teachable"]}

    no_org = make_ctx(tmp_path, "ioa-no-organizer", **{"student.max_steps_per_stage": 6})
    used = run(no_org)["budget"]["used"]
    stages = read_json(no_org.rd.curriculum)["stages"]
    assert len(stages) == 1 and len(list((no_org.rd.root / "stages" / "0").glob("round-*"))) == 1
    # no remedial rounds to spend it on: the one stage gets the whole equal budget, not IOA's per-stage share
    assert used["steps"] == CAPS["budget.max_steps"] > no_org.cfg.student.max_steps_per_stage
    replayed = read_json(no_org.rd.round(0, 0).synthesis)["replayed"]
    assert used["examples"] + replayed > no_org.cfg.synthesis.examples_per_module * len(stages[0]["modules"])
    assert used["examples"] + replayed <= CAPS["budget.max_examples"]  # the replay made fresh stays in the cap
    difficulties = [e["difficulty"] for e in new_examples(no_org.rd) if e["module"] == stages[0]["modules"][0]]
    assert difficulties != sorted(difficulties)  # no easy-to-hard ramp

    no_ad = make_ctx(tmp_path, "ioa-no-adapter", **rewriting)
    run(no_ad)
    assert all(e["completion"] == e["raw"] for e in new_examples(no_ad.rd))
    assert not all(e["completion"] == e["raw"] for e in new_examples(full.rd))


def test_interleave_teaches_the_organizers_modules_in_one_stage_like_the_ablation(tmp_path):
    """`organizer.interleave` (the default preset's choice): full IOA, Identifier and Adapter on, teaches in
    the one stage the no-organizer ablation uses: the same curriculum, the same examples, the whole budget."""
    over = {"student.max_steps_per_stage": 6}
    blocked = make_ctx(tmp_path, "ioa", "blocked")
    run(blocked)
    interleaved = make_ctx(tmp_path, "ioa", "interleaved", **over, **{"organizer.interleave": True})
    used = run(interleaved)["budget"]["used"]
    ablation = make_ctx(tmp_path, "ioa-no-organizer", **over)
    run(ablation)
    stages = read_json(interleaved.rd.curriculum)["stages"]
    assert len(stages) == 1
    assert sorted(stages[0]["modules"]) == sorted(
        m for s in read_json(blocked.rd.curriculum)["stages"] if not s.get("bridge") for m in s["modules"])
    assert read_json(interleaved.rd.curriculum) == read_json(ablation.rd.curriculum)
    assert new_examples(interleaved.rd) == new_examples(ablation.rd)
    assert len(list((interleaved.rd.root / "stages" / "0").glob("round-*"))) == 1  # no remedial round
    assert used["steps"] == CAPS["budget.max_steps"] > interleaved.cfg.student.max_steps_per_stage


def test_cumulative_stages_reteach_earlier_modules_with_their_share_of_the_budget(tmp_path):
    """`organizer.cumulative`: stages in dependency order, each teaching every module introduced so far (new
    examples, not replay), one round a stage, and a capped budget split over the stages by their steps."""
    # one new module a stage, so the two deficient modules (no edge between them here) make two stages
    over = {"organizer.cumulative": True, "organizer.min_stage_steps": 4, "organizer.max_modules_per_stage": 1,
            "student.max_steps_per_stage": 12,
            "budget.max_examples": 60}
    ctx = make_ctx(tmp_path, "ioa", "cumulative", **over)
    summary = run(ctx)
    stages = read_json(ctx.rd.curriculum)["stages"]
    assert len(stages) >= 2
    for earlier, later in zip(stages, stages[1:]):
        assert later["modules"][: len(earlier["modules"])] == earlier["modules"]
        assert len(later["modules"]) > len(earlier["modules"])
    assert all(len(list((ctx.rd.root / "stages" / str(s["index"])).glob("round-*"))) == 1 for s in stages)
    taught = Counter((f.parts[-3], e["module"]) for f in sorted((ctx.rd.root / "stages").rglob("train.jsonl"))
                     for e in read_jsonl(f) if e["kind"] != "replay")
    first = stages[0]["modules"][0]
    assert all(taught[(str(s["index"]), first)] > 0 for s in stages)  # re-taught in every stage, not replayed
    used = summary["budget"]["used"]
    assert used["examples"] <= 60 and used["steps"] == CAPS["budget.max_steps"]
    per_stage = Counter(f.parts[-3] for f in (ctx.rd.root / "stages").rglob("train.jsonl")
                        for e in read_jsonl(f) if e["kind"] != "replay")
    assert per_stage[str(stages[-1]["index"])] > 0 and per_stage["0"] < used["examples"]


def test_cumulative_stages_train_as_one_run_and_leave_the_baselines_recipe_alone():
    cfg = load_config(None, "default", ["organizer.interleave=false", "organizer.cumulative=true"])
    assert not cfg.student.carry_optimizer and cfg.student.lr_schedule == "round"
    ioa_cfg = REGISTRY["ioa"].configure(cfg)
    assert ioa_cfg.student.carry_optimizer and ioa_cfg.student.lr_schedule == "run"
    assert ioa_cfg.synthesis.max_remedial_rounds == 0 and not ioa_cfg.adapter.load_ramp
    assert REGISTRY["vanilla"].configure(cfg).student == cfg.student


def test_a_cumulative_stage_that_made_fewer_examples_trains_fewer_steps(tmp_path):
    """A first stage whose modules' bands ran out (43 of 110 planned) trains that share of its steps, so its
    examples are not gone over nine times; a stage that made its plan, or a record without a plan, keeps them."""
    rdir = RunDir(tmp_path / "run").round(0, 0)
    rdir.path.mkdir(parents=True)
    rdir.synthesis.write_text(json.dumps({"examples": 43, "planned": 110, "replayed": 5}))
    assert steps_for_made(rdir, 51) == 20
    assert steps_for_made(rdir, None) is None
    rdir.synthesis.write_text(json.dumps({"examples": 110, "planned": 110}))
    assert steps_for_made(rdir, 51) == 51
    rdir.synthesis.write_text(json.dumps({"examples": 3}))
    assert steps_for_made(rdir, 51) == 51


def test_a_later_cumulative_stage_practises_earlier_examples_of_a_module_whose_band_ran_out():
    def ex(i, module, kind="synth"):
        return Example(id=f"{module}-{i}", module=module, prompt=f"p{i}", completion="c", answer="1", difficulty=0.1,
                       kind=kind)

    log = StageLog(examples=[ex(i, "division_facts") for i in range(5)] + [ex(i, "addition_facts") for i in range(3)]
                   + [ex(9, "division_facts", "replay")], taught=["division_facts", "addition_facts"])
    stage = Stage(index=1, modules=("division_facts", "addition_facts", "mean"), difficulty=0.3, mastery_threshold=0.9)
    # division facts 12 short: all 5 earlier new examples (not the replayed one); addition facts 2 short: 2 of 3;
    # the mean is new in this stage, so its shortfall is not rehearsed
    got = carried_rehearsal(log, stage, {"division_facts": 12, "addition_facts": 2, "mean": 4}, 0, "s1r0")
    assert sorted(e.id for e in got if e.module == "division_facts") == [f"division_facts-{i}" for i in range(5)]
    assert len([e for e in got if e.module == "addition_facts"]) == 2 and all(e.kind == "synth" for e in got)
    assert carried_rehearsal(log, stage, {}, 0, "s1r0") == []


def test_easy_to_hard_teaches_every_module_by_level_with_rising_numbers(tmp_path):
    ctx = make_ctx(tmp_path, "easy-to-hard")
    summary = run(ctx)
    levels = {m.id: m.level for m in ctx.domain.modules()}
    stages = summary["stages"]
    stage_levels = [{levels[m] for m in s["modules"]} for s in stages]
    assert all(len(lv) == 1 for lv in stage_levels) and len(stages) >= 2
    assert [lv.pop() for lv in stage_levels] == sorted({levels[m] for m in MODULES})  # foundations first
    assert sorted(m for s in stages for m in s["modules"]) == sorted(MODULES)  # every module, no identification
    for s in stages:
        rounds = list((ctx.rd.root / "stages" / str(s["index"])).glob("round-*"))
        assert len(rounds) == 1 and not (rounds[0] / "gate.json").exists()  # no gates, no remediation
        examples = read_jsonl(rounds[0] / "train.jsonl")
        for m in s["modules"]:
            ds = [e["difficulty"] for e in examples if e["module"] == m]
            assert ds == sorted(ds)  # small numbers first
        assert all(e["completion"] == e["raw"] for e in examples)
    assert summary["budget"]["used"]["steps"] == CAPS["budget.max_steps"]  # the budget split over the stages


@pytest.mark.parametrize("method", ["vanilla", "easy-to-hard", "error-targeted", "self-instruct"])
def test_interrupted_baseline_resumes_to_the_same_result(tmp_path, method):
    whole = run(make_ctx(tmp_path, method, name="whole"))
    ctx = make_ctx(tmp_path, method, name="cut", interrupt_at_train=1)
    with pytest.raises(Interrupt):
        run(ctx)
    resumed = run(make_ctx(tmp_path, method, name="cut"))
    assert resumed["budget"] == whole["budget"]
    assert [p["mean"] for p in resumed["curve"]] == [p["mean"] for p in whole["curve"]]


def test_trim_counts_keeps_shares_and_the_ramp_ends():
    counts = {"a": [0.0, 0.1, 0.2, 0.3, 0.4], "b": [0.0, 0.5, 1.0]}
    trimmed = trim_counts(counts, 4)
    assert trimmed == {"a": [0.0, 0.4], "b": [0.0, 1.0]}
    assert trim_counts(counts, None) == counts and trim_counts(counts, 100) == counts
    assert evenly_spaced([1, 2, 3, 4, 5], 3) == [1, 3, 5]


def test_examples_left_counts_two_teacher_calls_per_example():
    from ioa.config import BudgetConfig

    cap = BudgetConfig(max_examples=50, max_teacher_calls=100)
    assert examples_left(cap, Usage(examples=10, teacher_calls=40)) == 30
    assert examples_left(cap, Usage(examples=45, teacher_calls=40)) == 5
    assert examples_left(BudgetConfig(), Usage()) is None


def test_even_counts_and_like_failed():
    counts = even_counts(["a", "b", "c"], 8, 0.0, 0.3, 0)
    assert [len(v) for v in counts.values()] == [3, 3, 2]
    assert all(0.0 <= d <= 0.3 for v in counts.values() for d in v)
    failed = [Example(id=f"x{i}", module="m" if i else "n", prompt="p", completion="c", answer="1", difficulty=0.1 * i)
              for i in range(3)]
    counts, targets = like_failed(failed, 5)
    assert targets == {"n": ["x0", "x0"], "m": ["x1", "x2", "x1"]}
    assert counts == {"n": [0.0, 0.0], "m": [0.1, 0.2, 0.1]}


def test_compare_table_is_mean_and_std_over_seeds_of_each_method(tmp_path, capsys):
    from ioa.cli import main
    from ioa.compare import compare, load_result, run_scores

    dirs = []
    for method in ("ioa", "vanilla"):
        for seed in (0, 1):
            ctx = make_ctx(tmp_path, method, name=f"{method}-s{seed}", seed=seed)
            run(ctx)
            dirs.append(ctx.rd.root)
    assert main(["compare", *map(str, dirs), "--out", str(tmp_path / "cmp")]) == 0
    out = capsys.readouterr().out
    assert "| ioa | 2 |" in out and "| vanilla | 2 |" in out
    for name in ("compare.md", "compare.html", "compare.json", "plots/accuracy.png", "plots/sample_efficiency.png"):
        assert (tmp_path / "cmp" / name).exists(), name
    table = read_json(tmp_path / "cmp" / "compare.json")
    row = next(r for r in table["methods"] if r["method"] == "vanilla")
    results = [load_result(d) for d in dirs if d.name.startswith("vanilla")]
    alls = [sum(r.after.values()) / len(r.after) for r in results]
    mean = sum(alls) / 2
    std = (sum((x - mean) ** 2 for x in alls)) ** 0.5  # n - 1 = 1
    assert row["all_after"] == pytest.approx([mean, std])
    deficient = [sum(r.after[m] for m in r.deficient) / len(r.deficient) for r in results]
    assert row["deficient_after"][0] == pytest.approx(sum(deficient) / 2)
    known = [sum(v for m, v in r.after.items() if m not in r.deficient) / (len(r.after) - len(r.deficient))
             for r in results]
    assert row["known_after"][0] == pytest.approx(sum(known) / 2)
    assert row["budget"]["examples"][0] == pytest.approx(sum(r.budget["examples"] for r in results) / 2)
    assert compare(results)["methods"][0]["n"] == 2
    (pair,) = table["paired"]  # vanilla against ioa, seed by seed
    ioa_runs = {r.seed: r for r in (load_result(d) for d in dirs if d.name.startswith("ioa"))}
    deltas = [run_scores(r)["all_after"] - run_scores(ioa_runs[r.seed])["all_after"] for r in results]
    assert pair["method"] == "vanilla" and pair["seeds"] == 2
    assert pair["delta_all_after"][0] == pytest.approx(sum(deltas) / 2)
    assert pair["ahead"] + pair["level"] + pair["behind"] == 2
    ci = pair["ci"]["all"]  # the bootstrap's point estimate is the mean paired difference over seeds and items
    assert ci["seeds"] == 2 and ci["low"] <= ci["mean"] <= ci["high"]
    assert ci["mean"] == pytest.approx(sum(deltas) / 2, abs=1e-6)
    assert table["paired_vs_vanilla"][0]["method"] == "ioa"
    md = (tmp_path / "cmp" / "compare.md").read_text()
    assert ("teacher tokens" in md and "trained tokens" in md and "Paired against ioa" in md
            and "held-out items per module" in md)
    assert "Paired against vanilla" in md and "95% CI" in md


def test_compare_names_a_run_that_has_not_finished(tmp_path, capsys):
    from ioa.cli import main

    (tmp_path / "half").mkdir()
    assert main(["compare", str(tmp_path / "half")]) == 2
    assert "half: no summary.json" in capsys.readouterr().err


class BenchmarkAnsweringFake(LearningFake):
    """The learning fake, plus free-form generation for benchmark prompts: it always answers 18 (GSM8K's
    first test item is 18, its second is 3), so the scoring path is exercised with a known result."""

    def generate(self, prompts, **kwargs):
        self.last_generation = {"prompts": len(prompts)}
        return ["She sells 16 - 3 - 4 = 9 eggs for $2 each.\n#### 18" for _ in prompts]


def test_configured_benchmarks_are_scored_before_and_after_and_reported(tmp_path, monkeypatch):
    from ioa.report import write_report

    data = Path(os.environ.get("IOA_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))
    if not (data / "gsm8k" / "test.jsonl").exists():
        pytest.skip(f"benchmark data not found in {data} (set IOA_DATA_DIR)")
    ctx = make_ctx(tmp_path, "ioa",
                   **{"eval.benchmarks": "[gsm8k]", "eval.benchmark_limit": 2, "eval.data_dir": str(data)})
    ctx.student = BenchmarkAnsweringFake(START, ctx.domain.declared_prerequisites())
    summary = run(ctx)
    for when in ("before", "after"):
        results = read_json(ctx.rd.root / "benchmarks" / when / "results.json")
        assert results["benchmarks"]["gsm8k"]["n"] == 2
        assert len(read_jsonl(ctx.rd.root / "benchmarks" / when / "gsm8k.samples.jsonl")) == 2
    metrics = summary["benchmarks"]["after"]["gsm8k"]
    assert metrics["n"] == 2 and 0.5 in metrics.values()  # one of two right, strict and flexible alike
    write_report(ctx.rd.root)
    assert "## Benchmarks" in (ctx.rd.root / "report.md").read_text()


def test_self_instruct_keeps_teacher_calls_for_answering_its_pool(tmp_path):
    """Rejected near-duplicates cost calls too; the pool must still be answered within the cap."""
    summary = run(make_ctx(tmp_path, "self-instruct", **{"budget.max_teacher_calls": 60, "budget.max_examples": 1000}))
    assert 0 < summary["budget"]["used"]["teacher_calls"] <= 60


def test_run_schedule_hands_each_round_the_steps_spent_before_it(tmp_path):
    ctx = make_ctx(tmp_path, "ioa", **{"student.lr_schedule": "run", "student.max_steps_per_stage": 5})
    run(ctx)
    windows = ctx.student.lr_windows
    metrics = sorted((ctx.rd.root / "stages").rglob("round-*/metrics.json"), key=lambda p: p.stat().st_mtime)
    starts = [0]
    for path in metrics[:-1]:
        starts.append(starts[-1] + read_json(path)["steps"])
    assert len(windows) >= 2 and windows == [(s, CAPS["budget.max_steps"]) for s in starts]
    plain = make_ctx(tmp_path, "vanilla", name="plain")
    run(plain)
    assert plain.student.lr_windows == [None]  # the default: one decay per round, nothing passed


def test_run_schedule_needs_a_step_budget():
    from ioa.config import ConfigError

    with pytest.raises(ConfigError, match="budget.max_steps"):
        load_config(None, None, ["student.lr_schedule=run"])


def test_candidates_per_example_trains_each_modules_hardest_and_pays_their_calls(tmp_path):
    plain = run(make_ctx(tmp_path, "ioa", name="plain"))
    ctx = make_ctx(tmp_path, "ioa", name="picked", **{"synthesis.candidates_per_example": 3})
    picked = run(ctx)
    assert ctx.student.scored, "the student scored the candidates"
    trained = {e["id"] for e in new_examples(ctx.rd)}
    for scored in ctx.student.scored:
        for module in {e.module for e, _ in scored}:
            kept = [loss for e, loss in scored if e.module == module and e.id in trained]
            dropped = [loss for e, loss in scored if e.module == module and e.id not in trained]
            assert len(kept) == -(-(len(kept) + len(dropped)) // 3)
            assert not dropped or min(kept) >= max(dropped)
    rounds = [read_json(p) for p in sorted((ctx.rd.root / "stages").rglob("synthesis.json"))]
    assert any(r.get("candidates", 0) > 2 * r["examples"] for r in rounds if r["examples"])
    # every candidate is paid for in teacher calls (one to write, one to solve); only the kept count as examples
    assert all(r["teacher_calls"] >= 2 * r.get("candidates", r["examples"]) for r in rounds)
    assert picked["budget"]["used"]["examples"] <= CAPS["budget.max_examples"]
    assert picked["budget"]["used"]["teacher_calls"] > plain["budget"]["used"]["teacher_calls"]


def test_candidates_need_a_student_that_scores_them(tmp_path):
    ctx = make_ctx(tmp_path, "ioa", **{"synthesis.candidates_per_example": 2})
    ctx.student.completion_losses = None  # a student without the capability
    with pytest.raises(ValueError, match="candidates_per_example: 2 needs a student that scores"):
        run(ctx)


EXHAUSTED_BAND = ["multiplication_facts", "division_facts", "multi_digit_addition"]


def teach_exhausted_band(tmp_path, name, **over):
    """IOA in one stage on the default's band (d in [0, 0.3]), where division facts hold about 40 problems and
    the probes take 20: the setting of the exhausted-band switches."""
    ctx = make_ctx(tmp_path, "ioa", name, **{
        "modules": f"[{', '.join(EXHAUSTED_BAND)}]", "probe.difficulty": 0.15, "probe.difficulty_spread": 0.15,
        "probe.items_per_module": 20, "synthesis.examples_per_module": 40, "organizer.interleave": True,
        "budget.max_teacher_calls": 2000, **over})
    start = {"multiplication_facts": 0.95, "division_facts": 0.3, "multi_digit_addition": 0.3}
    ctx.student = LearningFake(start, ctx.domain.declared_prerequisites())
    run(ctx)
    return ctx


def assert_fresh_prompts(ctx, examples):
    """No example is a probe or test item, and none repeats another."""
    probes = {json.loads(line)["question"] for line in ctx.rd.probes.read_text().splitlines()}
    test = {json.loads(line)["question"] for line in (ctx.rd.root / "test_items.jsonl").read_text().splitlines()}
    assert not {e["prompt"].split("\n\n")[0] for e in examples} & (probes | test)
    assert len({e["prompt"] for e in examples}) == len(examples)


def test_step_up_fills_an_exhausted_band_from_the_next_band_up(tmp_path):
    """`synthesis.step_up_when_exhausted`: division facts at the default's band (d in [0, 0.3]) hold about 40
    problems and the probes take 20, so the module is taught on fewer than its share; with the switch the
    rest come from the band above ([0.3, 0.6]), never a probe or test prompt."""
    def teach(name, step_up):
        ctx = teach_exhausted_band(tmp_path, name, **{"budget.max_examples": 400,
                                                      "synthesis.step_up_when_exhausted": step_up})
        return ctx, [e for e in new_examples(ctx.rd) if e["module"] == "division_facts"]

    _, plain = teach("plain", False)
    ctx, stepped = teach("stepped", True)
    assert len(plain) < 30 and all(e["difficulty"] <= 0.3 for e in plain)
    above = [e for e in stepped if e["difficulty"] > 0.3]
    assert len(stepped) - len(above) == len(plain) and len(above) >= 15  # the band's own problems, then more
    assert all(e["difficulty"] <= 0.6 for e in above)
    assert_fresh_prompts(ctx, stepped)


def test_share_shortfall_gives_an_exhausted_modules_examples_to_the_stages_other_modules(tmp_path):
    """`synthesis.share_shortfall`: what division facts' band cannot give is made for the stage's other
    modules in the same band, so the one stage makes as many new examples as it planned; never a probe or
    test prompt, never a duplicate."""
    def teach(name, share):
        ctx = teach_exhausted_band(tmp_path, name, **{"synthesis.replay_fraction": 0.1, "budget.max_examples": 80,
                                                      "synthesis.share_shortfall": share})
        return ctx, Counter(e["module"] for e in new_examples(ctx.rd)), new_examples(ctx.rd)

    _, plain, _ = teach("plain", False)
    ctx, shared, examples = teach("shared", True)
    planned = 80 - 8  # the cap less the replay share (10%) made on top of the new examples
    assert plain["division_facts"] < planned // 2 and plain["multi_digit_addition"] == planned // 2  # not spent
    assert shared["division_facts"] == plain["division_facts"]
    assert shared["multi_digit_addition"] + shared["division_facts"] == planned  # the whole plan, no more
    assert all(e["difficulty"] <= 0.3 for e in examples)
    assert_fresh_prompts(ctx, examples)
    assert json.loads((ctx.rd.root / "summary.json").read_text())["budget"]["used"]["examples"] <= 80


def test_vanilla_can_spend_what_its_even_spread_leaves_unspent(tmp_path):
    """`baseline.share_shortfall`: vanilla's even spread asks every module for the same count; what the facts'
    bands cannot give is made for the column procedure instead, within the example cap."""
    def teach(name, share):
        ctx = make_ctx(tmp_path, "vanilla", name, **{
            "modules": f"[{', '.join(EXHAUSTED_BAND)}]", "probe.difficulty": 0.15, "probe.difficulty_spread": 0.15,
            "probe.items_per_module": 20, "budget.max_examples": 120, "budget.max_teacher_calls": 2000,
            "baseline.share_shortfall": share})
        run(ctx)
        return Counter(e["module"] for e in new_examples(ctx.rd))

    plain, shared = teach("plain", False), teach("shared", True)
    assert plain["multi_digit_addition"] == 40 and sum(plain.values()) < 120  # the facts ran out
    assert {m: shared[m] for m in EXHAUSTED_BAND[:2]} == {m: plain[m] for m in EXHAUSTED_BAND[:2]}
    assert sum(shared.values()) == 120


def test_shared_shortfall_splits_what_exhausted_modules_could_not_make_over_the_others():
    def ex(module, i):
        return Example(id=f"x{i}", module=module, prompt=f"p{module}{i}", completion="", answer="1", difficulty=0.1)
    asked = {"division_facts": [0.1] * 5, "mean": [0.2] * 4, "multi_digit_addition": [0.2] * 4, "empty": []}
    made = [ex("division_facts", i) for i in range(2)] + [ex("mean", i) for i in range(3)] + \
        [ex("multi_digit_addition", i) for i in range(4)]
    more = shared_shortfall(asked, made, 0.0, 0.3, False, 0)
    assert {m: len(ds) for m, ds in more.items()} == {"multi_digit_addition": 4}  # 3 + 1 short, one taker
    assert all(0.0 <= d <= 0.3 for d in more["multi_digit_addition"])
    assert shared_shortfall(asked, made + [ex("division_facts", 9)] * 3 + [ex("mean", 9)], 0.0, 0.3, False, 0) == {}


def test_step_up_band_is_the_next_band_of_the_same_width():
    assert step_up_band(0.0, 0.3) == (0.3, 0.6)
    assert step_up_band(0.5, 0.8) == (0.8, 1.0)  # clipped at the top of the range


def test_shortfalls_counts_what_was_asked_and_not_made():
    def ex(module, i):
        return Example(id=f"x{i}", module=module, prompt=f"p{module}{i}", completion="", answer="1", difficulty=0.1)
    made = [ex("division_facts", i) for i in range(3)] + [ex("mean", i) for i in range(4)]
    assert shortfalls({"division_facts": [0.1] * 5, "mean": [0.2] * 4}, made) == {"division_facts": 2}
