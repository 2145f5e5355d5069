"""The OpenAI-compatible chat backend: any `/v1/chat/completions` endpoint (OpenAI, vLLM, llama.cpp, ...).

Requests of a batch run concurrently (at most `teacher.concurrency` in flight) on a private event loop in
a background thread, so `complete` works from plain sync code and from inside another running loop. The
openai client's own retries are off; ours retry 429, 408, 409, 5xx, connection errors (refused, dropped,
incomplete reads), timeouts and malformed bodies with exponential backoff and full jitter, and honour
`Retry-After` / `retry-after-ms` (up to max(backoff_max_s, 120 s); a server asking for longer fails the
call at once). A request that still fails comes back with `error` set; the API key never appears in an
error, a log record or a result.
"""
from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import math
import os
import random
import re
import threading
import time
import weakref
from typing import Any, Awaitable, Sequence, TypeVar

import openai

try:  # the HTTP library under the openai client: httpx2 in openai 3.x, httpx before
    import httpx2 as _http
except ImportError:  # pragma: no cover - older openai
    import httpx as _http

from ioa.chat import ChatRequest, ChatResult
from ioa.config import TeacherConfig
from ioa.grading import strip_think

__all__ = ["OpenAIBackend", "LOCAL_PLACEHOLDER_KEY", "is_reasoning_model", "parse_retry_after", "scrub"]

log = logging.getLogger(__name__)
T = TypeVar("T")

# Sent when `base_url` points at a local server (vLLM, llama.cpp) and the key variable is unset: those
# servers accept any key, and the openai client refuses to start without one.
LOCAL_PLACEHOLDER_KEY = "EMPTY"
# Retry-After is obeyed up to this many seconds (or backoff_max_s if larger). A server asking for longer
# is signalling an exhausted quota, not congestion: the call fails at once rather than sleeping through
# the run, and the run can be resumed once the quota resets.
RETRY_AFTER_CAP_S = 120.0
RETRYABLE_STATUS = frozenset({408, 409, 429})
# o1, o1-mini, o3, o3-mini, o3-pro, o4-mini, with a provider prefix (openai/o3-mini) or a date suffix.
REASONING_NAME = re.compile(r"^o[1-9](?:$|-)")
ERROR_CHARS = 300
POOL_SLOTS = 32


def is_reasoning_model(model: str) -> bool:
    """True for o-series names: the last path segment is o<digit>, optionally followed by `-...`."""
    name = re.split(r"[/:]", model.strip().lower())[-1]
    return bool(REASONING_NAME.match(name))


def scrub(text: str, secrets: Sequence[str]) -> str:
    """`text` with every secret, any bearer token and anything shaped like an OpenAI key replaced."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = re.sub(r"(?i)(bearer\s+)\S+", r"\1***", text)
    return re.sub(r"\bsk-[A-Za-z0-9_-]{8,}", "sk-***", text)


def parse_retry_after(headers: Any, now: float | None = None) -> float | None:
    """Seconds the server asks us to wait: `retry-after-ms`, else `Retry-After` (seconds or an HTTP date)."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class MalformedResponse(Exception):
    """The server answered 2xx with a body that is not a chat completion (invalid JSON, no choices)."""


class _Failure:
    """A classified exception: what to report, whether to retry, how long the server asked us to wait."""

    def __init__(self, message: str, retryable: bool, retry_after: float | None = None):
        self.message = message
        self.retryable = retryable
        self.retry_after = retry_after


def _first_line(text: str) -> str:
    lines = str(text).strip().splitlines()
    return lines[0] if lines else ""


def classify(err: BaseException) -> _Failure:
    if isinstance(err, openai.APITimeoutError):
        return _Failure("timeout", True)
    if isinstance(err, openai.APIConnectionError):
        cause = err.__cause__ or err.__context__
        detail = f"{type(cause).__name__}: {_first_line(cause)}" if cause else _first_line(err)
        return _Failure(f"connection error ({detail})", True)
    if isinstance(err, openai.APIStatusError):
        status = err.status_code
        retryable = status in RETRYABLE_STATUS or status >= 500
        hint = parse_retry_after(err.response.headers) if retryable else None
        body = err.body
        if isinstance(body, dict):
            inner = body.get("error", body)
            detail = inner.get("message", "") if isinstance(inner, dict) else str(inner)
        else:
            detail = str(body or "")
        return _Failure(f"HTTP {status}: {_first_line(detail)}".rstrip(": "), retryable, hint)
    if isinstance(err, (MalformedResponse, openai.APIResponseValidationError)):
        return _Failure(f"malformed response ({_first_line(err)})", True)
    if isinstance(err, (asyncio.TimeoutError, TimeoutError)):
        return _Failure("timeout", True)
    if isinstance(err, (openai.OpenAIError, OSError)):
        return _Failure(f"{type(err).__name__}: {_first_line(err)}", False)
    raise err  # a bug in this module or the client, not a failed call: let it surface


def parse_completion(body: str) -> dict[str, Any]:
    """The JSON of a chat completion, or MalformedResponse when it is not one."""
    try:
        data = json.loads(body)
    except json.JSONDecodeError as e:
        raise MalformedResponse(f"invalid JSON: {e.msg}, char {e.pos}") from None
    if not isinstance(data, dict):
        raise MalformedResponse(f"expected a JSON object, got {type(data).__name__}")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise MalformedResponse("no choices")
    message = choices[0].get("message")
    if not isinstance(message, dict):
        raise MalformedResponse("choice has no message")
    return data


def estimate_tokens(text: str) -> int:
    """About four characters per token: the estimate used when a server reports no usage."""
    return math.ceil(len(text) / 4)


class _LoopThread:
    """An event loop running forever in a daemon thread; coroutines are submitted from any other thread."""

    def __init__(self, name: str):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def run(self, coro: Awaitable[T]) -> T:
        if threading.current_thread() is self.thread:
            raise RuntimeError("OpenAIBackend.complete was called from its own event loop; await it elsewhere")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result()
        except BaseException:  # e.g. KeyboardInterrupt: do not leave the batch running unseen
            future.cancel()
            raise

    def stop(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=5)
        if not self.loop.is_running():
            self.loop.close()


def _shutdown(runner: _LoopThread, clients: list) -> None:
    if clients and runner.loop.is_running():
        async def close_all() -> None:
            await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(close_all(), runner.loop).result(timeout=5)
        except Exception:  # closing at exit or GC is best effort
            pass
    runner.stop()


def is_local_url(url: str) -> bool:
    """Whether an endpoint is on this machine (a local server that needs no API key)."""
    from urllib.parse import urlparse

    host = (urlparse(url).hostname or "").lower()
    return host in ("localhost", "::1", "0.0.0.0") or host.startswith("127.")


class OpenAIBackend:
    """ChatBackend over an OpenAI-compatible endpoint.

    The API key is read from the environment variable named by `cfg.api_key_env` when the backend is
    built. If that variable is unset, a local `base_url` (localhost, 127.x, ::1) gets the placeholder key
    "EMPTY" (local servers ignore it); a remote endpoint, or none (api.openai.com), is a ValueError naming
    the variable at once, before any call (a missing key would otherwise surface after every retry).
    """

    def __init__(self, cfg: TeacherConfig):
        if not cfg.model:
            raise ValueError("teacher.model must name the model at the endpoint for teacher.kind 'openai'")
        key = os.environ.get(cfg.api_key_env, "").strip()
        if not key:
            if not cfg.base_url or not is_local_url(cfg.base_url):
                where = f"the endpoint {cfg.base_url}" if cfg.base_url else "api.openai.com"
                raise ValueError(
                    f"the API key environment variable {cfg.api_key_env} is not set (teacher.api_key_env), and "
                    f"{where} needs a key; export it (a local server at 127.0.0.1 or localhost needs none)"
                )
            key = LOCAL_PLACEHOLDER_KEY
        self.cfg = cfg
        self.model = cfg.model
        self.reasoning = cfg.reasoning == "yes" or (cfg.reasoning == "auto" and is_reasoning_model(cfg.model))
        price = cfg.prices.get(cfg.model)
        self._price = (price.input_per_mtok, price.output_per_mtok) if price else (0.0, 0.0)
        self._key = key
        self._secrets = (key,) if key != LOCAL_PLACEHOLDER_KEY else ()
        self._runner = _LoopThread(f"openai-backend-{cfg.model}")
        self._clients: list[openai.AsyncOpenAI] = []  # created on the loop thread, which they are bound to
        self._sem: asyncio.Semaphore | None = None
        self._finalizer = weakref.finalize(self, _shutdown, self._runner, self._clients)

    def __repr__(self) -> str:
        return f"OpenAIBackend(model={self.model!r}, base_url={self.cfg.base_url!r})"

    # ---- public --------------------------------------------------------------------------------

    def complete(self, requests: Sequence[ChatRequest]) -> list[ChatResult]:
        """One result per request, in order. Blocks the calling thread (and its event loop, if one is
        running there) while the batch runs on the backend's own loop."""
        if not requests:
            return []
        if not self._finalizer.alive:
            raise RuntimeError(f"{self!r} is closed")
        return self._runner.run(self.acomplete(list(requests)))

    async def acomplete(self, requests: Sequence[ChatRequest]) -> list[ChatResult]:
        """The batch on the backend's own loop (only call this from that loop; `complete` does)."""
        clients = self._ensure_clients()
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.cfg.concurrency)
        return list(await asyncio.gather(*(self._one(clients[i % len(clients)], r) for i, r in enumerate(requests))))

    def close(self) -> None:
        self._finalizer()

    def __enter__(self) -> "OpenAIBackend":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- one call ------------------------------------------------------------------------------

    def _ensure_clients(self) -> list[openai.AsyncOpenAI]:
        # One client (connection pool) per POOL_SLOTS of concurrency: the pool scans all its connections
        # for every request it dispatches, a visible share of the client's CPU per call at 100+ in flight.
        if not self._clients:
            for _ in range(math.ceil(self.cfg.concurrency / POOL_SLOTS)):
                self._clients.append(openai.AsyncOpenAI(
                    api_key=self._key, base_url=self.cfg.base_url, max_retries=0, timeout=self.cfg.timeout_s,
                ))
        return self._clients

    def request_body(self, request: ChatRequest) -> dict[str, Any]:
        """The JSON body for a request: sampling parameters only where the model accepts them."""
        body: dict[str, Any] = {"model": self.model, "messages": request.message_dicts()}
        if self.reasoning:
            # o-series: max_completion_tokens (covers reasoning tokens); temperature/top_p are refused.
            # seed is left out too: sampling is fixed by the model, so it could not make answers repeat.
            body["max_completion_tokens"] = request.max_tokens
        else:
            body["max_tokens"] = request.max_tokens
            temperature = request.temperature if request.temperature is not None else self.cfg.temperature
            body["temperature"] = temperature
            if request.seed is not None:
                body["seed"] = request.seed
        return body

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number `attempt` (0-based).

        Full jitter: uniform(0, min(backoff_max, base * 2**attempt)). A Retry-After from the server
        replaces that: we wait at least what it asked plus up to 10% jitter (so a herd of rate-limited
        calls does not return in the same millisecond).
        """
        if retry_after is not None:
            return retry_after + random.uniform(0.0, min(1.0, 0.1 * retry_after))
        cfg = self.cfg
        return random.uniform(0.0, min(cfg.backoff_max_s, cfg.backoff_base_s * 2 ** attempt))

    async def _one(self, client: openai.AsyncOpenAI, request: ChatRequest) -> ChatResult:
        assert self._sem is not None
        body = self.request_body(request)
        start = time.perf_counter()
        attempt = 0
        # The request keeps its slot while it backs off, so a rate-limited endpoint sees fewer requests
        # instead of the same number re-queued behind it.
        async with self._sem:
            while True:
                attempt += 1
                try:
                    # client.post (the client's documented raw-request method) rather than
                    # chat.completions.create: same transport, auth and errors, without the typed-params
                    # transform and model parsing that cost ~1 ms of CPU per call; we parse the JSON.
                    response = await client.post("/chat/completions", body=body, cast_to=_http.Response)
                    data = parse_completion(response.text)
                    result = self._result(request, data, attempt)
                    result.meta["wall_s"] = time.perf_counter() - start
                    return result
                except Exception as err:  # classify re-raises anything that is not a failed call
                    failure = classify(err)
                message = scrub(failure.message, self._secrets)[:ERROR_CHARS]
                cap = max(self.cfg.backoff_max_s, RETRY_AFTER_CAP_S)
                if failure.retry_after is not None and failure.retry_after > cap:
                    message += (f" (server asks to retry after {failure.retry_after:.0f}s, "
                                f"more than the {cap:.0f}s we wait)")
                    failure.retryable = False
                if not failure.retryable or attempt > self.cfg.max_retries:
                    log.warning("teacher call %s/%s failed after %d attempt(s): %s",
                                request.phase, request.prompt, attempt, message)
                    return self._error(request, message, attempt, start)
                delay = self.backoff(attempt - 1, failure.retry_after)
                log.info("teacher call %s/%s attempt %d failed (%s); retrying in %.2fs",
                         request.phase, request.prompt, attempt, message, delay)
                await asyncio.sleep(delay)

    def _error(self, request: ChatRequest, message: str, attempts: int, start: float) -> ChatResult:
        return ChatResult(text="", raw="", model=self.model, error=message, attempts=attempts,
                          meta={"wall_s": time.perf_counter() - start})

    def _result(self, request: ChatRequest, data: dict[str, Any], attempts: int) -> ChatResult:
        choice = data["choices"][0]
        message = choice["message"]
        content = message.get("content") or ""
        if not isinstance(content, str):
            raise MalformedResponse(f"message content is {type(content).__name__}, not text")
        meta: dict[str, Any] = {"finish_reason": choice.get("finish_reason")}
        reasoning = message.get("reasoning_content") or message.get("reasoning")
        if reasoning:
            meta["reasoning_content"] = reasoning
        if message.get("refusal"):
            meta["refusal"] = message["refusal"]
        if data.get("model") and data["model"] != self.model:
            meta["served_model"] = data["model"]
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        prompt_tokens, completion_tokens = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if not isinstance(prompt_tokens, int) or not isinstance(completion_tokens, int):
            prompt_tokens = sum(estimate_tokens(c) for _, c in request.messages)
            completion_tokens = estimate_tokens(content + (reasoning or ""))
            meta["usage_estimated"] = True
        details = usage.get("completion_tokens_details")
        if isinstance(details, dict) and details.get("reasoning_tokens"):
            meta["reasoning_tokens"] = details["reasoning_tokens"]
        price_in, price_out = self._price
        return ChatResult(
            text=strip_think(content),
            raw=content,
            model=self.model,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost=(prompt_tokens * price_in + completion_tokens * price_out) / 1e6,
            attempts=attempts,
            meta=meta,
        )
