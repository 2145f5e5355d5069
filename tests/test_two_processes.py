"""The smoke run as two processes under `accelerate launch` (DDP over gloo on this CPU machine): rank 0 runs
the method and writes, rank 1 holds a replica that generates its share and trains (ioa.distributed).

`accelerate launch --cpu --num_processes 2` starts ONE process here: accelerate's multi-process CPU launch
goes through mpirun and a hostfile (`--mpirun_hostfile`). `--multi_gpu --num_processes 2` starts two
through torch's elastic launcher, and with no GPU they train on the CPU over gloo; that is what runs here.
Each rank runs under tests/audited_ioa.py, which records the files it writes. Runs in CI (slow).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cli_runs import check_finished_run

pytestmark = pytest.mark.slow

TESTS = Path(__file__).resolve().parent


def launch_two(run_dir: Path, log_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "IOA_TRACE_RANKS": "1", "IOA_TEST_WRITE_LOG_DIR": str(log_dir), "IOA_TEST_WATCHED_DIR": str(run_dir.parent)}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           str(TESTS / "audited_ioa.py"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env, cwd=TESTS.parent)


def layout(run_dir: Path) -> set[str]:
    """The run directory's files with stage and round numbers generalized (runs may differ in rounds)."""
    names = {str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file()}
    return {re.sub(r"round-\d+", "round-N", re.sub(r"stages/\d+", "stages/N", n)) for n in names}


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("two")
    run_dir, log_dir = root / "run", root / "writes"
    log_dir.mkdir()
    # The smoke preset with a quarter of its examples and steps: this checks who generates, trains and
    # writes, not how much the student learns, and the full smoke run took 230 s as two processes here.
    proc = launch_two(run_dir, log_dir, "run", "--preset", "smoke", "--run-dir", str(run_dir), "--no-progress",
                      "--set", "synthesis.examples_per_module=8", "--set", "student.max_steps_per_stage=3")
    assert proc.returncode == 0, proc.stderr[-4000:]
    return run_dir, log_dir, proc


def test_two_processes_finish_with_the_files_of_one(two_process_run, killed_and_resumed):
    run_dir, _, proc = two_process_run
    summary = check_finished_run(run_dir)
    one_dir = killed_and_resumed[0]
    assert layout(run_dir) == layout(one_dir)
    assert set(json.loads((run_dir / "timings.json").read_text())) == set(
        json.loads((one_dir / "timings.json").read_text()))
    one = json.loads((one_dir / "summary.json").read_text())
    assert set(summary) == set(one) and [m["id"] for m in summary["modules"]] == [m["id"] for m in one["modules"]]
    # Rank 0 alone speaks: each phase line once, not once per rank.
    assert proc.stderr.count("ioa: probing: ") == 1 and proc.stdout.count("finished: ") == 1
    print("two processes:", json.loads((run_dir / "timings.json").read_text()))
    print("one process (killed and resumed):", json.loads((one_dir / "timings.json").read_text()))


def test_only_rank_zero_writes_the_run_directory(two_process_run):
    run_dir, log_dir, _ = two_process_run
    rank0 = (log_dir / "rank0.tsv").read_text().splitlines()
    rank1 = (log_dir / "rank1.tsv").read_text().splitlines()
    assert any(line.endswith("/summary.json") for line in rank0)  # the record sees rank 0's writes
    assert rank1 == [], rank1[:10]


def test_probing_and_evaluation_were_split_across_the_ranks(two_process_run):
    """Rank 1 answered its share of every generation (probing, gates, final evaluation where it generates) and
    trained beside rank 0 (`IOA_TRACE_RANKS=1`: one line per command a rank ran), and rank 0 generated only its
    own share."""
    run_dir, _, proc = two_process_run
    # Searched for anywhere, not per line: both ranks write to one stderr pipe, and a rank-0 line longer than
    # the pipe's atomic write size (PIPE_BUF) can be split by a rank-1 line landing inside it.
    rank1 = re.findall(r"ioa rank 1: (\w+) [\d.]+ s \(waited", proc.stderr)
    shares = re.findall(r"ioa rank 0: generate [\d.]+ s \((\d+) of (\d+)\)", proc.stderr)
    # Every generation rank 0 ran was shared with rank 1: the probe and the round's gate at least (the smoke
    # run's final evaluation reuses the gate's answers, which covered every module with the final weights).
    assert rank1.count("generate") == len(shares) >= 2, (rank1, shares)
    assert "train" in rank1, rank1
    assert shares and all(int(mine) <= -(-int(total) // 2) for mine, total in shares), shares
    probed = sum(1 for _ in open(run_dir / "responses_before.jsonl"))
    assert (str(probed // 2), str(probed)) in shares or (str(-(-probed // 2)), str(probed)) in shares
