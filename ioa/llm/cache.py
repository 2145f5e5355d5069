"""The persistent response cache: successful teacher answers in SQLite, keyed by `ChatRequest.cache_key`.

Runs share one file (teacher.sqlite in the user cache folder, ioa.paths, by default), so a resumed or repeated run
pays for nothing twice. WAL mode lets several processes read while one writes; a single connection behind a lock
serves the threads of one process. Only successful results are stored: an error is never replayed.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Iterable

from ioa.chat import ChatRequest, ChatResult

__all__ = ["ResponseCache"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    prompt TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    result TEXT NOT NULL,
    created REAL NOT NULL
)
"""
BUSY_TIMEOUT_S = 60.0  # another process holding the write lock: wait this long before failing


def _setup(conn: sqlite3.Connection, deadline_s: float = BUSY_TIMEOUT_S) -> None:
    """WAL mode and the table, retried while another process holds the lock.

    Switching a fresh file to WAL takes an exclusive lock, and SQLite answers "database is locked" at once,
    without its busy handler, when two processes open the same new file together (seen in CI): so retry here.
    """
    end = time.monotonic() + deadline_s
    delay = 0.01
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(SCHEMA)
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) and "busy" not in str(err) or time.monotonic() > end:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


class ResponseCache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                     check_same_thread=False)
        with self._lock:
            _setup(self._conn)

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.path)!r})"

    def get(self, request: ChatRequest, model: str) -> ChatResult | None:
        return self.get_many([request], model)[0]

    def get_many(self, requests: Iterable[ChatRequest], model: str) -> list[ChatResult | None]:
        """The cached result for each request (marked `cached`, cost 0, attempts 0), or None."""
        keys = [r.cache_key(model) for r in requests]
        found: dict[str, tuple[str, float]] = {}
        unique = list(dict.fromkeys(keys))
        with self._lock:
            for i in range(0, len(unique), 500):  # SQLite caps the number of bound parameters
                chunk = unique[i : i + 500]
                rows = self._conn.execute(
                    f"SELECT key, result, created FROM responses WHERE key IN ({','.join('?' * len(chunk))})", chunk
                ).fetchall()
                found.update((k, (res, created)) for k, res, created in rows)
        return [_from_row(*found[k]) if k in found else None for k in keys]

    def put(self, request: ChatRequest, model: str, result: ChatResult) -> bool:
        """Store a successful result; errors (and already-cached results) are not stored. True if stored."""
        return self.put_many([(request, result)], model) == 1

    def put_many(self, pairs: Iterable[tuple[ChatRequest, ChatResult]], model: str) -> int:
        """Store the successful results among `pairs` in one transaction; the number stored."""
        now = time.time()
        rows = []
        for request, result in pairs:
            if not result.ok or result.cached:
                continue
            record = result.to_dict()
            record["meta"] = {k: v for k, v in record["meta"].items() if k != "wall_s"}
            rows.append((request.cache_key(model), model, request.prompt, request.prompt_version,
                         json.dumps(record, ensure_ascii=False), now))
        if not rows:
            return 0
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(
                    "INSERT OR REPLACE INTO responses (key, model, prompt, prompt_version, result, created) "
                    "VALUES (?, ?, ?, ?, ?, ?)", rows)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
        return len(rows)

    def __len__(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "ResponseCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _from_row(result_json: str, created: float) -> ChatResult:
    data = json.loads(result_json)
    result = ChatResult(**data)
    result.meta = {**result.meta, "cached_cost": result.cost, "cached_attempts": result.attempts,
                   "cache_created": created}
    result.cost = 0.0
    result.attempts = 0
    result.cached = True
    return result
