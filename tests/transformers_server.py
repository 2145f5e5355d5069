"""A real model behind a real OpenAI-compatible server: `transformers serve` started on a free port of
127.0.0.1 for the real-teacher tests and the throughput bench.

    with TransformersServer(model_dir) as server:      # waits for /health; killed on exit, even on failure
        cfg = {"teacher.kind": "openai", "teacher.base_url": server.base_url, "teacher.model": server.model}

The server is the one shipped with transformers (its `serving` extra: FastAPI, uvicorn); it loads the
model folder once (`FORCE_MODEL`) and never touches the network (HF_HUB_OFFLINE). Its stdout and stderr go
to a log file whose tail is shown when it does not come up.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

CB_BLOCK_SIZE = 32
CB_NUM_BLOCKS = 256


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_command() -> list[str]:
    """`transformers serve` from the interpreter's own environment (the console script beside it)."""
    script = Path(sys.executable).with_name("transformers")
    if script.exists():
        return [str(script), "serve"]
    found = shutil.which("transformers")
    if found is None:
        raise RuntimeError("the `transformers` command is not installed next to this Python")
    return [found, "serve"]


class TransformersServer:
    def __init__(self, model_dir: Path | str, continuous_batching: bool = False, threads: int = 1,
                 startup_timeout_s: float = 180.0):
        self.model = str(Path(model_dir).resolve())
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.continuous_batching = continuous_batching
        self.threads = threads
        self.startup_timeout_s = startup_timeout_s
        self.proc: subprocess.Popen | None = None
        self.log_path = Path(tempfile.mkstemp(prefix="transformers-serve-", suffix=".log")[1])

    def __enter__(self) -> "TransformersServer":
        cmd = serve_command() + [self.model, "--host", "127.0.0.1", "--port", str(self.port), "--device", "cpu"]
        cmd.append("--continuous-batching" if self.continuous_batching else "--no-continuous-batching")
        if self.continuous_batching:
            # The paged KV cache is sized for a GPU's free memory by default; on this CPU the server held
            # 14 GB resident for a 135M model. 256 blocks of 32 tokens (8192 tokens, ~0.4 GB for
            # SmolLM2-135M in fp32) hold 8 requests of a few hundred tokens each.
            cmd += ["--cb-block-size", str(CB_BLOCK_SIZE), "--cb-num-blocks", str(CB_NUM_BLOCKS)]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "OMP_NUM_THREADS": str(self.threads), "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1"}
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            self._wait_healthy()
        except BaseException:
            self.close()
            raise
        return self

    def _wait_healthy(self) -> None:
        deadline = time.time() + self.startup_timeout_s
        url = f"http://127.0.0.1:{self.port}/health"
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"transformers serve exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.5)
        raise RuntimeError(f"transformers serve not healthy after {self.startup_timeout_s:.0f} s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # its own session: uvicorn's workers go with it
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log_path.unlink(missing_ok=True)

    def __exit__(self, *exc) -> None:
        self.close()
