"""`ioa` as a user runs it, in a subprocess, for the end-to-end tests: the CLI helper and the smoke run
that is killed with SIGKILL three times and resumed to the end (tests/conftest.py shares it per session:
tests/test_smoke_run.py checks it, tests/test_real_teacher_server.py serves its model as a teacher)."""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

CACHE_ROOT = Path(__file__).resolve().parent / ".cache" / "runs"  # runs share converted models in .cache
KILL_SEED = 7  # the random kill instants below; printed with `pytest -s`


def ioa(*args, check=True, timeout=600, env: dict | None = None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **(env or {})}
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


def check_finished_run(run_dir: Path) -> dict:
    """What every finished run directory holds, whatever ran it (one process, several, resumed or not):
    the summary with its per-module figures, the report and result files, unique example ids in the
    rounds' train.jsonl, and a merged model that loads. Returns the summary."""
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM

    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished"
    for m in summary["modules"]:
        assert {"id", "p_teacher", "p_student_before", "p_student_after", "deficient"} <= set(m)
        assert 0.0 <= m["p_student_after"] <= 1.0
    for name in ("report.md", "report.html", "diagnosis.json", "curriculum.json", "final_eval.json",
                 "timings.json", "memory.json", "config.yaml"):
        assert (run_dir / name).exists(), name
    ids = [e["id"] for text in snapshot(run_dir).values() for e in map(json.loads, text.splitlines())]
    assert ids and len(ids) == len(set(ids))
    data = load_dataset("json", data_files=[str(p) for p in run_dir.glob("stages/*/round-*/train.jsonl")],
                        split="train")
    assert len(data) == len(ids) and {"id", "prompt", "completion"} <= set(data.column_names)
    model = AutoModelForCausalLM.from_pretrained(run_dir / "model")
    assert model.num_parameters() > 100_000_000
    return summary


def killed_and_resumed_smoke_run() -> Iterator[tuple[Path, dict[str, str], subprocess.CompletedProcess]]:
    """The smoke run killed with SIGKILL three times, then resumed to the end: once at a random instant
    of its first minute (probing, diagnosis, synthesis), once at a random instant after a trainer
    checkpoint is complete (so resuming mid-round is what gets tested; a kill in the middle of a save
    is covered by tests/test_checkpoints.py), and once at a random instant of the resume after that.
    Yields (run dir, train.jsonl snapshot before the last resume, the last resume's process)."""
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
    try:
        yield run_dir, before, resumed
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
