"""Resuming training only from checkpoints the trainer finished writing (a SIGKILL can land mid-save)."""
from __future__ import annotations

import json

from ioa.students.hf_train import last_complete_checkpoint


def test_half_written_checkpoint_is_skipped_and_removed(tmp_path):
    done = tmp_path / "checkpoint-2"
    done.mkdir()
    (done / "trainer_state.json").write_text(json.dumps({"global_step": 2}))
    partial = tmp_path / "checkpoint-10"  # numeric order, not text order: 10 > 2
    partial.mkdir()
    (partial / "adapter_model.safetensors").write_bytes(b"\0" * 8)
    truncated = tmp_path / "checkpoint-11"
    truncated.mkdir()
    (truncated / "trainer_state.json").write_text('{"global_st')
    assert last_complete_checkpoint(tmp_path) == str(done)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-2"]


def test_newest_complete_checkpoint_wins_and_none_when_empty(tmp_path):
    assert last_complete_checkpoint(tmp_path / "missing") is None
    for step in (3, 12):
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    assert last_complete_checkpoint(tmp_path).endswith("checkpoint-12")
