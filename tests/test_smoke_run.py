"""End to end with the real default student: the smoke preset, killed with SIGKILL mid-training and
resumed (the session fixture `killed_and_resumed`, tests/conftest.py), and the bad-input errors of
`ioa run` / `ioa resume`. Runs in CI (marker: slow)."""
from __future__ import annotations

import json

import pytest
from cli_runs import check_finished_run, ioa, snapshot

pytestmark = pytest.mark.slow


def test_resume_after_sigkill_finishes_without_losing_or_duplicating_examples(killed_and_resumed):
    run_dir, before, resumed = killed_and_resumed
    check_finished_run(run_dir)  # also: unique example ids
    after = snapshot(run_dir)
    for name, text in before.items():
        assert after[name] == text  # data written before the kill is reused, byte for byte
    metrics = [json.loads(p.read_text()) for p in run_dir.glob("stages/*/round-*/metrics.json")]
    assert any(m.get("resumed_from") for m in metrics), "training did not resume from its checkpoint"


def test_the_run_says_each_phase_and_the_cost_of_teaching(killed_and_resumed):
    run_dir, _, resumed = killed_and_resumed
    first = resumed.first_stderr
    for phase in ("ioa: probing: ", "ioa: diagnosis: deficient ", "ioa: curriculum: ", "training on "):
        assert phase in first, phase
    summary = json.loads((run_dir / "summary.json").read_text())
    real_rounds = sum(len(s["rounds"]) for s in summary["stages"] if not s["bridge"])
    assert ((first + resumed.stderr).count("ioa: gate: min P_S/P_T ") >= 1
            and resumed.stderr.count(" ends on round ") >= 1)
    assert real_rounds >= 1
    out = resumed.stdout
    assert "deficient modules (" in out and "points)" in out
    untaught = summary["not_taught"]
    if untaught["modules"]:  # the cost of teaching: every module not taught, in the same units
        assert (f"modules not taught ({len(untaught['modules'])}: " in out
                and f"{untaught['change_points']:+.1f} points" in out)
        # Forgetting bound: at most one of the 16 known probe items lost (one item is 6.25 points). Before
        # replay kept its share, smoke runs' known facts fell about 50 points; at the LoRA default lr 1e-3
        # they fell 12.5 and 25.0 points on seeds 0 and 1 (0.0 on seed 2), which this bound fails; at the
        # preset's 3e-4 they held (+6.2, 0.0, +6.2 on seeds 0-2, bf16; 2026-12-05).
        assert untaught["change_points"] >= -6.25, untaught


def test_resume_with_another_config_is_refused(killed_and_resumed):
    run_dir, _, _ = killed_and_resumed
    proc = ioa("resume", run_dir, "--preset", "smoke", "--set", "seed=9", check=False)
    assert proc.returncode == 2 and "different configuration" in proc.stderr and "seed" in proc.stderr


def test_unloadable_student_is_one_clear_error(tmp_path):
    proc = ioa("run", "--preset", "smoke", "--set", f"student.model={tmp_path}/no-such-model", "--run-dir",
               tmp_path / "r", check=False)
    assert proc.returncode == 2 and "no-such-model" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "r").exists()


def test_unknown_domain_is_one_clear_error(tmp_path):
    proc = ioa("run", "--preset", "smoke", "--set", "domain=astrology", "--run-dir", tmp_path / "r", check=False)
    assert proc.returncode == 2 and "unknown domain 'astrology'" in proc.stderr
    assert not (tmp_path / "r").exists()
