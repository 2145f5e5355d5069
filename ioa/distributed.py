"""Running one `ioa run` as several processes (`accelerate launch`, `torchrun`): who does what.

Rank 0 runs the whole method: it calls the teacher, writes the run directory and the model, and decides
every round. Each other rank holds a replica of the student and does only what rank 0 tells it (`serve`):
build the replica, load a state, generate its share of a batch of prompts, train. Training is DDP through
the trainer (the replicas' gradients are averaged, each takes its share of every step's batch), and
generation for probing, gates and evaluation is split across ranks and gathered on rank 0, so nothing is
done twice. The commands go over a gloo group of their own (CPU objects, whatever backend trains), with a
long timeout: rank 0 may spend hours on teacher calls between two commands.

A rank that fails takes the job down (the launcher stops the others); rank 0 always ends the workers'
loop (`stop_workers`), also when the run stops on an error. Only rank 0 writes, with one exception left
to the trainer: each rank saves its own RNG state (`rng_state_<rank>.pth`) into the trainer checkpoint,
so that a resumed run draws what an uninterrupted one would.
"""
from __future__ import annotations

import datetime
import os
import sys
import time
from typing import Any, Callable

COMMAND_TIMEOUT = datetime.timedelta(days=7)

_group = None  # the gloo group the commands travel over
_stopped = False


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def launched() -> bool:
    """Whether this process is one of several (a launcher set WORLD_SIZE > 1)."""
    return world_size() > 1


def start() -> None:
    """Join the process group (the launcher's env:// rendezvous) and open the command group; idempotent.
    The trainer's accelerate state finds the group initialized and uses it."""
    global _group
    if _group is not None or not launched():
        return
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() and os.environ.get("ACCELERATE_USE_CPU") != "true" else "gloo"
        dist.init_process_group(backend=backend, timeout=COMMAND_TIMEOUT)
    _group = dist.new_group(backend="gloo", timeout=COMMAND_TIMEOUT)


def broadcast(obj: Any = None) -> Any:
    """Rank 0's `obj` on every rank."""
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0, group=_group)
    return box[0]


def gather(obj: Any) -> list[Any] | None:
    """Every rank's `obj`, in rank order, on rank 0 (None elsewhere)."""
    import torch.distributed as dist

    out = [None] * world_size() if rank() == 0 else None
    dist.gather_object(obj, out, dst=0, group=_group)
    return out


def command(name: str, *args: Any) -> None:
    """Rank 0: tell every worker to run `name(*args)` (see `serve`)."""
    broadcast((name, args))


def stop_workers() -> None:
    """Rank 0: end the workers' loop; safe to call more than once."""
    global _stopped
    if launched() and rank() == 0 and _group is not None and not _stopped:
        _stopped = True
        command("stop")


def shard(n: int, index: int | None = None, size: int | None = None) -> list[int]:
    """The positions of `n` items that rank `index` of `size` takes: every size-th one, so each rank gets a
    similar mix of short and long prompts."""
    index = rank() if index is None else index
    size = world_size() if size is None else size
    return list(range(index, n, size))


def serve() -> int:
    """A worker rank's whole run: build the replica when rank 0 says, then follow commands until "stop"."""
    from ioa.students import load_student

    start()
    student = None
    handlers: dict[str, Callable[..., None]] = {}

    def build(kind, cfg, cache_dir, seed):
        nonlocal student
        student = load_student(kind, cfg, cache_dir, progress=False, seed=seed)

    def generate(shares, options):  # shares[r - 1]: rank r's prompts
        mine = shares[rank() - 1]
        texts = student.generate(mine, **options) if mine else []
        gather((texts, dict(student.last_generation) if mine else {}))

    handlers.update(
        build=build,
        load_state=lambda path: student.load_state(path),
        train=lambda examples, out_dir, max_steps, lr_window: student.train(examples, out_dir, max_steps, lr_window),
        generate=generate,
    )
    trace = os.environ.get("IOA_TRACE_RANKS") == "1"  # one stderr line per command, with its seconds
    while True:
        waited = time.perf_counter()
        name, args = broadcast()
        if name == "stop":
            return 0
        started = time.perf_counter()
        handlers[name](*args)
        if trace:
            print(f"ioa rank {rank()}: {name} {time.perf_counter() - started:.2f} s "
                  f"(waited {started - waited:.2f} s)", file=sys.stderr, flush=True)
