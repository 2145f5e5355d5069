"""A real OpenAI-compatible HTTP server on 127.0.0.1 for transport tests and the throughput bench.

`ChatServer(responder, latency_s)` runs an aiohttp app in a background thread on an ephemeral port and
speaks `/v1/chat/completions` (non-streaming) and `/v1/models`. Faults are programmed per request:

    server.inject("429", times=2, retry_after=1)   # the next two completions get 429 + Retry-After: 1
    server.inject("drop", every=5)                 # every 5th completion: connection closed, no response

Kinds: any HTTP status ("429", "500", "400", ...), "drop" (close the connection without a response),
"truncate" (headers promise a body, half of it arrives, the connection closes), "slow" (sleep `slow_s`
before answering, past the client's timeout), "malformed" (200 with a body that is not JSON),
"prose-json" (a valid completion whose content is prose around the JSON the responder wrote: a
content-level fault for the parsing layer; the transport passes it through), and "no-usage" (a valid
completion without a `usage` object). One-shot faults apply in the order injected; `every=k` rules apply
to every k-th completion request (counted from 1) and take precedence.

Run as a script (`python tests/chat_server.py --latency 0.2`) it serves in its own process and prints its
base URL on the first line of stdout; the bench uses that so client and server do not share a GIL.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import json
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from aiohttp import web

Responder = Callable[[list[dict], dict], "str | dict"]


def echo_responder(messages: list[dict], body: dict) -> str:
    """Deterministic default: echoes the last user message."""
    last = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
    return f"echo: {last}"


def count_tokens(text: str) -> int:
    return max(1, (len(text) + 3) // 4)


@dataclass
class Fault:
    kind: str
    retry_after: float | str | None = None
    retry_after_ms: int | None = None
    slow_s: float = 5.0
    message: str | None = None


@dataclass
class Seen:
    """One request the server received: arrival time, path, the fault applied, the JSON body."""

    time: float
    path: str
    fault: str | None
    body: dict | None
    authorization: str | None


class ChatServer:
    def __init__(self, responder: Responder | None = None, latency_s: float = 0.0, port: int = 0):
        self.responder = responder or echo_responder
        self.latency_s = latency_s
        self.port = port
        self.calls: collections.Counter[str] = collections.Counter()
        self.seen: list[Seen] = []
        self.authorizations: list[str | None] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._queue: collections.deque[Fault] = collections.deque()
        self._every: list[tuple[int, Fault]] = []
        self._completions = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task] = set()

    # ---- control -------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def inject(self, kind: str, times: int = 1, *, every: int | None = None, retry_after: float | str | None = None,
               retry_after_ms: int | None = None, slow_s: float = 5.0, message: str | None = None) -> None:
        """Program a fault for the next `times` completion requests, or for every `every`-th one.

        `retry_after` (seconds or an HTTP date) / `retry_after_ms` add those headers to a status fault;
        `message` replaces its error message (e.g. one that quotes the caller's key, as some servers do)."""
        fault = Fault(kind, retry_after, retry_after_ms, slow_s, message)
        with self._lock:
            if every:
                self._every.append((every, fault))
            else:
                self._queue.extend([fault] * times)

    @property
    def faults(self) -> list[str]:
        """The programmed faults still pending: one-shot kinds in order, then `every=k` rules."""
        with self._lock:
            return [f.kind for f in self._queue] + [f"{f.kind} every {k}" for k, f in self._every]

    def clear_faults(self) -> None:
        with self._lock:
            self._queue.clear()
            self._every.clear()

    def reset_counts(self) -> None:
        with self._lock:
            self.calls.clear()
            self.seen.clear()
            self.authorizations.clear()
            self._completions = 0
            self.max_in_flight = 0

    @property
    def completions(self) -> int:
        return self.calls["/v1/chat/completions"]

    def bodies(self) -> list[dict]:
        return [s.body for s in self.seen if s.body is not None]

    def start(self) -> "ChatServer":
        started = threading.Event()
        errors: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._start_site())
            except BaseException as e:  # reported to the thread that called start()
                errors.append(e)
                started.set()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(self._stop_site())
            loop.close()

        self._thread = threading.Thread(target=serve, name="chat-server", daemon=True)
        self._thread.start()
        started.wait(timeout=30)
        if errors:
            raise errors[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    def __enter__(self) -> "ChatServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- aiohttp app ---------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions_handler)
        app.router.add_get("/v1/models", self._models_handler)
        return app

    async def _start_site(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _stop_site(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _next_fault(self) -> Fault | None:
        with self._lock:
            self._completions += 1
            n = self._completions
            for k, fault in self._every:
                if n % k == 0:
                    return fault
            return self._queue.popleft() if self._queue else None

    async def _models_handler(self, request: web.Request) -> web.Response:
        with self._lock:
            self.calls[request.path] += 1
            self.authorizations.append(request.headers.get("Authorization"))
            self.seen.append(Seen(time.monotonic(), request.path, None, None, request.headers.get("Authorization")))
        return web.json_response({"object": "list",
                                  "data": [{"id": "test-model", "object": "model", "owned_by": "test"}]})

    async def _completions_handler(self, request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization")
        try:
            body = await request.json()
        except json.JSONDecodeError:
            body = None
        fault = self._next_fault()
        with self._lock:
            self.calls[request.path] += 1
            self.authorizations.append(auth)
            self.seen.append(Seen(time.monotonic(), request.path, fault.kind if fault else None, body, auth))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._answer(request, body, fault)
        finally:
            with self._lock:
                self.in_flight -= 1

    async def _answer(self, request: web.Request, body: dict | None, fault: Fault | None) -> web.StreamResponse:
        if body is None or not isinstance(body.get("messages"), list):
            return _error(400, "request body must be JSON with a messages list")
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        kind = fault.kind if fault else None
        if kind is not None and kind.isdigit():
            headers = {}
            if fault.retry_after is not None:
                headers["Retry-After"] = str(fault.retry_after)
            if fault.retry_after_ms is not None:
                headers["retry-after-ms"] = str(fault.retry_after_ms)
            return _error(int(kind), fault.message or f"injected {kind}", headers)
        if kind == "drop":
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=204)  # never sent: the connection is already gone
        if kind == "slow":
            await asyncio.sleep(fault.slow_s)
        if kind == "malformed":
            return web.Response(status=200, text='{"id": "chatcmpl-x", "choices": [ {"mess',
                                content_type="application/json")

        produced = self.responder(body["messages"], body)
        if isinstance(produced, dict):
            content, reasoning = produced.get("content", ""), produced.get("reasoning_content")
        else:
            content, reasoning = produced, None
        if kind == "prose-json":
            content = f"Sure! Here is the JSON you asked for:\n{content}\nLet me know if you need anything else."
        payload = completion_json(body, content, reasoning, usage=kind != "no-usage")
        if kind == "truncate":
            data = json.dumps(payload).encode()
            response = web.StreamResponse(status=200, headers={"Content-Type": "application/json",
                                                               "Content-Length": str(len(data))})
            await response.prepare(request)
            await response.write(data[: len(data) // 2])
            assert request.transport is not None
            request.transport.close()
            return response
        return web.json_response(payload)


def completion_json(body: dict, content: str, reasoning: str | None = None, usage: bool = True) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if reasoning is not None:
        message["reasoning_content"] = reasoning
    prompt_tokens = sum(count_tokens(str(m.get("content", ""))) for m in body["messages"])
    completion_tokens = count_tokens(content) + (count_tokens(reasoning) if reasoning else 0)
    out: dict[str, Any] = {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "test-model"),
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
    }
    if usage:
        out["usage"] = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                        "total_tokens": prompt_tokens + completion_tokens}
    return out


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"message": message, "type": "test_error", "code": status}},
                             status=status, headers=headers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="serve the test chat server until stdin closes")
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--response-chars", type=int, default=0,
                        help="answer with this many characters (0: echo the last user message)")
    args = parser.parse_args(argv)
    responder = None
    if args.response_chars:
        text = ("The answer follows from the steps above. " * (args.response_chars // 41 + 1))[: args.response_chars]
        responder = lambda messages, body: text  # noqa: E731
    server = ChatServer(responder, latency_s=args.latency, port=args.port).start()
    print(server.base_url, flush=True)
    try:
        sys.stdin.read()  # the parent closes our stdin (or dies) to stop us
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
