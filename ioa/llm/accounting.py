"""Usage accounting and the spending limit: a JSONL ledger of every teacher call, and the budget check.

`Ledger` appends one line per call (flushed at once, so a killed run keeps the record of everything it
paid for) and keeps running totals per phase; opened on an existing file it reads it back, so a resumed
run continues the totals. Totals count tokens and cost of paid calls only: a cache hit is counted as a
call and as `cached`, never as spending.

`Budget` is checked before every paid call with that call's worst case (estimated prompt tokens plus
its full `max_tokens`), counting what is spent and what is still in flight; it raises BudgetExceeded
instead of making a call that could go over the limit.
"""
from __future__ import annotations

import json
import logging
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ioa.chat import BudgetExceeded, ChatRequest, ChatResult
from ioa.config import BudgetConfig, Price

__all__ = ["Budget", "Estimate", "Ledger", "empty_totals", "estimate_call"]

log = logging.getLogger(__name__)
MESSAGE_OVERHEAD_TOKENS = 4  # role markers and separators the chat template adds to each message
COUNTERS = ("calls", "cached", "errors", "attempts", "prompt_tokens", "completion_tokens", "tokens", "cost", "wall_s")


def empty_totals() -> dict[str, Any]:
    out: dict[str, Any] = {k: 0 for k in COUNTERS}
    out["cost"] = 0.0
    out["wall_s"] = 0.0
    return out


class Ledger:
    """Every teacher call, appended to `path` as JSONL (or only kept in memory when `path` is None)."""

    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        self._totals = empty_totals()
        self._phases: dict[str, dict[str, Any]] = {}
        self._file = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            torn = self._read_back(self.path)
            self._file = open(self.path, "a", encoding="utf-8")
            if torn:
                self._file.write("\n")  # the killed run's partial line stays on its own line
                self._file.flush()

    @classmethod
    def totals_of(cls, path: str | Path) -> dict[str, Any] | None:
        """The totals of a ledger file, read without opening it for appending; None when there is none."""
        if not Path(path).is_file():
            return None
        ledger = cls(None)
        ledger._read_back(Path(path))
        return ledger.totals()

    def _read_back(self, path: Path) -> bool:
        """Add an existing ledger's lines to the totals; True when its last line is incomplete (a run
        killed mid-write)."""
        if not path.is_file():
            return False
        data = path.read_text(encoding="utf-8")
        for number, line in enumerate(data.splitlines(), 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                log.warning("%s:%d: skipping an unreadable ledger line (a run killed while writing it?)", path, number)
                continue
            self._add(entry)
        return bool(data) and not data.endswith("\n")

    def _add(self, entry: dict[str, Any]) -> None:
        phase = self._phases.setdefault(entry.get("phase", "?"), empty_totals())
        for totals in (self._totals, phase):
            totals["calls"] += 1
            totals["attempts"] += int(entry.get("attempts", 0))
            totals["wall_s"] += float(entry.get("wall_s", 0.0))
            if entry.get("error"):
                totals["errors"] += 1
            if entry.get("cached"):
                totals["cached"] += 1
                continue
            prompt, completion = int(entry.get("prompt_tokens", 0)), int(entry.get("completion_tokens", 0))
            totals["prompt_tokens"] += prompt
            totals["completion_tokens"] += completion
            totals["tokens"] += prompt + completion
            totals["cost"] += float(entry.get("cost", 0.0))

    def record(self, request: ChatRequest, result: ChatResult, wall_s: float | None = None,
               model: str | None = None) -> dict[str, Any]:
        """Append one call and add it to the totals; returns the line written."""
        entry = {
            "time": round(time.time(), 3),
            "phase": request.phase,
            "prompt": request.prompt,
            "prompt_version": request.prompt_version,
            "model": model or result.model,
            "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens,
            "cost": result.cost,
            "cached": result.cached,
            "attempts": result.attempts,
            "error": result.error,
            "wall_s": round(wall_s if wall_s is not None else float(result.meta.get("wall_s", 0.0)), 4),
        }
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        with self._lock:
            if self._file is not None:
                self._file.write(line)
                self._file.flush()
            self._add(entry)
        return entry

    def totals(self) -> dict[str, Any]:
        """calls, cached, errors, attempts, prompt_tokens, completion_tokens, tokens, cost, wall_s, and
        the same per phase under "phases" (paid calls only in tokens and cost)."""
        with self._lock:
            out = dict(self._totals)
            out["phases"] = {p: dict(t) for p, t in sorted(self._phases.items())}
        return out

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class Estimate:
    """The worst case of one call: estimated prompt tokens, the full max_tokens, and their price."""

    prompt_tokens: int
    completion_tokens: int
    cost: float

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def estimate_call(request: ChatRequest, price: Price | None = None,
                  count_tokens: Callable[[str], int] | None = None) -> Estimate:
    """Worst-case usage of `request`: prompt tokens from `count_tokens` (e.g. a tokenizer's) or four
    characters per token, plus a few per message for the chat format, and all of `max_tokens`."""
    count = count_tokens or (lambda text: math.ceil(len(text) / 4))
    prompt = sum(count(content) + MESSAGE_OVERHEAD_TOKENS for _, content in request.messages)
    completion = request.max_tokens
    cost = 0.0
    if price is not None:
        cost = (prompt * price.input_per_mtok + completion * price.output_per_mtok) / 1e6
    return Estimate(prompt, completion, cost)


class Budget:
    """Cost and token limits for a run's teacher calls (None = no limit on that)."""

    def __init__(self, max_cost: float | None = None, max_tokens: int | None = None, *,
                 run_dir: str | Path | None = None):
        self.max_cost = max_cost
        self.max_tokens = max_tokens
        self.run_dir = str(run_dir) if run_dir is not None else "RUN_DIR"
        self._lock = threading.Lock()
        self._reserved_cost = 0.0
        self._reserved_tokens = 0

    @classmethod
    def from_config(cls, cfg: BudgetConfig, run_dir: str | Path | None = None) -> "Budget | None":
        if cfg.max_cost is None and cfg.max_tokens is None:
            return None
        return cls(cfg.max_cost, cfg.max_tokens, run_dir=run_dir)

    def __repr__(self) -> str:
        return f"Budget(max_cost={self.max_cost}, max_tokens={self.max_tokens})"

    @property
    def in_flight(self) -> tuple[float, int]:
        """(cost, tokens) reserved by calls not yet settled."""
        with self._lock:
            return self._reserved_cost, self._reserved_tokens

    def check(self, totals: dict[str, Any], estimate: Estimate, request: ChatRequest | None = None) -> None:
        """Raise BudgetExceeded if a call with this worst case could take spending past a limit."""
        with self._lock:
            self._check(totals, estimate, request)

    def reserve(self, totals: dict[str, Any], estimate: Estimate, request: ChatRequest | None = None) -> None:
        """`check`, then hold the worst case as in flight until `settle`."""
        with self._lock:
            self._check(totals, estimate, request)
            self._reserved_cost += estimate.cost
            self._reserved_tokens += estimate.tokens

    def settle(self, estimate: Estimate) -> None:
        """Release a reservation once the call's actual usage is in the ledger (or it was not sent)."""
        with self._lock:
            self._reserved_cost = max(0.0, self._reserved_cost - estimate.cost)
            self._reserved_tokens = max(0, self._reserved_tokens - estimate.tokens)

    def _check(self, totals: dict[str, Any], estimate: Estimate, request: ChatRequest | None) -> None:
        spent_cost, spent_tokens = float(totals.get("cost", 0.0)), int(totals.get("tokens", 0))
        what = f" ({request.phase}/{request.prompt})" if request is not None else ""
        if self.max_cost is not None and spent_cost + self._reserved_cost + estimate.cost > self.max_cost:
            raise BudgetExceeded(
                f"teacher budget reached: ${spent_cost:.4f} spent of max_cost ${self.max_cost:.4f}"
                f"{_in_flight(self._reserved_cost, '$', 4)}; the next call{what} could cost up to "
                f"${estimate.cost:.4f}. Every answer paid for is saved; continue with "
                f"`ioa resume {self.run_dir} --max-cost X` with X above ${spent_cost + estimate.cost:.4f}"
            )
        if self.max_tokens is not None and spent_tokens + self._reserved_tokens + estimate.tokens > self.max_tokens:
            raise BudgetExceeded(
                f"teacher token budget reached: {spent_tokens} tokens spent of max_tokens {self.max_tokens}"
                f"{_in_flight(self._reserved_tokens, '', 0)}; the next call{what} could use up to "
                f"{estimate.tokens}. Every answer paid for is saved; continue with "
                f"`ioa resume {self.run_dir} --max-tokens N` with N above {spent_tokens + estimate.tokens}"
            )


def _in_flight(amount: float, unit: str, digits: int) -> str:
    return f" (+{unit}{amount:.{digits}f} in flight)" if amount else ""
