"""summary.json: the outcome of a finished run, computed only from files in the run directory."""
from __future__ import annotations

from typing import Any, Sequence

from ioa.config import RunConfig
from ioa.grading import mastered, passes
from ioa.io import read_json, read_jsonl
from ioa.records import CurvePoint, Evaluation, GateDecision, RoundEval, RunSummary, SelectedRound
from ioa.rundir import RunDir
from ioa.types import Curriculum, Diagnosis


def stage_history(rd: RunDir, curriculum: Curriculum) -> list[dict[str, Any]]:
    """Per stage: its rounds with example counts, training loss and the gate's decision."""
    out = []
    for stage in curriculum.stages:
        rounds = []
        for rdir in rd.rounds(stage.index):
            entry: dict[str, Any] = {"round": rdir.index}
            if rdir.train.exists():
                kinds: dict[str, int] = {}
                for e in read_jsonl(rdir.train):
                    kinds[e["kind"]] = kinds.get(e["kind"], 0) + 1
                entry["examples"] = kinds
            if rdir.metrics.exists():
                m = read_json(rdir.metrics)
                entry["steps"], entry["final_loss"] = m.get("steps"), m.get("final_loss")
            if rdir.eval.exists():
                entry["accuracy"] = RoundEval.from_dict(read_json(rdir.eval)).accuracy
            if rdir.gate.exists():
                g = GateDecision.from_dict(read_json(rdir.gate))
                entry.update(passed=g.passed, min_ratio=g.min_ratio, action=g.action, ratios=g.ratios)
            rounds.append(entry)
        selected = rd.selected(stage.index)
        chosen = (SelectedRound.from_dict(read_json(selected)).round if selected.exists()
                  else rounds[-1]["round"] if rounds else None)
        out.append({**stage.to_dict(), "rounds": rounds, "selected_round": chosen})
    return out


def mastery_points(history: list[dict[str, Any]]) -> dict[str, tuple[int, float]]:
    """module -> (stage index, accuracy) at the last gate of its own stage, where P_S/P_T reached the threshold."""
    out: dict[str, tuple[int, float]] = {}
    for stage in history:
        if stage["bridge"] or not stage["rounds"]:
            continue
        last = next((r for r in stage["rounds"] if r["round"] == stage.get("selected_round")), stage["rounds"][-1])
        for m in stage["modules"]:
            acc = last.get("accuracy", {}).get(m)
            if acc is not None and passes(last.get("ratios", {}).get(m, 0.0), stage["mastery_threshold"]):
                out[m] = (stage["index"], acc)
    return out


def _mean(xs: list[float]) -> float | None:
    return round(sum(xs) / len(xs), 6) if xs else None


def before_accuracy(rd: RunDir, diagnosis: Diagnosis) -> dict[str, float]:
    """The student's accuracy before training on the items results are reported on: the held-out test
    set when the run has one, else the probes (the Identifier's P_S)."""
    if rd.test_before.exists():
        return Evaluation.from_dict(read_json(rd.test_before)).accuracy
    return {m.id: m.p_student for m in diagnosis.modules}


def learning_curve(rd: RunDir, before: dict[str, float]) -> list[dict[str, Any]]:
    """(examples, steps, teacher calls, mean accuracy) before training and after every trained round."""
    points = [{"examples": 0, "steps": 0, "teacher_calls": 0, "mean": _mean(list(before.values())), "accuracy": before}]
    for rdir in rd.all_rounds():
        if not rdir.curve.exists():
            continue
        c = CurvePoint.from_dict(read_json(rdir.curve))
        points.append({"examples": c.examples, "steps": c.steps, "teacher_calls": c.teacher_calls, "mean": c.mean,
                       "accuracy": c.accuracy})
    return points if len(points) > 1 else []


def benchmark_metrics(rd: RunDir) -> dict[str, dict[str, Any]] | None:
    """{"before": {benchmark: metrics}, "after": {...}} from DIR/benchmarks/*/results.json, if configured."""
    out = {}
    for when in ("before", "after"):
        path = rd.benchmark_results(when)
        if path.exists():
            out[when] = {name: {**b.get("metrics", {}), "n": b.get("n", 0)} if b.get("status") == "ok"
                         else {"status": b.get("status")}
                         for name, b in read_json(path)["benchmarks"].items()}
    return out or None


def completion_lengths(examples: Sequence[dict[str, Any]]) -> dict[str, dict[str, float | int]]:
    """module -> mean completion length, the teacher's raw text vs the adapted text the student was
    trained on, over the run's new examples (replay copies left out); lengths in estimated tokens
    (characters / 4, the teacher meter's estimate), so runs of different students compare."""
    from ioa.teachers.metered import estimate_tokens

    sums: dict[str, list[int]] = {}
    for e in examples:
        if e.get("kind") == "replay":
            continue
        t = sums.setdefault(e["module"], [0, 0, 0])
        t[0] += estimate_tokens(e.get("raw") or e["completion"])
        t[1] += estimate_tokens(e["completion"])
        t[2] += 1
    return {m: {"raw": round(r / n, 2), "adapted": round(a / n, 2), "examples": n}
            for m, (r, a, n) in sorted(sums.items())}


def trained_examples(rd: RunDir) -> list[dict[str, Any]]:
    """The examples of every round that trained (a round too small to train leaves its data unused)."""
    return [e for rdir in rd.all_rounds() if rdir.train.exists() and rdir.metrics.exists()
            for e in read_jsonl(rdir.train)]


def layout_bleed(rd: RunDir, final: Evaluation, examples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per module, the share of answers written in another module's layout (ioa.layouts), before training
    (the probe answers) and after (the final evaluation), with the layouts of the run's `examples`."""
    from ioa.layouts import bleed_share, module_layouts

    layouts = module_layouts(examples)
    before = read_jsonl(rd.responses_before) if rd.responses_before.exists() else []
    out: dict[str, Any] = {"before": bleed_share(before, layouts),
                           "after": bleed_share(final.items, layouts)}
    for when in ("before", "after"):
        out[f"mean_{when}"] = _mean(list(out[when].values()))
    return out


def summarize(rd: RunDir, diagnosis: Diagnosis, curriculum: Curriculum, final: Evaluation,
              cfg: RunConfig) -> RunSummary:
    from ioa.llm.accounting import Ledger
    from ioa.methods.budget import spent

    after = final.accuracy
    before_acc = before_accuracy(rd, diagnosis)
    history = stage_history(rd, curriculum)
    at_gate = mastery_points(history)
    last_real = max((s["index"] for s in history if not s["bridge"]), default=-1)
    taught = {m for s in curriculum.stages for m in s.modules}
    modules = []
    for m in diagnosis.modules:
        a = after.get(m.id)
        b = before_acc.get(m.id, m.p_student)
        room = m.p_teacher - b
        entry = {
            "id": m.id, "p_teacher": m.p_teacher, "p_student_before": b, "p_student_after": a,
            "deficient": m.deficient, "taught": m.id in taught, "severity": m.severity,
            "gap_closed": round((a - b) / room, 6) if a is not None and room > 0 else None,
        }
        if m.id in at_gate:
            stage_index, acc = at_gate[m.id]
            entry.update(mastered_at_stage=stage_index, p_student_at_mastery=acc,
                         forgetting=round(acc - a, 6) if a is not None else None)
        modules.append(entry)
    deficient = [x for x in modules if x["deficient"]]
    earlier = [x for x in modules if x.get("mastered_at_stage", last_real) < last_real]
    before_mean = _mean([x["p_student_before"] for x in deficient])
    after_mean = _mean([x["p_student_after"] for x in deficient if x["p_student_after"] is not None])
    tau = cfg.organizer.tau_mastery
    prior = [x for x in modules
             if not x["taught"] and mastered(x["p_student_before"], x["p_teacher"], tau)]
    prior_before = _mean([x["p_student_before"] for x in prior])
    prior_after = _mean([x["p_student_after"] for x in prior if x["p_student_after"] is not None])
    untaught = [x for x in modules if not x["taught"]]
    untaught_before = _mean([x["p_student_before"] for x in untaught])
    untaught_after = _mean([x["p_student_after"] for x in untaught if x["p_student_after"] is not None])
    retention_at = _mean([x["p_student_at_mastery"] for x in earlier])
    retention_end = _mean([x["p_student_after"] for x in earlier])
    budget = cfg.budget
    trained = trained_examples(rd)
    return RunSummary(
        status="finished",
        method=cfg.method,
        seed=cfg.seed,
        tau_gap=cfg.identifier.tau_gap,
        reported_on="test" if rd.test_before.exists() else "probes",
        budget={"used": spent(rd).to_dict(), "caps": {"examples": budget.max_examples, "steps": budget.max_steps,
                                                     "teacher_calls": budget.max_teacher_calls}},
        curve=learning_curve(rd, before_acc),
        teacher_usage=Ledger.totals_of(rd.teacher_calls),
        benchmarks=benchmark_metrics(rd),
        domain=cfg.domain,
        student=cfg.student.model,
        modules=modules,
        deficient={
            "count": len(deficient), "mean_before": before_mean, "mean_after": after_mean,
            "gain_points": round(100 * (after_mean - before_mean), 2) if deficient and after_mean is not None else None,
        },
        retention={
            "modules": [x["id"] for x in earlier], "mean_at_mastery": retention_at, "mean_final": retention_end,
            "drop_points": round(100 * (retention_at - retention_end), 2) if earlier else None,
        },
        prior_knowledge={  # modules mastered before the run and not taught: did teaching others hurt them?
            "modules": [x["id"] for x in prior], "mean_before": prior_before, "mean_after": prior_after,
            "drop_points": round(100 * (prior_before - prior_after), 2) if prior and prior_after is not None else None,
        },
        not_taught={  # every module the run did not teach, whatever its level: what teaching the others cost
            "modules": [x["id"] for x in untaught], "mean_before": untaught_before, "mean_after": untaught_after,
            "change_points": (round(100 * (untaught_after - untaught_before), 2)
                              if untaught and untaught_after is not None else None),
        },
        completion_tokens=completion_lengths(trained),
        layout_bleed=layout_bleed(rd, final, trained),
        adapter_choice=read_json(rd.adapter_choice)["choice"] if rd.adapter_choice.exists() else None,
        stages=history,
        timings=read_json(rd.timings) if rd.timings.exists() else {},
    )
