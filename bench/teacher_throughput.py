"""Teacher-call throughput: synthesis-style requests through TeacherClient -> OpenAIBackend -> a local server.

The test chat server (tests/chat_server.py) runs in a subprocess, so it does not compete with the client
for the GIL, and answers every call after a simulated latency (default 200 ms) with ~200 tokens. Each
request carries a ~300-token prompt. For each concurrency level the bench pushes a fresh batch through a
TeacherClient with an empty temporary cache and a ledger, and prints one JSON line: calls/s and the
speed-up over concurrency 1. With 200 ms per call the ceiling is concurrency / 0.2 calls/s.

`--server transformers` measures a real model behind a real server instead: `transformers serve` on a free
port of 127.0.0.1 (tests/transformers_server.py), serving a local model folder (`--model`; default: the
default student, converted from its GGUF into .cache/bench-student once), once with and once without its
`--continuous-batching`. The requests are the arithmetic teacher's own solve prompts (greedy, 64 tokens at
most), so the figures are what a run with a local LLM teacher gets; the speed-up is against concurrency 1
of the same server mode.

    .venv/bin/python bench/teacher_throughput.py [--requests 256] [--latency 0.2] [--levels 1 8 32 128]
    .venv/bin/python bench/teacher_throughput.py --server transformers [--model DIR] [--requests 32]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from ioa.chat import ChatRequest  # noqa: E402
from ioa.config import TeacherConfig  # noqa: E402
from ioa.llm.accounting import Ledger  # noqa: E402
from ioa.llm.cache import ResponseCache  # noqa: E402
from ioa.llm.client import TeacherClient  # noqa: E402
from ioa.llm.openai_backend import OpenAIBackend  # noqa: E402

SYSTEM = ("You are an expert mathematics teacher who writes practice problems for a student model. Every problem "
          "must be self-contained, have one correct numeric answer, and come with a worked solution that ends in "
          "a single line `Answer: <number>`.")
TASK = ("Write one new practice problem for the module {module} at difficulty {difficulty:.2f} on a scale from 0 "
        "(single-digit facts) to 1 (multi-step word problems with large numbers). The student currently fails "
        "problems like the following ones, so target the same skill without copying them:\n"
        "1. A baker has 347 rolls and sells 129 of them in the morning and 88 in the afternoon. How many are left?\n"
        "2. A train travels 412 km on Monday and 389 km on Tuesday. How far does it travel in total?\n"
        "3. A library holds 2,048 books and lends out 765 of them. How many books remain on the shelves?\n"
        "4. A farmer harvests 1,250 apples, packs 480 into crates and gives 95 to a neighbour. How many are "
        "still unpacked?\n"
        "Follow the house style: first restate the quantities, then relate them, then compute step by step, "
        "then check the result by the inverse operation, and finish with the answer line. Problem id: {i}.")


def synthesis_requests(n: int, tag: str) -> list[ChatRequest]:
    return [
        ChatRequest.of(
            [{"role": "system", "content": SYSTEM},
             {"role": "user", "content": TASK.format(module="multi_digit_subtraction", difficulty=(i % 10) / 10,
                                                     i=f"{tag}-{i}")}],
            phase="synthesize", prompt="synthesize_problem", prompt_version="1", max_tokens=256, temperature=0.7,
            seed=i,
        )
        for i in range(n)
    ]


def solve_requests(n: int, tag: str, max_tokens: int) -> list[ChatRequest]:
    """The LLM teacher's solve requests (ioa.teachers.llm) for distinct column additions."""
    from ioa.domains import load_domain
    from ioa.domains.builtin_view import BuiltinDomainView
    from ioa.llm.prompts import render

    domain = BuiltinDomainView(load_domain("arithmetic"))  # what the LLM teacher sees of a built-in domain
    problems = [domain.generate("multi_digit_addition", 0.1 + 0.1 * (i % 4), seed=zlib.crc32(f"{tag}-{i}".encode()))
                for i in range(n)]
    return [render("solve", phase="synthesize", max_tokens=max_tokens, temperature=0.0, domain_name=domain.name,
                   question=p.question, answer_format=domain.answer_format) for p in problems]


class ServerProcess:
    """tests/chat_server.py in a child process; stops when its stdin closes."""

    def __init__(self, latency: float, response_chars: int):
        self.proc = subprocess.Popen(
            [sys.executable, str(REPO / "tests" / "chat_server.py"), "--latency", str(latency),
             "--response-chars", str(response_chars)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO,
        )
        line = self.proc.stdout.readline().strip()
        if not line.startswith("http"):
            self.proc.kill()
            raise RuntimeError(f"chat server did not start (got {line!r})")
        self.base_url = line

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def run_level(base_url: str, concurrency: int, n: int, tmp: Path, model: str = "bench-model",
              requests: list[ChatRequest] | None = None) -> dict:
    cfg = TeacherConfig(kind="openai", model=model, base_url=base_url, api_key_env="IOA_BENCH_UNSET_KEY",
                        concurrency=concurrency, timeout_s=600.0, max_retries=2)
    requests = requests or synthesis_requests(n, tag=f"c{concurrency}")
    with OpenAIBackend(cfg) as backend:
        backend.complete(requests[:1])  # connect and start the loop outside the timing
        client = TeacherClient(backend, ResponseCache(tmp / f"cache-{concurrency}.sqlite"),
                               Ledger(tmp / f"calls-{concurrency}.jsonl"))
        start = time.perf_counter()
        results = client.complete(requests[1:])
        seconds = time.perf_counter() - start
        client.cache.close()
        client.ledger.close()
    totals = client.ledger.totals()
    return {
        "concurrency": concurrency,
        "requests": len(results),
        "errors": sum(not r.ok for r in results),
        "seconds": round(seconds, 3),
        "calls_per_s": round(len(results) / seconds, 2),
        "mean_prompt_tokens": round(totals["prompt_tokens"] / max(1, len(results)), 1),
        "mean_completion_tokens": round(totals["completion_tokens"] / max(1, len(results)), 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=256, help="requests per concurrency level")
    parser.add_argument("--serial-requests", type=int, default=32,
                        help="requests at concurrency 1 (at 200 ms each, 256 would take 51 s to say 5 calls/s)")
    parser.add_argument("--latency", type=float, default=0.2, help="simulated server latency per call, seconds")
    parser.add_argument("--response-chars", type=int, default=800, help="answer length (~4 chars per token)")
    parser.add_argument("--levels", type=int, nargs="+", default=None,
                        help="concurrency levels (default 1 8 32 128; with --server transformers 1 8 32)")
    parser.add_argument("--server", choices=["simulated", "transformers"], default="simulated")
    parser.add_argument("--model", default=None, help="with --server transformers: a local model folder")
    parser.add_argument("--max-tokens", type=int, default=64, help="with --server transformers: tokens per answer")
    parser.add_argument("--threads", type=int, default=1, help="with --server transformers: the server's torch threads")
    args = parser.parse_args(argv)

    os.environ.pop("IOA_BENCH_UNSET_KEY", None)  # a local server: the placeholder key is sent
    if args.server == "transformers":
        return real_server(args)
    args.levels = args.levels or [1, 8, 32, 128]
    server = ServerProcess(args.latency, args.response_chars)
    base_rate = None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for level in args.levels:
                n = (args.serial_requests if level == 1 else args.requests) + 1
                row = run_level(server.base_url, level, n, Path(tmp))
                if level == 1:
                    base_rate = row["calls_per_s"]
                row["speedup_vs_1"] = round(row["calls_per_s"] / base_rate, 2) if base_rate else None
                row["ceiling_calls_per_s"] = round(level / args.latency, 1) if args.latency else None
                print(json.dumps(row), flush=True)
    finally:
        server.close()
    return 0


def default_student_folder() -> str:
    """The default student as a plain Hugging Face folder (converted from its GGUF once, then reused)."""
    from ioa.config import StudentConfig
    from ioa.students.hf_convert import resolve_model

    return str(resolve_model(StudentConfig().model, REPO / ".cache" / "bench-student"))


def real_server(args) -> int:
    from transformers_server import TransformersServer

    levels = args.levels or [1, 8, 32]
    model = args.model or default_student_folder()
    n_parallel = args.requests if args.requests != 256 else 32  # 256 real answers per level take too long here
    for continuous in (False, True):
        with TransformersServer(model, continuous_batching=continuous, threads=args.threads) as server, \
                tempfile.TemporaryDirectory() as tmp:
            base_rate = None
            warm = solve_requests(1, "warm", args.max_tokens)
            run_level(server.base_url, 1, 1, Path(tmp), server.model, warm)  # loads the model outside the timing
            for level in levels:
                n = (min(args.serial_requests, 8) if level == 1 else max(n_parallel, level)) + 1
                requests = solve_requests(n, f"{continuous}-{level}", args.max_tokens)
                row = run_level(server.base_url, level, n, Path(tmp), server.model, requests)
                base_rate = row["calls_per_s"] if level == 1 else base_rate
                row.update(server="transformers serve", continuous_batching=continuous, threads=args.threads,
                           speedup_vs_1=round(row["calls_per_s"] / base_rate, 2) if base_rate else None,
                           completion_tokens_per_s=round(row["calls_per_s"] * row["mean_completion_tokens"], 1))
                print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
