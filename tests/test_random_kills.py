"""SIGKILL at random instants, then `resume`, until the run finishes: the result must be an uninterrupted run's.

Each attempt is a real child process running the whole method with the fast learning fake; the parent
waits until the run has started, sleeps a random time from a seeded generator and kills it with
SIGKILL (nothing in the child can react). The kill points used are printed (`pytest -s`) with the seed.
Compared with an uninterrupted run in another process: every round's examples with the same ids in
the same order (none lost, none duplicated), the same selected rounds, the same final accuracies
exactly, and the same counted teacher usage (no call counted twice).
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ioa.io import read_jsonl

ROOT = Path(__file__).resolve().parent.parent
SEED = 20261202
KILLS = 20

CHILD = f"""
import sys
sys.path.insert(0, {str(ROOT / "tests")!r})
from pathlib import Path
from test_loop import make_ctx
from ioa.methods.registry import run
ctx = make_ctx(Path(sys.argv[1]), **{{"synthesis.max_remedial_rounds": 1}})
print("go", flush=True)
run(ctx)
print("finished", flush=True)
"""


def start(tmp: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", CHILD, str(tmp)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, cwd=ROOT, env=env)


def finish(tmp: Path) -> float:
    """Run to the end in one process; its wall time from 'go'."""
    child = start(tmp)
    assert child.stdout.readline().strip() == "go"
    began = time.perf_counter()
    out, _ = child.communicate(timeout=120)
    assert child.returncode == 0 and out.strip() == "finished"
    return time.perf_counter() - began


def run_files(root: Path) -> dict:
    run_dir = root / "run"
    rounds = {str(p.relative_to(run_dir)): [e["id"] for e in read_jsonl(p)]
              for p in sorted(run_dir.rglob("train.jsonl"))}
    selected = {str(p.relative_to(run_dir)): json.loads(p.read_text())["round"]
                for p in sorted(run_dir.rglob("selected.json"))}
    summary = json.loads((run_dir / "summary.json").read_text())
    return {"rounds": rounds, "selected": selected,
            "final": json.loads((run_dir / "final_eval.json").read_text())["accuracy"],
            "teacher_usage": summary["teacher_usage"], "stages": [s["modules"] for s in summary["stages"]]}


@pytest.mark.slow  # about 30 child processes: 30 s
def test_sigkill_at_random_instants_then_resume_gives_the_uninterrupted_result(tmp_path):
    reference = tmp_path / "reference"
    duration = finish(reference)
    expected = run_files(reference)
    assert all(len(ids) == len(set(ids)) for ids in expected["rounds"].values())
    rng = random.Random(SEED)
    kills: list[tuple[int, float]] = []  # (chain, seconds after the run started)
    chain = 0
    while len(kills) < KILLS:
        chain += 1
        work = tmp_path / f"chain-{chain}"
        for _ in range(12):  # a few kills per run directory, each at a random instant of what is left to do
            child = start(work)
            assert child.stdout.readline().strip() == "go"
            delay = rng.uniform(0.0, duration)
            time.sleep(delay)
            if child.poll() is not None:  # it finished before the kill
                break
            child.send_signal(signal.SIGKILL)
            child.wait()
            kills.append((chain, round(delay, 3)))
        finish(work)
        assert run_files(work) == expected, f"chain {chain} after kills {[k for c, k in kills if c == chain]}"
    print(f"seed {SEED}: {len(kills)} SIGKILLs at (chain, seconds after start) {kills}; "
          f"uninterrupted run {duration:.2f} s")
    assert len(kills) >= KILLS
