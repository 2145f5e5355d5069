"""Damaged run directories: what `resume` does with a torn file, a missing checkpoint and a stale summary.

A file that the run writes atomically cannot be half-written by a kill, so a bad line in one means the
directory was edited or copied half-way: resume names the file and line and stops before changing
anything. What the run can rebuild exactly (a round's trained state, the summary) it rebuilds.
"""
from __future__ import annotations

import hashlib
import json
import shutil

import pytest
from test_loop import make_ctx

from ioa.io import InputError
from ioa.methods.registry import run
from ioa.students.base import STATE_FILE


def snapshot(root):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.fixture
def finished(tmp_path):
    ctx = make_ctx(tmp_path, **{"synthesis.max_remedial_rounds": 1})
    return ctx, run(ctx)


def test_a_torn_line_stops_resume_and_changes_nothing(tmp_path, finished):
    ctx, _ = finished
    data = sorted((ctx.rd.root / "stages").rglob("train.jsonl"))[0]
    lines = data.read_text().splitlines(True)
    data.write_text("".join(lines[:3]) + lines[3][:20] + "\n" + "".join(lines[4:]))
    ctx.rd.summary.unlink()  # an unfinished run: resume must read the round's data
    before = snapshot(ctx.rd.root)
    with pytest.raises(InputError, match=rf"{data.name}: line 4: not valid JSON"):
        run(make_ctx(tmp_path))
    assert snapshot(ctx.rd.root) == before


def test_a_missing_round_state_is_trained_again_to_the_same_result(tmp_path, finished):
    ctx, summary = finished
    state = sorted((ctx.rd.root / "stages").rglob("state"))[0]
    shutil.rmtree(state)
    for path in (ctx.rd.summary, ctx.rd.final_eval):
        path.unlink()
    again = run(make_ctx(tmp_path))
    assert (state / STATE_FILE).exists()
    assert [m["p_student_after"] for m in again["modules"]] == [m["p_student_after"] for m in summary["modules"]]


def test_a_summary_from_another_version_is_rewritten_from_the_run_files(tmp_path, finished):
    ctx, summary = finished
    ctx.rd.summary.write_text(json.dumps({"status": "finished", "written_by": "ioa 0.0"}))
    again = run(make_ctx(tmp_path))
    rewritten = json.loads(ctx.rd.summary.read_text())
    assert "written_by" not in rewritten and rewritten == json.loads(json.dumps(again))
    assert again["modules"] == summary["modules"]
