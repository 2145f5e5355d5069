"""The teacher client every LLM caller uses: cache, budget and ledger around a chat backend.

`TeacherClient.complete` answers what the cache has, checks the budget for the rest, sends the misses to
the backend in one batch, caches the successes and records every call in the ledger, then returns the
results in request order. Failed calls come back with `error` set; `raise_failures` turns them into one
TeacherCallError. When the budget runs out partway through a batch, the misses that fit are still sent,
cached and recorded before BudgetExceeded is raised, so nothing paid for is lost.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable, Sequence

from ioa.chat import BudgetExceeded, ChatBackend, ChatRequest, ChatResult, Closes, CountsTokens, TeacherCallError
from ioa.config import BudgetConfig, Price, RunConfig, TeacherConfig
from ioa.llm.accounting import Budget, Estimate, Ledger, estimate_call
from ioa.llm.cache import ResponseCache
from ioa.llm.openai_backend import scrub

__all__ = ["TeacherClient", "build_client", "raise_failures"]

log = logging.getLogger(__name__)
CACHE_FILE = "teacher.sqlite"
FAILURES_LISTED = 10


class TeacherClient:
    """A ChatBackend (same `model`) that adds the response cache, the budget and the ledger.

    `price` prices the worst case the budget checks (default: nothing, so only a token budget binds);
    `count_tokens` counts prompt tokens for that estimate (default: four characters per token).
    Identical requests within one batch are sent once when the cache is on (they share a cache key).
    """

    def __init__(self, backend: ChatBackend, cache: ResponseCache | None = None, ledger: Ledger | None = None,
                 budget: Budget | None = None, *, price: Price | None = None,
                 count_tokens: Callable[[str], int] | None = None):
        self.backend = backend
        self.model = backend.model
        self.cache = cache
        self.ledger = ledger if ledger is not None else Ledger(None)
        self.budget = budget
        self.price = price
        self.count_tokens = count_tokens

    def __repr__(self) -> str:
        return f"TeacherClient({self.backend!r}, cache={self.cache!r}, budget={self.budget!r})"

    def complete(self, requests: Sequence[ChatRequest]) -> list[ChatResult]:
        requests = list(requests)
        results: list[ChatResult | None] = [None] * len(requests)
        if self.cache is not None:
            for i, hit in enumerate(self.cache.get_many(requests, self.model)):
                if hit is not None:
                    results[i] = hit
                    self.ledger.record(requests[i], hit, wall_s=0.0, model=self.model)

        # Misses, one per distinct cache key when the cache is on; `followers` get the leader's answer.
        leaders: list[int] = []
        followers: dict[int, list[int]] = {}
        by_key: dict[str, int] = {}
        for i, result in enumerate(results):
            if result is not None:
                continue
            if self.cache is not None:
                key = requests[i].cache_key(self.model)
                if key in by_key:
                    followers.setdefault(by_key[key], []).append(i)
                    continue
                by_key[key] = i
            leaders.append(i)

        send, reserved, stopped = self._admit(requests, leaders)
        try:
            if send:
                start = time.perf_counter()
                answers = self.backend.complete([requests[i] for i in send])
                if len(answers) != len(send):
                    raise RuntimeError(f"{self.backend!r} returned {len(answers)} results for {len(send)} requests")
                self._settle_answers(requests, send, answers, time.perf_counter() - start, results, followers)
        finally:
            if self.budget is not None:
                for estimate in reserved:
                    self.budget.settle(estimate)
        if stopped is not None:
            stopped.partial = results  # type: ignore[attr-defined]  # what was answered before the stop
            raise stopped
        return results  # type: ignore[return-value]  # every slot is filled when no budget stop happened

    def _admit(self, requests: list[ChatRequest], leaders: list[int]
               ) -> tuple[list[int], list[Estimate], BudgetExceeded | None]:
        """The misses the budget lets through (a prefix of `leaders`), their reservations, and the stop."""
        if self.budget is None:
            return leaders, [], None
        send: list[int] = []
        reserved: list[Estimate] = []
        totals = self.ledger.totals()
        for i in leaders:
            estimate = estimate_call(requests[i], self.price, self.count_tokens)
            try:
                self.budget.reserve(totals, estimate, requests[i])
            except BudgetExceeded as e:
                log.warning("budget stop: %d of %d uncached calls in this batch fit", len(send), len(leaders))
                return send, reserved, e
            send.append(i)
            reserved.append(estimate)
        return send, reserved, None

    def _settle_answers(self, requests: list[ChatRequest], send: list[int], answers: list[ChatResult],
                        batch_s: float, results: list[ChatResult | None], followers: dict[int, list[int]]) -> None:
        if self.cache is not None:
            self.cache.put_many([(requests[i], a) for i, a in zip(send, answers) if a.ok], self.model)
        for i, answer in zip(send, answers):
            results[i] = answer
            wall = answer.meta.get("wall_s", batch_s)
            self.ledger.record(requests[i], answer, wall_s=wall, model=self.model)
            for j in followers.get(i, ()):
                results[j] = answer if not answer.ok else _as_hit(answer)
                self.ledger.record(requests[j], results[j], wall_s=0.0, model=self.model)

    def close(self) -> None:
        for part in (self.backend, self.cache, self.ledger):
            if isinstance(part, Closes):
                part.close()

    def __enter__(self) -> "TeacherClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _as_hit(result: ChatResult) -> ChatResult:
    """A copy of `result` as a duplicate in the same batch sees it: a cache hit, costing nothing."""
    return ChatResult(text=result.text, raw=result.raw, model=result.model, prompt_tokens=result.prompt_tokens,
                      completion_tokens=result.completion_tokens, cost=0.0, cached=True, attempts=0,
                      meta={**result.meta, "cached_cost": result.cost})


def raise_failures(results: Sequence[ChatResult], requests: Sequence[ChatRequest]) -> None:
    """Raise one TeacherCallError listing the failed calls (phase/prompt: error), if any failed."""
    failed = [(q, r) for q, r in zip(requests, results) if r is not None and not r.ok]
    if not failed:
        return
    lines = [f"  {q.phase}/{q.prompt} (v{q.prompt_version}): {scrub(str(r.error), ())}"
             for q, r in failed[:FAILURES_LISTED]]
    if len(failed) > FAILURES_LISTED:
        lines.append(f"  ... and {len(failed) - FAILURES_LISTED} more")
    raise TeacherCallError(f"{len(failed)} of {len(results)} teacher call(s) failed after retries:\n"
                           + "\n".join(lines))


def build_client(cfg: RunConfig | TeacherConfig, cache_dir: str | Path, ledger_path: str | Path | None, *,
                 budget: BudgetConfig | None = None, run_dir: str | Path | None = None) -> TeacherClient:
    """The TeacherClient for a configuration: OpenAIBackend or HFBackend by `teacher.kind`, the response
    cache at `teacher.cache_path` or `cache_dir/teacher.sqlite` when `teacher.cache` is on, the ledger at
    `ledger_path`, and the budget from `cfg.budget` (a RunConfig) or `budget` (with a TeacherConfig).
    `run_dir` (default: the ledger's folder) is named in the budget message's resume command."""
    teacher = cfg.teacher if isinstance(cfg, RunConfig) else cfg
    budget_cfg = cfg.budget if isinstance(cfg, RunConfig) else budget
    cache_dir = Path(cache_dir)
    if teacher.kind == "openai":
        from ioa.llm.openai_backend import OpenAIBackend

        backend: ChatBackend = OpenAIBackend(teacher)
    elif teacher.kind == "hf":
        from ioa.llm.hf_backend import HFBackend

        backend = HFBackend(teacher, cache_dir)
    else:
        raise ValueError(f"teacher.kind {teacher.kind!r} is not an LLM teacher; use 'openai' or 'hf'")
    cache = None
    if teacher.cache:
        cache = ResponseCache(Path(teacher.cache_path).expanduser() if teacher.cache_path else cache_dir / CACHE_FILE)
    if run_dir is None and ledger_path is not None:
        run_dir = Path(ledger_path).parent
    limits = Budget.from_config(budget_cfg, run_dir=run_dir) if budget_cfg is not None else None
    price = teacher.prices.get(backend.model)
    return TeacherClient(backend, cache, Ledger(ledger_path), limits, price=price,
                         count_tokens=backend.count_tokens if isinstance(backend, CountsTokens) else None)
