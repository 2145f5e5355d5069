"""End to end with the real default student: the smoke preset, killed with SIGKILL mid-training and
resumed, and the bad-input errors of `ioa run` / `ioa resume`. Runs in CI (marker: slow)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CACHE_ROOT = Path(__file__).resolve().parent / ".cache" / "runs"  # runs share converted models in .cache


def ioa(*args, check=True, timeout=600):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "ioa.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(proc.stderr[-3000:])
    return proc


def wait_for(predicate, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.5)
    return False


def snapshot(run_dir: Path) -> dict[str, str]:
    return {str(p.relative_to(run_dir)): p.read_text() for p in sorted(run_dir.rglob("train.jsonl"))}


KILL_SEED = 7  # the random kill instants below; printed with `pytest -s`


@pytest.fixture(scope="module")
def killed_and_resumed():
    """The smoke run killed with SIGKILL three times, then resumed to the end: once at a random instant
    of its first minute (probing, diagnosis, synthesis), once at a random instant after a trainer
    checkpoint is complete (so resuming mid-round is what gets tested; a kill in the middle of a save
    is covered by tests/test_checkpoints.py), and once at a random instant of the resume after that."""
    import random

    rng = random.Random(KILL_SEED)
    run_dir = CACHE_ROOT / f"smoke-{os.getpid()}"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    start = [sys.executable, "-m", "ioa.cli", "run", "--preset", "smoke", "--run-dir", str(run_dir), "--no-progress"]
    resume = [sys.executable, "-m", "ioa.cli", "resume", str(run_dir), "--no-progress"]
    checkpoint = lambda: any(run_dir.glob("stages/*/round-*/trainer/checkpoint-*/trainer_state.json"))
    kills, first_stderr = [], ""
    for i, (cmd, after) in enumerate([(start, lambda: True), (resume, checkpoint), (resume, lambda: True)]):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        found = wait_for(lambda: after() or proc.poll() is not None, 400)  # noqa: B023 (called at once)
        assert found and proc.poll() is None, f"kill {i + 1}: the run ended before the moment to kill it"
        delay = rng.uniform(5.0, 60.0) if i == 0 else rng.uniform(0.0, 20.0)
        time.sleep(delay)
        assert proc.poll() is None, f"kill {i + 1}: the run ended within {delay:.1f} s"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        first_stderr += proc.stderr.read()
        kills.append(round(delay, 1))
    print(f"smoke run killed at {kills} s after each start (and the 2nd after a checkpoint), seed {KILL_SEED}")
    before = snapshot(run_dir)
    assert not (run_dir / "summary.json").exists()
    resumed = ioa("resume", run_dir, "--no-progress")
    resumed.first_stderr = first_stderr
    yield run_dir, before, resumed
    import shutil

    shutil.rmtree(run_dir, ignore_errors=True)


def test_resume_after_sigkill_finishes_without_losing_or_duplicating_examples(killed_and_resumed):
    run_dir, before, resumed = killed_and_resumed
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished"
    after = snapshot(run_dir)
    for name, text in before.items():
        assert after[name] == text  # data written before the kill is reused, byte for byte
    ids = [json.loads(line)["id"] for text in after.values() for line in text.splitlines()]
    assert len(ids) == len(set(ids))
    metrics = [json.loads(p.read_text()) for p in run_dir.glob("stages/*/round-*/metrics.json")]
    assert any(m.get("resumed_from") for m in metrics), "training did not resume from its checkpoint"
    for m in summary["modules"]:
        assert {"id", "p_teacher", "p_student_before", "p_student_after", "deficient"} <= set(m)
        assert 0.0 <= m["p_student_after"] <= 1.0


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
        # Forgetting bound. Before replay kept its share (a few fresh fact problems were left after the
        # probes, so 30% replay came out as ~10%), smoke runs' known facts fell from ~100% to 44-50%
        # (about -50 points); with the share kept, this machine measured -25.0 (16 probe items: one item is
        # 6.25 points). -40 fails the old behaviour and leaves two items of noise per module.
        assert untaught["change_points"] >= -40.0, untaught


def test_finished_run_has_report_and_loadable_model(killed_and_resumed):
    run_dir, _, _ = killed_and_resumed
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM

    for name in ("report.md", "report.html", "diagnosis.json", "curriculum.json", "final_eval.json"):
        assert (run_dir / name).exists(), name
    data = load_dataset("json", data_files=[str(p) for p in run_dir.glob("stages/*/round-*/train.jsonl")],
                        split="train")
    assert len(data) > 0 and {"id", "prompt", "completion"} <= set(data.column_names)
    model = AutoModelForCausalLM.from_pretrained(run_dir / "model")
    assert model.num_parameters() > 100_000_000


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
