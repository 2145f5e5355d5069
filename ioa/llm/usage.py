"""Teacher usage of a finished or stopped run, read from its ledger (RUN_DIR/teacher_calls.jsonl)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ioa.llm.accounting import Ledger


def read_totals(path: Path) -> dict[str, Any] | None:
    """Totals overall and per phase, as `Ledger.totals()`; None when the run made no LLM calls."""
    path = Path(path)
    if not path.is_file():
        return None
    ledger = Ledger(None)  # in memory: nothing is appended to the run's ledger by reading it
    ledger.path = path
    ledger._read_back()
    ledger.path = None
    return ledger.totals()
