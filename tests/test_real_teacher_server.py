"""An LLM teacher that is a real model behind a real OpenAI-compatible server (`transformers serve`).

The teacher is the default student after the smoke run has taught it (the session fixture
`killed_and_resumed`): a 135M model that solves the arithmetic modules well, though not perfectly, so
its wrong answers are real ones that no script wrote. The server runs on a free port of 127.0.0.1 and is
killed at the end of the module, also on failure (tests/transformers_server.py). Runs in CI (slow).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cli_runs import ioa
from transformers_server import TransformersServer

from ioa.grading import final_answer
from ioa.io import read_jsonl

pytestmark = pytest.mark.slow

UNSET_KEY_ENV = "IOA_TEST_UNSET_LOCAL_KEY"  # never set: a server on 127.0.0.1 needs no key


@pytest.fixture(scope="module")
def served_teacher(killed_and_resumed):
    run_dir, _, _ = killed_and_resumed
    # continuous batching decodes the requests in flight together: 2.1x the calls/s of one-at-a-time on
    # one CPU thread at 8 in flight (bench/results/2026-12-04-teacher-throughput-transformers-serve.md)
    with TransformersServer(run_dir / "model", continuous_batching=True) as server:
        yield server


def teacher_sets(server: TransformersServer, tmp_path: Path) -> list[str]:
    sets = {"teacher.kind": "openai", "teacher.model": server.model, "teacher.base_url": server.base_url,
            "teacher.api_key_env": UNSET_KEY_ENV, "teacher.cache_path": str(tmp_path / "teacher.sqlite"),
            "teacher.max_tokens": 96, "teacher.concurrency": 8, "teacher.timeout_s": 120}
    return [a for k, v in sets.items() for a in ("--set", f"{k}={v}")]


def ledger(run_dir: Path) -> list[dict]:
    return list(read_jsonl(run_dir / "teacher_calls.jsonl"))


def test_arithmetic_from_a_real_model_checks_every_answer_and_teaches(served_teacher, tmp_path, monkeypatch):
    monkeypatch.delenv(UNSET_KEY_ENV, raising=False)
    run_dir = tmp_path / "run"
    # the smoke preset on one fact module the student knows and one column module it does not, with half
    # its examples: every teacher call is a real 135M generation on one CPU thread (about 6 s each without
    # batching), and 32 examples a module took this test past 15 minutes
    proc = ioa("run", "--preset", "smoke", "--run-dir", run_dir, "--no-progress",
               *teacher_sets(served_teacher, tmp_path), "--set", "modules=[addition_facts,multi_digit_addition]",
               "--set", "synthesis.examples_per_module=16",
               # the LoRA default rate, not the smoke preset's gentler 3e-4: with 8 examples this test checks
               # that the served teacher's checked solutions teach, and the lower rate moves the student less
               "--set", "student.learning_rate=1e-3", timeout=900, check=False)
    assert proc.returncode == 0, served_teacher.log_tail() + proc.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished"

    # The teacher's own accuracy per module, measured on the probes, is in the summary and the report.
    report = (run_dir / "report.md").read_text()
    assert "P_T (teacher)" in report
    for m in summary["modules"]:
        assert 0.0 <= m["p_teacher"] <= 1.0 and m["id"] in report
    print({m["id"]: (m["p_teacher"], m["p_student_before"], m["p_student_after"]) for m in summary["modules"]})

    # Every solution the teacher wrote was checked: the kept ones are trained on (the taught module's and
    # the replayed known module's), and the wrong ones are counted as rejected; a 135M teacher gets some
    # column additions wrong, so some are. Rejected replay solutions are not counted anywhere, hence <=.
    synth = [json.loads(p.read_text()) for p in sorted(run_dir.glob("stages/*/round-*/synthesis.json"))]
    examples = [e for p in sorted(run_dir.glob("stages/*/round-*/train.jsonl")) for e in read_jsonl(p)]
    fresh = [e for e in examples if e["kind"] != "replay"]
    assert fresh, "no teacher example survived the check"
    assert all(final_answer(e["completion"]) == e["answer"] for e in examples)
    replayed = {e["problem_id"] for e in examples if e["kind"] == "replay"}
    solves = [c for c in ledger(run_dir) if c["prompt"] == "solve" and c["phase"] == "synthesize"]
    rejected = sum(s["rejected"] for s in synth)
    assert rejected >= 1 and len(fresh) + rejected + len(replayed) <= len(solves)
    assert f"{rejected} / " in report  # the round table's "rejected / duplicates" column
    # and no rewrite that echoes the adapt prompt's scaffolding was trained on (ioa.teachers.llm.echoes_prompt)
    assert not any("Rewrite the solution" in e["completion"] or "</" in e["completion"] for e in examples)

    taught = [m for m in summary["modules"] if m["deficient"]]
    assert taught, "the taught teacher found nothing to teach the fresh student"
    before = sum(m["p_student_before"] for m in taught) / len(taught)
    after = sum(m["p_student_after"] for m in taught) / len(taught)
    assert after > before, (before, after)


def test_a_yaml_domain_with_a_weak_real_model_stops_cleanly_or_finishes(served_teacher, tmp_path, monkeypatch):
    """gsm8k asks the teacher for modules, problems and steps as JSON: a 135M model mostly writes prose.
    Every invalid answer is re-asked (`teacher.max_json_retries`), and when it stays invalid the run stops
    with one message that names the prompt, not a traceback."""
    monkeypatch.delenv(UNSET_KEY_ENV, raising=False)
    run_dir = tmp_path / "run"
    retries = 1
    proc = ioa("run", "--run-dir", run_dir, "--no-progress", *teacher_sets(served_teacher, tmp_path),
               "--set", "domain=gsm8k", "--set", f"teacher.max_json_retries={retries}",
               "--set", "probe.items_per_module=3", "--set", "synthesis.examples_per_module=4",
               "--set", "synthesis.max_remedial_rounds=0", "--set", "student.max_steps_per_stage=2",
               timeout=900, check=False)
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    if proc.returncode == 0:
        assert json.loads((run_dir / "summary.json").read_text())["status"] == "finished"
        return
    assert proc.returncode == 2, proc.stderr[-3000:]  # a user-facing error (ioa.cli.USER_ERRORS)
    error = [line for line in proc.stderr.splitlines() if line.startswith("ioa: error: ")]
    assert len(error) == 1 and "teacher output for prompt '" in error[0] and "still invalid after" in error[0], error
    prompt = error[0].split("prompt '")[1].split("'")[0]
    asked = [c for c in ledger(run_dir) if c["prompt"] == prompt]
    assert len(asked) >= 1 + retries  # the first answer and each re-ask reached the real server
    assert os.path.isdir(run_dir)
