"""Run model-written Python programs (sample + tests) in a sandbox and say whether each ran to its end.

One program is one process in its own scratch directory (a fresh temp dir, removed afterwards) with
limits on wall-clock time (the whole process group is SIGKILLed), CPU time, address space, process
count and file size (256 MiB), a scrubbed environment (PATH, HOME=scratch, TMPDIR=scratch,
LANG/LC_ALL=C.UTF-8, one-thread math libraries) and stdin from /dev/null. The interpreter is the
harness's own (`sys.executable`) run as ``-I -S -B``: site's .pth hooks (this project's editable
install) would cost ~40 ms a run, so site-packages are appended to sys.path instead and
exit()/quit() are put back. Three modes, detected once per process (`sandbox_mode`):

- ``bwrap``: bubblewrap gives new pid, net, ipc, uts (and cgroup) namespaces, a read-only view of /,
  a private /dev, /tmp and /dev/shm (256 MiB tmpfs each), and a writable bind of the scratch dir
  only. Killing bwrap kills the whole pid namespace, so nothing the program started outlives it.
- ``rlimit+netns``: no bubblewrap. Resource limits plus a private network namespace (unshare(2)).
  Writes outside the scratch dir are stopped only by file permissions (see the uid below), and /tmp
  is the host's.
- ``rlimit``: resource limits only; the program can use the network.

``IOA_SANDBOX=bwrap|rlimit+netns|rlimit`` forces a mode (an error if it cannot work here); unset or
``auto`` picks the first that passes a self-test, with one warning on stderr when it is not bwrap.

When the harness is root, each program runs under a fresh random uid, so RLIMIT_NPROC (never
enforced for root) caps its processes, it cannot write the harness's files, and afterwards a
``kill -KILL -1`` under that uid removes anything it left behind. The interpreter must stay
readable: in bwrap mode directories that other users cannot enter (e.g. /root holding a pyenv
install) are replaced by empty tmpfs with just the interpreter's directories bound back; in the
fallback modes the program keeps CAP_DAC_READ_SEARCH instead (it can read, not write, any file).
As non-root (a path not exercised by the tests, which run as root), bwrap uses a user namespace (the
process cap then counts per namespace) and the fallbacks run as the harness's own user: the process
cap counts all of that user's processes, children that leave the process group are not cleaned up,
and the program can read the harness's /proc/PID/environ.

How a pass is detected: a small wrapper reads the program and a per-run random token from a memfd,
closes it, runs the program with exec(), and only if exec() returns writes the token to a pipe the
harness holds. ``sys.exit(0)``, ``os._exit(0)``, a signal, or exceptions all end the process without
the token and count as failures.

Threat model: this contains accidents and ordinary hostile code (infinite loops, fork bombs, huge
allocations, stray writes, network use, reading the harness's environment, exiting early). It is not
a security boundary against code written to defeat it: a program can read the token from the
wrapper's frame (``sys._getframe(1)``) and forge a pass, and the shared kernel (namespaces, rlimits)
is the only isolation, so a kernel bug is an escape. Code from an adversary belongs in a VM.
"""
from __future__ import annotations

import functools
import marshal
import os
import random
import secrets
import selectors
import shutil
import signal
import site
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

MODES = ("bwrap", "rlimit+netns", "rlimit")

_FILE_BYTES = 256 * 2**20     # RLIMIT_FSIZE: one file in scratch
_TMPFS_BYTES = 256 * 2**20    # bwrap's private /tmp and /dev/shm, each
_UID_RANGE = (1_000_000, 2_000_000_000)  # random per-run uids, far from real accounts
_STARTED = b"S"


@dataclass(frozen=True)
class SandboxLimits:
    timeout_s: float = 10.0      # wall clock
    cpu_s: float = 10.0          # RLIMIT_CPU
    memory_mb: int = 2048        # RLIMIT_AS
    max_processes: int = 64      # RLIMIT_NPROC, under a per-run uid (or user namespace)
    output_bytes: int = 64_000   # stdout/stderr kept per sample


@dataclass(frozen=True)
class SandboxResult:
    status: str          # "passed" | "failed" | "timeout" | "error" (harness problem)
    returncode: int | None   # negative: killed by that signal (bwrap's 128+N is mapped back)
    stdout: str
    stderr: str
    wall_s: float

    @property
    def passed(self) -> bool:
        return self.status == "passed"


# Runs inside the sandbox as `python -I -S -B -c WRAPPER FD`. FD is a memfd holding
# b"<n>\n" + marshal(config) (n bytes) + b"<token>\n" + program. Imports only builtin modules and
# `resource` before the program runs: site (-S) and json would add ~40 ms to every run.
_WRAPPER = r'''
import os, sys, marshal, resource

def _prepare(cfg):
    libc = None
    if cfg["netns"] or cfg["keep_read"] or cfg["nnp"]:
        import ctypes  # ~8 ms, so only when needed
        libc = ctypes.CDLL(None, use_errno=True)
    if cfg["netns"]:
        flags = 0x40000000 | (0 if os.geteuid() == 0 else 0x10000000)  # CLONE_NEWNET [| CLONE_NEWUSER]
        if libc.unshare(flags) != 0:
            raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET) failed")
    cpu = max(1, int(-(-cfg["cpu_s"] // 1)))
    for name, soft, hard in (("RLIMIT_CPU", cpu, cpu + 1), ("RLIMIT_AS", cfg["as_bytes"], cfg["as_bytes"]),
                             ("RLIMIT_NPROC", cfg["nproc"], cfg["nproc"]), ("RLIMIT_FSIZE", cfg["fsize"], cfg["fsize"]),
                             ("RLIMIT_CORE", 0, 0)):
        resource.setrlimit(getattr(resource, name), (soft, hard))
    uid = cfg["uid"]
    if uid is None:
        return
    if cfg["nnp"]:
        libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS (bwrap sets it itself): no root back via setuid binaries
    if cfg["keep_read"]:
        libc.prctl(8, 1, 0, 0, 0)  # PR_SET_KEEPCAPS across setuid
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    if cfg["keep_read"]:
        cap = 1 << 2  # CAP_DAC_READ_SEARCH as effective and permitted, nothing inheritable
        hdr = (ctypes.c_uint32 * 2)(0x20080522, 0)
        data = (ctypes.c_uint32 * 6)(cap, cap, 0, 0, 0, 0)
        if libc.capset(hdr, data) != 0:
            raise OSError(ctypes.get_errno(), "capset failed")

def _flush():
    for s in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            s.flush()
        except Exception:
            pass

def _main():
    with os.fdopen(int(sys.argv[1]), "rb") as f:
        head, rest = f.read().split(b"\n", 1)
    n = int(head)
    cfg = marshal.loads(rest[:n])
    token, src = rest[n:].split(b"\n", 1)
    done = cfg["done_fd"]
    os.set_inheritable(done, False)
    _prepare(cfg)
    sys.path.extend(cfg["site_packages"])  # installed packages stay importable without site's .pth hooks
    import builtins, _sitebuiltins
    builtins.exit = _sitebuiltins.Quitter("exit", "Ctrl-D (i.e. EOF)")
    builtins.quit = _sitebuiltins.Quitter("quit", "Ctrl-D (i.e. EOF)")
    del sys.argv[1:]
    sys.argv[0] = "sample.py"
    os.write(done, b"S")
    try:
        exec(compile(src, "sample.py", "exec"), {"__name__": "__main__", "__builtins__": builtins})
    except SystemExit as e:
        _flush()
        print("sandbox: the program exited before its end (SystemExit(%r))" % (e.code,), file=sys.__stderr__)
        _flush()
        os._exit(0 if e.code is None else e.code if isinstance(e.code, int) and 0 <= e.code < 256 else 1)
    except BaseException as e:
        try:
            import traceback
            traceback.print_exception(type(e), e, e.__traceback__.tb_next)  # from the program's frames on
        except BaseException:
            print("%s: %s" % (type(e).__name__, e), file=sys.__stderr__)
        _flush()
        os._exit(1)
    _flush()
    os.write(done, token)
    os._exit(0)

_main()
'''


# ---------------------------------------------------------------------------------------------
# pure helpers

def _sample_env(scratch: str) -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": scratch,
        "TMPDIR": scratch,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        # Thread pools count against RLIMIT_NPROC; samples do not need them.
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


def _interpreter_paths() -> list[str]:
    """Directories the sandboxed interpreter reads: install prefix, venv, and sys.path entries."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             os.path.dirname(os.path.realpath(sys.executable))}
    paths.update(p for p in sys.path if p and os.path.isdir(p))
    return sorted({os.path.realpath(p) for p in paths})


def _blocked_ancestor(path: str, mode_of=lambda p: os.stat(p).st_mode) -> str | None:
    """The highest ancestor of `path` (not / itself) that other users cannot enter, if any."""
    parts = path.strip("/").split("/")
    for i in range(1, len(parts)):
        anc = "/" + "/".join(parts[:i])
        if not mode_of(anc) & stat.S_IXOTH:
            return anc
    return None


def _mask_plan(paths: Sequence[str], mode_of=lambda p: os.stat(p).st_mode) -> dict[str, list[str]]:
    """{blocked dir: [paths under it to bind back]}; nested paths are covered by their ancestor."""
    plan: dict[str, list[str]] = {}
    for p in sorted(set(paths)):
        anc = _blocked_ancestor(p, mode_of)
        if anc is None:
            continue
        kept = plan.setdefault(anc, [])
        if not any(p == k or p.startswith(k + "/") for k in kept):
            kept.append(p)
    return plan


def _bwrap_argv(bwrap: str, scratch: str, env: dict[str, str], masks: dict[str, list[str]], root: bool) -> list[str]:
    argv = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
            "--size", str(_TMPFS_BYTES), "--tmpfs", "/tmp",
            # Writable for POSIX semaphores (multiprocessing locks), capped like /tmp.
            "--perms", "1777", "--size", str(_TMPFS_BYTES), "--tmpfs", "/dev/shm"]
    # An interpreter or venv that lives under /tmp (a CI checkout in /tmp, say) would vanish under the
    # private /tmp: bind those directories back, read-only.
    under_tmp = [p for p in _interpreter_paths() if p.startswith("/tmp/")]
    under_tmp = [p for p in under_tmp if not any(p.startswith(q + "/") for q in under_tmp)]  # ancestors cover
    made_tmp: set[str] = set()
    for p in under_tmp:
        parts = p[len("/tmp/"):].split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/tmp/" + "/".join(parts[:i])
            if d not in made_tmp:
                made_tmp.add(d)
                argv += ["--perms", "0755", "--dir", d]
        argv += ["--ro-bind", p, p]
    for blocked, keep in masks.items():
        argv += ["--tmpfs", blocked]
        made = set()
        for p in keep:
            # bwrap would create the directories between as 0700, which the per-run uid cannot enter.
            parts = p[len(blocked) + 1:].split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = blocked + "/" + "/".join(parts[:i])
                if d not in made:
                    made.add(d)
                    argv += ["--perms", "0755", "--dir", d]
            argv += ["--ro-bind", p, p]
    argv += ["--bind", scratch, scratch, "--chdir", scratch,
             "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
             "--die-with-parent", "--new-session", "--clearenv"]
    if root:
        # The wrapper needs only these two, to drop to the per-run uid.
        argv += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        argv += ["--unshare-user"]
    for k, v in env.items():
        argv += ["--setenv", k, v]
    return argv


def _classify(timed_out: bool, started: bool, finished: bool, returncode: int | None) -> str:
    if timed_out:
        return "timeout"
    if not started:
        return "error"
    if finished and returncode == 0:
        return "passed"
    if returncode == -signal.SIGXCPU:
        return "timeout"
    return "failed"


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


# ---------------------------------------------------------------------------------------------
# mode detection

_detect_lock = threading.Lock()


def sandbox_mode() -> str:
    """The mode programs run in: "bwrap" | "rlimit+netns" | "rlimit" (detected once, cached)."""
    requested = os.environ.get("IOA_SANDBOX", "auto").strip() or "auto"
    if requested not in MODES + ("auto",):
        raise ValueError(f"IOA_SANDBOX={requested!r}: expected one of {', '.join(MODES)} or auto")
    with _detect_lock:
        return _detect(requested)


@functools.lru_cache(maxsize=None)
def _detect(requested: str) -> str:
    candidates = MODES if requested == "auto" else (requested,)
    reasons = []
    for mode in candidates:
        why = _self_test(mode)
        if why is None:
            if reasons:
                print(f"ioa sandbox: WARNING: {'; '.join(reasons)}. Falling back to '{mode}'"
                      + (": no filesystem isolation (a program can write wherever its uid may, including /tmp)"
                         if mode.startswith("rlimit") else "")
                      + (" and no network isolation" if mode == "rlimit" else "")
                      + ". Install bubblewrap for full isolation: apt-get install bubblewrap",
                      file=sys.stderr)
            return mode
        reasons.append(f"{mode} unavailable ({why})")
    raise RuntimeError(f"IOA_SANDBOX={requested}: {'; '.join(reasons)}")


def _self_test(mode: str) -> str | None:
    """None when `mode` runs a trivial program to the end here, else why not."""
    if mode == "bwrap" and _bin("bwrap") is None:
        return "bwrap not found on PATH"
    try:
        r = _run("import os\n", SandboxLimits(timeout_s=30.0), mode)
    except OSError as e:
        return f"{type(e).__name__}: {e}"
    if r.passed:
        return None
    said = " | ".join(line for line in r.stderr.strip().splitlines() if line.strip())
    return f"self-test {r.status}, rc={r.returncode}: {said[:300]}"


@functools.lru_cache(maxsize=None)
def _masks() -> dict[str, list[str]]:
    return _mask_plan(_interpreter_paths())


@functools.lru_cache(maxsize=None)
def _site_packages() -> list[str]:
    return [p for p in site.getsitepackages() if os.path.isdir(p)]


@functools.lru_cache(maxsize=None)
def _bin(name: str, also: str | None = None) -> str | None:
    """Absolute path of a tool on the harness's PATH (then `also`): Popen would search the sample's."""
    return shutil.which(name) or (shutil.which(name, path=also) if also else None)


# ---------------------------------------------------------------------------------------------
# running

def run_program(program: str, limits: SandboxLimits = SandboxLimits()) -> SandboxResult:
    """Run one complete Python program; it passes only if it runs to its very end."""
    return _run(program, limits, sandbox_mode())


def run_programs(programs: Sequence[str], limits: SandboxLimits = SandboxLimits(), workers: int | None = None,
                 progress: bool = False, desc: str = "sandbox") -> list[SandboxResult]:
    """Run many programs in parallel (default: one per core); results in input order."""
    mode = sandbox_mode()
    workers = max(1, workers or os.cpu_count() or 1)
    results: list[SandboxResult | None] = [None] * len(programs)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(programs), desc=desc, unit="prog")

    def one(i: int) -> None:
        results[i] = _run(programs[i], limits, mode)
        if bar is not None:
            bar.update(1)

    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for f in [pool.submit(one, i) for i in range(len(programs))]:
                f.result()
    finally:
        if bar is not None:
            bar.close()
    return results  # type: ignore[return-value]


def _run(program: str, limits: SandboxLimits, mode: str) -> SandboxResult:
    root = os.geteuid() == 0
    uid = random.SystemRandom().randrange(*_UID_RANGE) if root else None
    token = secrets.token_hex(16).encode()
    scratch = tempfile.mkdtemp(prefix="ioa-sbx-")
    done_r = done_w = memfd = -1
    try:
        if uid is not None:
            os.chown(scratch, uid, uid)
            os.chmod(scratch, 0o711)  # bwrap, with its capabilities dropped, must still chdir into it
        env = _sample_env(scratch)
        done_r, done_w = os.pipe()
        cfg = marshal.dumps({
            "done_fd": done_w, "uid": uid, "netns": mode == "rlimit+netns", "nnp": mode != "bwrap" and uid is not None,
            "keep_read": mode != "bwrap" and uid is not None and bool(_masks()),
            "cpu_s": float(limits.cpu_s), "as_bytes": int(limits.memory_mb) * 2**20,
            "nproc": int(limits.max_processes), "fsize": _FILE_BYTES, "site_packages": _site_packages(),
        })
        memfd = os.memfd_create("ioa-sample", os.MFD_CLOEXEC)
        os.write(memfd, b"%d\n" % len(cfg) + cfg + token + b"\n" + program.encode("utf-8", "surrogatepass"))
        os.lseek(memfd, 0, os.SEEK_SET)
        argv = [sys.executable, "-I", "-S", "-B", "-c", _WRAPPER, str(memfd)]
        if mode == "bwrap":
            argv = _bwrap_argv(_bin("bwrap") or "bwrap", scratch, env, _masks(), root) + argv
        t0 = time.monotonic()
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    cwd=scratch, env=env, pass_fds=(memfd, done_w), start_new_session=True)
        except OSError as e:
            return SandboxResult("error", None, "", f"sandbox: could not start {argv[0]}: {e}", 0.0)
        # The child has its copies; ours would keep the done pipe open.
        os.close(memfd)
        os.close(done_w)
        memfd = done_w = -1
        return _supervise(proc, t0, done_r, token, uid, limits, mode)
    finally:
        _remove_tree(scratch)
        for fd in (done_r, done_w, memfd):
            if fd >= 0:
                os.close(fd)


def _remove_tree(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
    if os.path.exists(path):  # the program made parts of it unreadable to us (as non-root)
        for root, dirs, _ in os.walk(path):
            for d in dirs:
                os.chmod(os.path.join(root, d), 0o700)
        os.chmod(path, 0o700)
        shutil.rmtree(path, ignore_errors=True)


def _supervise(proc: subprocess.Popen, t0: float, done_r: int, token: bytes, uid: int | None,
               limits: SandboxLimits, mode: str) -> SandboxResult:
    """Collect bounded output until the run ends or times out, kill what is left, classify."""
    deadline = t0 + limits.timeout_s
    cap = limits.output_bytes
    kept = {proc.stdout: bytearray(), proc.stderr: bytearray()}
    sel = selectors.DefaultSelector()
    for f in kept:
        sel.register(f, selectors.EVENT_READ)
    timed_out = False
    reaped_at = None  # when the main process was seen gone and leftovers were killed
    try:
        while sel.get_map():
            now = time.monotonic()
            if now >= deadline:
                timed_out = not _exited(proc)
                break
            if reaped_at is not None and now - reaped_at > 1.0:
                break  # something we could not kill still holds the pipes
            for key, _ in sel.select(timeout=min(deadline - now, 0.1)):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                buf = kept[key.fileobj]
                if len(buf) < cap:
                    buf += chunk[: cap - len(buf)]
            if reaped_at is None and _exited(proc):
                _kill_leftovers(proc.pid, uid)  # children still holding our pipes
                reaped_at = time.monotonic()
    finally:
        if reaped_at is None:
            _kill_leftovers(proc.pid, uid)
        rc = proc.wait()  # only now: until reaped, the group id cannot be reused by another process
        sel.close()
        for f in kept:
            f.close()
    wall = time.monotonic() - t0
    if mode == "bwrap" and rc > 128:
        rc = -(rc - 128)  # bwrap reports a child killed by signal N as 128+N
    got = _read_available(done_r)
    started = got.startswith(_STARTED)
    finished = got == _STARTED + token
    stderr = _decode(bytes(kept[proc.stderr]))
    if not started and not timed_out:
        stderr = (stderr + f"\nsandbox: the wrapper did not start the program ({mode} mode, rc={rc})").lstrip()
    return SandboxResult(_classify(timed_out, started, finished, rc), rc, _decode(bytes(kept[proc.stdout])),
                         stderr, wall)


def _exited(proc: subprocess.Popen) -> bool:
    """Whether the run's main process has exited, without reaping it (its pid stays our group id)."""
    return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _kill_leftovers(pgid: int, uid: int | None) -> None:
    """SIGKILL the run's process group and, under a per-run uid, every process of that uid."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    kill = _bin("kill", also="/usr/bin:/bin")
    if uid is not None and kill is not None:
        # kill(-1) under the uid reaches exactly that uid's processes, also ones that left the group;
        # the kernel makes it atomic against concurrent fork().
        try:
            subprocess.run([kill, "-KILL", "-1"], user=uid, group=uid, extra_groups=[], env={},
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except OSError as e:
            print(f"ioa sandbox: could not clean up uid {uid}: {e}", file=sys.stderr)


def _read_available(fd: int) -> bytes:
    os.set_blocking(fd, False)
    out = b""
    while len(out) < 4096:
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            break
        if not chunk:
            break
        out += chunk
    return out
