"""The run directory's typed records write the files as they always were and read older ones."""
from __future__ import annotations

from ioa.evaluate import gate
from ioa.methods.budget import Usage
from ioa.records import CurvePoint, FinalEval, GateDecision, RoundEval, RunSummary, SelectedRound


def test_records_write_the_keys_in_the_order_the_files_have():
    decision = gate({"a": 0.5, "b": 1.0}, {"a": 1.0, "b": 1.0}, ["a", "b"], 0.9)
    assert list(decision.to_dict()) == ["passed", "min_ratio", "threshold", "ratios", "failing", "action"]
    assert decision.failing == ["a"] and not decision.passed
    assert GateDecision.from_dict(decision.to_dict()) == decision
    point = CurvePoint(**Usage(examples=3).to_dict(), accuracy={"a": 1.0}, mean=1.0, items=[])
    assert list(point.to_dict()) == [*Usage().to_dict(), "accuracy", "mean", "items"]
    assert list(RoundEval({"a": 1.0}).to_dict()) == ["accuracy", "items", "stage_modules", "retention_modules",
                                                     "layout_bleed"]
    assert list(FinalEval({"a": 1.0}).to_dict()) == ["accuracy", "items", "reused_from"]
    assert list(SelectedRound(1, 0.5, 2).to_dict()) == ["round", "mean_accuracy", "rounds", "known_drop",
                                                        "max_known_drop", "rule"]


def test_older_files_load():
    """Fields later versions added are defaulted; keys a record does not know are ignored."""
    assert RoundEval.from_dict({"accuracy": {"a": 0.5}, "items": [], "stage_modules": ["a"]}).retention_modules == []
    assert CurvePoint.from_dict({"examples": 1, "steps": 2, "teacher_calls": 3, "mean": 0.5,
                                 "accuracy": {"a": 0.5}, "items": []}).trained_tokens == 0
    assert SelectedRound.from_dict({"round": 1, "mean_accuracy": 0.5, "rounds": 2}).round == 1
    old = RunSummary.from_dict({"status": "finished", "modules": [], "deficient": {"count": 0}, "later": 1})
    assert old.seed is None and old.tau_gap is None and old.layout_bleed == {}
