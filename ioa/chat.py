"""The chat-backend protocol every LLM teacher is built on, and the records it passes.

A neutral module: the transport (`ioa.llm`: backends, the cached and metered client) implements it,
LLM-described domains and the LLM teacher call it, and the benchmarks' LLM judge (`ioa.evaluation`)
builds its requests with it, so none of them imports another for these records.

A backend takes a batch of requests and returns one result per request, in order. Batches let an
HTTP backend run requests concurrently and a local model batch its generation. A request that still
fails after the backend's retries comes back with `error` set (the failure is reported, never
silently dropped); callers decide whether that stops the run.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, Sequence, runtime_checkable

PHASES = ("identify", "synthesize", "adapt", "judge")  # identify: domain tree, probes, step splits


@dataclass(frozen=True)
class ChatRequest:
    """One chat-completions call.

    `phase` (one of PHASES) is what the call is for, for accounting; `prompt`/`prompt_version` name
    the template it was rendered from (recorded with every call); `seed` tells apart otherwise
    identical requests (several samples of one prompt) and is sent to APIs that accept it.
    """

    messages: tuple[tuple[str, str], ...]  # (role, content) pairs
    phase: str
    prompt: str
    prompt_version: str
    max_tokens: int = 1024
    temperature: float | None = 0.0
    seed: int | None = None

    @staticmethod
    def of(messages: Sequence[dict[str, str]] | Sequence[tuple[str, str]], **kw: Any) -> "ChatRequest":
        pairs = tuple((m["role"], m["content"]) if isinstance(m, dict) else (m[0], m[1]) for m in messages)
        return ChatRequest(messages=pairs, **kw)

    def message_dicts(self) -> list[dict[str, str]]:
        return [{"role": r, "content": c} for r, c in self.messages]

    def cache_key(self, model: str) -> str:
        """Hash of model, messages and the parameters that change the answer (not phase or bookkeeping)."""
        payload = {"model": model, "messages": self.messages, "max_tokens": self.max_tokens,
                   "temperature": self.temperature, "seed": self.seed}
        return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


@dataclass
class ChatResult:
    text: str  # the answer, think blocks stripped
    raw: str  # the message content exactly as returned
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0  # dollars, from the configured per-model prices
    cached: bool = False
    error: str | None = None  # set when the call failed after all retries
    attempts: int = 1  # HTTP attempts made (1 = no retry)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class ChatBackend(Protocol):
    model: str

    def complete(self, requests: Sequence[ChatRequest]) -> list[ChatResult]:
        """One result per request, in order."""
        ...


@runtime_checkable
class CountsTokens(Protocol):
    """Optional backend capability: its model's own token count of a text (a local model's tokenizer),
    which the budget's worst-case estimate then uses instead of four characters per token."""

    def count_tokens(self, text: str) -> int:
        ...


@runtime_checkable
class Closes(Protocol):
    """Optional: resources (connections, threads, files) to release when the run is done with them."""

    def close(self) -> None:
        ...


class TeacherCallError(RuntimeError):
    """Calls that failed after all retries; the message lists them (never any credential)."""


class BudgetExceeded(RuntimeError):
    """The next call would exceed the run's cost or token budget; the run stops and can be resumed."""
