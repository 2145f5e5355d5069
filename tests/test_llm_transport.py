"""The LLM transport layer against a real HTTP server and the real openai client (no transport mocks).

Covers retries of every injected fault, Retry-After, timeouts, non-retryable errors, the response cache,
the ledger, the budget stop and its resumption, key hygiene, reasoning-model request bodies and think
stripping; one slow test runs HFBackend on the real default student model.
"""
from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from chat_server import ChatServer

from ioa.chat import BudgetExceeded, ChatBackend, ChatRequest, ChatResult, TeacherCallError
from ioa.config import BudgetConfig, Price, RunConfig, TeacherConfig
from ioa.llm.accounting import Budget, Ledger, estimate_call
from ioa.llm.cache import ResponseCache
from ioa.llm.client import TeacherClient, build_client, raise_failures
from ioa.llm.openai_backend import OpenAIBackend, is_reasoning_model, parse_retry_after, scrub

REPO = Path(__file__).resolve().parents[1]
MODEL = "test-model"


def req(i: int = 0, phase: str = "synthesize", prompt: str = "synth", text: str | None = None, **kw) -> ChatRequest:
    return ChatRequest.of(
        [{"role": "system", "content": "You write practice problems."},
         {"role": "user", "content": text if text is not None else f"question {i}"}],
        phase=phase, prompt=prompt, prompt_version="1", **kw,
    )


@pytest.fixture
def key_env(monkeypatch) -> tuple[str, str]:
    name = f"IOA_TEST_KEY_{secrets.token_hex(4).upper()}"
    key = f"sk-test-{secrets.token_hex(20)}"
    monkeypatch.setenv(name, key)
    return name, key


@pytest.fixture
def server():
    with ChatServer() as s:
        yield s


@pytest.fixture
def make_backend(key_env):
    made: list[OpenAIBackend] = []

    def make(srv: ChatServer, **kw) -> OpenAIBackend:
        settings = dict(kind="openai", model=MODEL, base_url=srv.base_url, api_key_env=key_env[0],
                        backoff_base_s=0.01, backoff_max_s=0.05, timeout_s=5.0, max_retries=3, concurrency=8)
        settings.update(kw)
        backend = OpenAIBackend(TeacherConfig(**settings))
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()


# ---- backend: success, faults, retries ---------------------------------------------------------


def test_batch_answers_in_order_and_key_reaches_server(server, make_backend, key_env):
    backend = make_backend(server)
    assert isinstance(backend, ChatBackend)
    results = backend.complete([req(i) for i in range(20)])
    assert [r.text for r in results] == [f"echo: question {i}" for i in range(20)]
    assert all(r.ok and r.attempts == 1 and r.prompt_tokens > 0 and r.completion_tokens > 0 for r in results)
    assert server.completions == 20
    assert set(server.authorizations) == {f"Bearer {key_env[1]}"}


@pytest.mark.parametrize("fault", ["429", "500", "503", "408", "drop", "truncate", "malformed"])
def test_each_fault_is_retried_until_success(server, make_backend, fault):
    backend = make_backend(server)
    server.inject(fault, times=2)
    results = backend.complete([req(i) for i in range(4)])
    assert all(r.ok for r in results), [r.error for r in results]
    assert [r.text for r in results] == [f"echo: question {i}" for i in range(4)]
    assert sum(r.attempts for r in results) == 4 + 2
    assert server.completions == 6


def test_timeout_is_retried(server, make_backend):
    backend = make_backend(server, timeout_s=0.5)
    server.inject("slow", slow_s=3.0)
    start = time.perf_counter()
    [result] = backend.complete([req()])
    assert result.ok and result.attempts == 2
    assert time.perf_counter() - start < 2.5  # the slow answer was abandoned, not awaited


def test_timeouts_exhausted_are_reported(server, make_backend):
    backend = make_backend(server, timeout_s=0.3, max_retries=1, concurrency=1)
    server.inject("slow", times=2, slow_s=2.0)
    first, second = backend.complete([req(0), req(1)])
    assert first.error == "timeout" and first.attempts == 2
    assert second.ok and second.attempts == 1


def test_every_kth_request_fault(server, make_backend):
    backend = make_backend(server, concurrency=1)
    server.inject("500", every=3)
    results = backend.complete([req(i) for i in range(4)])
    assert all(r.ok for r in results)
    assert [r.attempts for r in results] == [1, 1, 2, 1]  # arrivals 1, 2, 3 (500), 4 (retry), 5
    assert [s.fault for s in server.seen] == [None, None, "500", None, None]


def test_exhausted_retries_reported_while_rest_of_batch_completes(server, make_backend):
    # concurrency 1 and a request keeps its slot while backing off: request 0 receives all three faults
    backend = make_backend(server, max_retries=2, concurrency=1)
    server.inject("500", times=3)
    results = backend.complete([req(i) for i in range(3)])
    assert not results[0].ok and results[0].attempts == 3
    assert results[0].error.startswith("HTTP 500")
    assert [r.text for r in results[1:]] == ["echo: question 1", "echo: question 2"]
    assert server.completions == 5


def test_retry_after_seconds_is_honoured(server, make_backend):
    backend = make_backend(server)
    server.inject("429", retry_after=1)
    [result] = backend.complete([req()])
    assert result.ok and result.attempts == 2
    first, second = server.seen
    assert second.time - first.time >= 1.0


def test_retry_after_ms_is_honoured(server, make_backend):
    backend = make_backend(server)
    server.inject("503", retry_after_ms=400)
    [result] = backend.complete([req()])
    assert result.ok and result.attempts == 2
    first, second = server.seen
    assert second.time - first.time >= 0.4


def test_retry_after_forms_parse():
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    now = time.time()
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert 28 <= parse_retry_after({"retry-after": date}, now=now) <= 31
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


def test_retry_after_beyond_cap_fails_at_once(server, make_backend):
    backend = make_backend(server)
    server.inject("429", retry_after=100_000)
    start = time.perf_counter()
    [result] = backend.complete([req()])
    assert not result.ok and result.attempts == 1 and "retry after" in result.error
    assert time.perf_counter() - start < 2


@pytest.mark.parametrize("status", ["400", "401", "404", "422"])
def test_client_errors_are_not_retried(server, make_backend, status):
    backend = make_backend(server)
    server.inject(status)
    results = backend.complete([req(0), req(1)])
    failed = [r for r in results if not r.ok]
    assert len(failed) == 1 and failed[0].attempts == 1 and failed[0].error.startswith(f"HTTP {status}")
    assert server.completions == 2


def test_server_lists_models_and_reports_pending_faults(server):
    import urllib.request

    with urllib.request.urlopen(server.base_url + "/models", timeout=5) as response:
        assert json.load(response)["data"][0]["id"] == MODEL
    assert server.calls["/v1/models"] == 1
    server.inject("500", times=2)
    server.inject("drop", every=3)
    assert server.faults == ["500", "500", "drop every 3"]


def test_prose_json_is_passed_through(server, make_backend):
    backend = make_backend(server)
    server.inject("prose-json")
    [result] = backend.complete([req(text='{"a": 1}')])
    assert result.ok and result.attempts == 1
    assert result.raw.startswith("Sure!") and 'echo: {"a": 1}' in result.raw


def test_missing_usage_is_estimated(server, make_backend):
    backend = make_backend(server)
    server.inject("no-usage")
    [result] = backend.complete([req()])
    assert result.ok and result.meta["usage_estimated"] is True
    assert result.prompt_tokens > 0 and result.completion_tokens > 0


def test_concurrency_is_bounded_and_overlaps(make_backend):
    with ChatServer(latency_s=0.2) as srv:
        backend = make_backend(srv, concurrency=4)
        start = time.perf_counter()
        results = backend.complete([req(i) for i in range(12)])
        elapsed = time.perf_counter() - start
        assert all(r.ok for r in results)
        assert srv.max_in_flight == 4
        assert 0.55 < elapsed < 2.0  # three waves of 0.2 s, not twelve


def test_works_inside_a_running_event_loop(server, make_backend):
    backend = make_backend(server)

    async def caller() -> list[ChatResult]:
        return backend.complete([req(1)])

    [result] = asyncio.run(caller())
    assert result.text == "echo: question 1"


# ---- reasoning models and think blocks --------------------------------------------------------


@pytest.mark.parametrize("name,expected", [
    ("o1", True), ("o1-mini", True), ("o3", True), ("o3-mini", True), ("o4-mini", True),
    ("openai/o3-mini-2025-01-31", True), ("o1-preview", True),
    ("gpt-4o-mini", False), ("gpt-4o", False), ("omni-large", False), ("llama-3-70b", False), ("qwen-o1x", False),
])
def test_reasoning_model_names(name, expected):
    assert is_reasoning_model(name) is expected


def test_reasoning_model_request_body(server, make_backend):
    backend = make_backend(server, model="o3-mini")
    backend.complete([req(seed=7, max_tokens=333)])
    [body] = server.bodies()
    assert body["max_completion_tokens"] == 333
    assert not {"temperature", "top_p", "max_tokens", "seed"} & body.keys()


def test_ordinary_model_request_body(server, make_backend):
    backend = make_backend(server, model="gpt-4o-mini")
    backend.complete([req(seed=7, max_tokens=333, temperature=0.5)])
    [body] = server.bodies()
    assert body["max_tokens"] == 333 and body["temperature"] == 0.5 and body["seed"] == 7
    assert "max_completion_tokens" not in body


def test_reasoning_off_sends_sampling_parameters(server, make_backend):
    backend = make_backend(server, model="o3-mini", reasoning="no")
    backend.complete([req()])
    [body] = server.bodies()
    assert "temperature" in body and "max_tokens" in body


def test_think_stripped_from_text_kept_in_raw(make_backend):
    def responder(messages, body):
        return {"content": "<think>carry the one</think>\nThe answer is 42", "reasoning_content": "step by step"}

    with ChatServer(responder) as srv:
        [result] = make_backend(srv).complete([req()])
    assert result.text == "The answer is 42"
    assert result.raw.startswith("<think>carry the one</think>")
    assert result.meta["reasoning_content"] == "step by step"


# ---- cache, ledger, budget ---------------------------------------------------------------------


def make_client(backend, tmp_path: Path, budget: Budget | None = None, price: Price | None = None) -> TeacherClient:
    return TeacherClient(backend, ResponseCache(tmp_path / "cache" / "teacher.sqlite"),
                         Ledger(tmp_path / "run" / "teacher_calls.jsonl"), budget, price=price)


def test_second_identical_batch_makes_zero_server_calls(server, make_backend, tmp_path):
    client = make_client(make_backend(server), tmp_path)
    first = client.complete([req(i) for i in range(10)])
    assert server.completions == 10 and not any(r.cached for r in first)
    again = make_client(make_backend(server), tmp_path).complete([req(i) for i in range(10)])
    assert server.completions == 10
    assert all(r.cached and r.cost == 0 for r in again)
    assert [r.text for r in again] == [r.text for r in first]


def test_duplicates_in_a_batch_are_sent_once(server, make_backend, tmp_path):
    client = make_client(make_backend(server), tmp_path)
    results = client.complete([req(1), req(2), req(1)])
    assert server.completions == 2
    assert results[0].text == results[2].text and results[2].cached


def test_errors_are_not_cached(server, make_backend, tmp_path):
    client = make_client(make_backend(server), tmp_path)
    server.inject("400")
    [failed] = client.complete([req()])
    assert not failed.ok and len(client.cache) == 0
    [ok] = client.complete([req()])
    assert ok.ok and not ok.cached and server.completions == 2


def test_ledger_lines_and_totals(server, make_backend, tmp_path):
    price = Price(input_per_mtok=1.0, output_per_mtok=4.0)
    backend = make_backend(server, prices={MODEL: price})
    client = make_client(backend, tmp_path)
    server.inject("500")  # one call needs a retry
    server.inject("400")  # and one fails
    batch = [req(i, phase="synthesize", prompt="synth") for i in range(3)]
    batch += [req(i, phase="judge", prompt="grade", text=f"grade {i}") for i in range(2)]
    results = client.complete(batch)
    client.complete([q for q, r in zip(batch, results) if r.ok and q.phase == "synthesize"][:2])  # two cache hits
    lines = [json.loads(x) for x in (tmp_path / "run" / "teacher_calls.jsonl").read_text().splitlines()]
    assert len(lines) == 7
    assert {tuple(sorted(x)) for x in lines} == {tuple(sorted(
        ["time", "phase", "prompt", "prompt_version", "model", "prompt_tokens", "completion_tokens", "cost",
         "cached", "attempts", "error", "wall_s"]))}
    paid = [r for r in results if r.ok]
    for r in paid:
        assert r.cost == pytest.approx((r.prompt_tokens * 1.0 + r.completion_tokens * 4.0) / 1e6)
    totals = client.ledger.totals()
    assert totals["calls"] == 7 and totals["cached"] == 2 and totals["errors"] == 1
    assert totals["attempts"] == 5 + 1  # five calls, one retry; cache hits make no attempt
    assert totals["prompt_tokens"] == sum(r.prompt_tokens for r in paid)
    assert totals["cost"] == pytest.approx(sum(r.cost for r in paid))
    assert totals["phases"]["synthesize"]["calls"] == 5 and totals["phases"]["judge"]["calls"] == 2
    assert totals["phases"]["synthesize"]["cached"] == 2
    assert totals["phases"]["synthesize"]["cost"] + totals["phases"]["judge"]["cost"] == pytest.approx(totals["cost"])
    client.ledger.close()
    assert Ledger(tmp_path / "run" / "teacher_calls.jsonl").totals() == totals  # a resumed run continues


def test_ledger_survives_a_torn_last_line(tmp_path):
    path = tmp_path / "calls.jsonl"
    with Ledger(path) as ledger:
        ledger.record(req(), ChatResult(text="a", raw="a", model=MODEL, prompt_tokens=3, completion_tokens=2, cost=0.5))
    with open(path, "a") as f:
        f.write('{"phase": "synthesize", "cost": 9')  # killed mid-write
    with Ledger(path) as ledger:
        assert ledger.totals()["calls"] == 1
        ledger.record(req(), ChatResult(text="b", raw="b", model=MODEL, cost=0.25))
    with Ledger(path) as ledger:
        assert ledger.totals()["calls"] == 2 and ledger.totals()["cost"] == pytest.approx(0.75)


def test_budget_stops_before_exceeding_and_a_resumed_client_continues(server, make_backend, tmp_path):
    price = Price(input_per_mtok=1000.0, output_per_mtok=2000.0)
    batch = [req(i, max_tokens=100) for i in range(8)]
    worst = estimate_call(batch[0], price).cost
    backend = make_backend(server, prices={MODEL: price})
    client = make_client(backend, tmp_path, Budget(max_cost=3.5 * worst, run_dir=tmp_path / "run"), price)
    with pytest.raises(BudgetExceeded) as info:
        client.complete(batch)
    assert server.completions == 3  # exactly the calls whose worst case fits
    message = str(info.value)
    assert "ioa resume" in message and "--max-cost" in message and str(tmp_path / "run") in message
    assert sum(r is not None and r.ok for r in info.value.partial) == 3
    spent = client.ledger.totals()["cost"]
    assert 0 < spent <= 3.5 * worst
    client.ledger.close()

    resumed = make_client(make_backend(server, prices={MODEL: price}), tmp_path, Budget(max_cost=100 * worst), price)
    assert resumed.ledger.totals()["cost"] == pytest.approx(spent)
    results = resumed.complete(batch)
    assert server.completions == 8  # the three paid calls were not repeated
    assert sum(r.cached for r in results) == 3 and all(r.ok for r in results)


def test_token_budget_and_cache_hits_never_hit_the_budget(server, make_backend, tmp_path):
    batch = [req(i, max_tokens=50) for i in range(4)]
    worst = estimate_call(batch[0]).tokens
    client = make_client(make_backend(server), tmp_path, Budget(max_tokens=2 * worst))
    with pytest.raises(BudgetExceeded, match="max_tokens"):
        client.complete(batch)
    assert server.completions == 2
    client.budget = Budget(max_tokens=0, max_cost=0.0)
    assert all(r.cached for r in client.complete(batch[:2]))  # hits cost nothing, even on a zero budget
    assert server.completions == 2


def test_budget_reserves_calls_in_flight():
    budget = Budget(max_cost=1.0)
    est = estimate_call(req(), Price(input_per_mtok=100.0, output_per_mtok=100.0))  # about $0.1 each
    n = int(1.0 // est.cost)
    for _ in range(n):
        budget.reserve({"cost": 0.0}, est)
    with pytest.raises(BudgetExceeded, match="in flight"):
        budget.check({"cost": 0.0}, est)
    budget.settle(est)
    budget.check({"cost": 0.0}, est)


def test_cache_is_safe_across_threads_and_processes(tmp_path):
    path = tmp_path / "shared.sqlite"
    cache = ResponseCache(path)
    script = (
        "import sys; from ioa.llm.cache import ResponseCache; from ioa.chat import ChatRequest, ChatResult\n"
        "c = ResponseCache(sys.argv[1])\n"
        "for i in range(40):\n"
        "    r = ChatRequest.of([('user', f'p{sys.argv[2]}-{i}')], phase='judge', prompt='p', prompt_version='1')\n"
        "    c.put(r, 'm', ChatResult(text='x', raw='x', model='m'))\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, str(path), str(k)], cwd=REPO) for k in range(2)]

    def writer(k: int) -> None:
        for i in range(40):
            r = ChatRequest.of([("user", f"t{k}-{i}")], phase="judge", prompt="p", prompt_version="1")
            cache.put(r, "m", ChatResult(text=str(i), raw=str(i), model="m"))
            assert cache.get(r, "m").text == str(i)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    assert len(cache) == 4 * 40 + 2 * 40
    assert cache._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# ---- key hygiene -------------------------------------------------------------------------------


def test_api_key_never_leaks(server, make_backend, key_env, tmp_path, caplog, capsys):
    _, key = key_env
    caplog.set_level(logging.DEBUG)
    for name in ("openai", "httpx", "httpx2", "httpcore", "aiohttp", "ioa"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    backend = make_backend(server, max_retries=1, concurrency=1)  # one call at a time: faults land in order
    client = make_client(backend, tmp_path)
    server.inject("401", message=f"Incorrect API key provided: {key}")  # some servers quote the key back
    server.inject("500", times=2)
    server.inject("drop")
    results = client.complete([req(i) for i in range(6)])
    assert f"Bearer {key}" in server.authorizations  # the key did reach the server
    errors = [r.error for r in results if not r.ok]
    assert len(errors) == 2 and all(key not in e for e in errors)
    with pytest.raises(TeacherCallError) as info:
        raise_failures(results, [req(i) for i in range(6)])
    assert key not in str(info.value) and "synthesize/synth" in str(info.value)
    client.close()
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert key.encode() not in path.read_bytes(), path
    assert caplog.records
    for record in caplog.records:
        assert key not in record.getMessage() and key not in str(record.args)
    assert key not in caplog.text
    out, err = capsys.readouterr()
    assert key not in out and key not in err
    assert key not in repr(backend) and key not in repr(client)


def test_missing_key_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("IOA_UNSET_KEY", raising=False)
    with pytest.raises(ValueError, match="IOA_UNSET_KEY"):
        OpenAIBackend(TeacherConfig(kind="openai", model="gpt-4o-mini", api_key_env="IOA_UNSET_KEY"))
    # a remote endpoint fails at once too, before any connection (it used to retry seven times first)
    with pytest.raises(ValueError, match="IOA_UNSET_KEY.*https://api.example.com/v1 needs a key"):
        OpenAIBackend(TeacherConfig(kind="openai", model="m", base_url="https://api.example.com/v1",
                                    api_key_env="IOA_UNSET_KEY"))


def test_local_server_without_key_gets_placeholder(server, monkeypatch):
    monkeypatch.delenv("IOA_UNSET_KEY", raising=False)
    with OpenAIBackend(TeacherConfig(kind="openai", model=MODEL, base_url=server.base_url,
                                     api_key_env="IOA_UNSET_KEY")) as backend:
        assert backend.complete([req()])[0].ok
    assert server.authorizations == ["Bearer EMPTY"]


def test_scrub():
    assert scrub("key sk-abcdefghijkl and Bearer xyz and s3cr3t", ["s3cr3t"]) == "key sk-*** and Bearer *** and ***"


# ---- build_client ------------------------------------------------------------------------------


def test_build_client_from_run_config(server, key_env, tmp_path):
    cfg = RunConfig(teacher=TeacherConfig(kind="openai", model=MODEL, base_url=server.base_url, api_key_env=key_env[0]),
                    budget=BudgetConfig(max_tokens=10_000))
    with build_client(cfg, tmp_path / "cache", tmp_path / "run" / "teacher_calls.jsonl") as client:
        assert isinstance(client.backend, OpenAIBackend) and client.model == MODEL
        assert client.cache.path == tmp_path / "cache" / "teacher.sqlite"
        assert client.budget.max_tokens == 10_000 and client.budget.run_dir == str(tmp_path / "run")
        assert client.complete([req()])[0].ok
    assert (tmp_path / "run" / "teacher_calls.jsonl").is_file()
    teacher = cfg.teacher.model_copy(update={"cache": False})
    with build_client(teacher, tmp_path / "cache", None) as client:
        assert client.cache is None and client.budget is None
    with pytest.raises(ValueError, match="procedural"):
        build_client(RunConfig(), tmp_path, None)


# ---- the local Hugging Face backend ------------------------------------------------------------


@pytest.mark.slow
def test_hf_backend_answers_a_batch_and_counts_tokens(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    from ioa.llm.hf_backend import HFBackend

    backend = HFBackend(TeacherConfig(kind="hf", model="smollm2-135m", concurrency=2), REPO / "runs" / ".cache")
    requests = [
        ChatRequest.of([{"role": "system", "content": "Answer briefly."},
                        {"role": "user", "content": "What is 2 + 3?"}],
                       phase="judge", prompt="t", prompt_version="1", max_tokens=12),
        ChatRequest.of([{"role": "user", "content": "Name a colour."}], phase="judge", prompt="t", prompt_version="1",
                       max_tokens=12),
    ]
    results = backend.complete(requests)
    assert len(results) == 2 and all(r.ok and r.cost == 0.0 for r in results)
    for request, result in zip(requests, results):
        assert result.raw.strip()
        assert 0 < result.completion_tokens <= 12
        assert result.prompt_tokens == backend.count_tokens(backend.chat_text(request))
    assert backend.complete(requests)[0].text == results[0].text  # greedy: deterministic
