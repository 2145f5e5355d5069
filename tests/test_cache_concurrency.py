"""Two real processes sharing one teacher response cache while a real HTTP chat server answers them.

What must hold: a request that one process already got answered is a cache hit for the other (no
second paid call), every paid call is in exactly one process's ledger and reached the server once,
and the SQLite file stays whole (integrity check, one row per distinct request, answers intact)
even when both write at the same moment.
"""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from chat_server import ChatServer

ROOT = Path(__file__).resolve().parent.parent
N = 40

CHILD = """
import json, sys, time
from pathlib import Path
from ioa.config import TeacherConfig
from ioa.llm.accounting import Ledger
from ioa.chat import ChatRequest
from ioa.llm.cache import ResponseCache
from ioa.llm.client import TeacherClient
from ioa.llm.openai_backend import OpenAIBackend

base_url, cache, ledger, progress, wait_for = sys.argv[1:6]
if wait_for != "-":  # start once the other process has this many answers
    want, path = wait_for.split(":")
    while not Path(path).exists() or int(Path(path).read_text() or 0) < int(want):
        time.sleep(0.02)
backend = OpenAIBackend(TeacherConfig(kind="openai", model="test-model", base_url=base_url, api_key_env="IOA_TEST_KEY",
                                      timeout_s=10.0, max_retries=3, concurrency=8))
client = TeacherClient(backend, ResponseCache(cache), Ledger(ledger), None)
texts = []
for start in range(0, {n}, 5):
    batch = [ChatRequest.of([{{"role": "user", "content": f"question {{i}}"}}], phase="synthesize", prompt="synth",
                            prompt_version="1") for i in range(start, start + 5)]
    texts += [r.text for r in client.complete(batch)]
    Path(progress).write_text(str(start + 5))
backend.close()
print(json.dumps(texts))
""".format(n=N)


def child(base_url: str, tmp: Path, name: str, wait_for: str = "-") -> subprocess.Popen:
    env = {**os.environ, "IOA_TEST_KEY": "sk-test", "OMP_NUM_THREADS": "1"}
    args = [base_url, str(tmp / "teacher.sqlite"), str(tmp / f"{name}.jsonl"), str(tmp / f"{name}.progress"), wait_for]
    return subprocess.Popen([sys.executable, "-c", CHILD, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT, env=env)


def ledger(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def check_cache(path: Path) -> None:
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = db.execute("SELECT result FROM responses").fetchall()
    assert len(rows) == N  # one row per distinct request, however many processes paid for it
    assert sorted(json.loads(r)["text"] for (r,) in rows) == sorted(f"echo: question {i}" for i in range(N))


def finish(proc: subprocess.Popen) -> list[str]:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    return json.loads(out)


def test_what_one_process_paid_for_the_other_reads_from_the_cache(tmp_path):
    with ChatServer(latency_s=0.02) as server:
        first = child(server.base_url, tmp_path, "a")
        second = child(server.base_url, tmp_path, "b", wait_for=f"{N // 2}:{tmp_path / 'a.progress'}")
        texts_a, texts_b = finish(first), finish(second)
        completions = server.completions
    assert texts_a == texts_b == [f"echo: question {i}" for i in range(N)]
    a, b = ledger(tmp_path / "a.jsonl"), ledger(tmp_path / "b.jsonl")
    assert all(e["cached"] for e in b[: N // 2])  # answered before b started: no second paid call
    paid = sum(not e["cached"] for e in a + b)
    assert paid == completions  # every call the server answered is in one ledger, once
    assert completions < 2 * N
    check_cache(tmp_path / "teacher.sqlite")


def test_two_processes_writing_at_once_leave_the_cache_whole(tmp_path):
    with ChatServer(latency_s=0.0) as server:
        procs = [child(server.base_url, tmp_path, name) for name in ("a", "b")]
        results = [finish(p) for p in procs]
        completions = server.completions
    assert results[0] == results[1] == [f"echo: question {i}" for i in range(N)]
    paid = sum(not e["cached"] for name in ("a", "b") for e in ledger(tmp_path / f"{name}.jsonl"))
    assert paid == completions and N <= completions <= 2 * N
    check_cache(tmp_path / "teacher.sqlite")


def test_opening_retries_while_another_process_holds_the_lock(tmp_path):
    """SQLite answers "database is locked" at once (no busy handler) when two processes switch a new file to WAL
    together, as in a CI run; opening must wait for the other process instead of failing."""
    from ioa.llm import cache as cache_module

    class LockedTwice:
        def __init__(self, conn):
            self.conn, self.failures = conn, 0

        def execute(self, sql, *args):
            if self.failures < 2:
                self.failures += 1
                raise sqlite3.OperationalError("database is locked")
            return self.conn.execute(sql, *args)

    conn = sqlite3.connect(tmp_path / "t.sqlite", isolation_level=None)
    flaky = LockedTwice(conn)
    cache_module._setup(flaky, deadline_s=5.0)
    assert flaky.failures == 2
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT count(*) FROM responses").fetchone()[0] == 0

    other = LockedTwice(sqlite3.connect(tmp_path / "u.sqlite"))
    other.failures = -10**9  # locked for good: the error comes through once the deadline has passed
    try:
        cache_module._setup(other, deadline_s=0.05)
    except sqlite3.OperationalError as err:
        assert "locked" in str(err)
    else:
        raise AssertionError("a lock that never goes away must raise")
