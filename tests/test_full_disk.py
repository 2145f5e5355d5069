"""A full disk mid-run: the write fails whole, the run stops with one line naming the file, and resumes.

The limit is RLIMIT_FSIZE in a child process (no root, no mount needed): a write past it fails with
EFBIG, which ioa treats like ENOSPC and a quota. The run uses the fast learning fake.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ioa.io import NoSpaceError

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import resource, signal, sys
sys.path.insert(0, {tests!r})
from pathlib import Path
from test_loop import make_ctx
from ioa.methods.registry import run
limit = int(sys.argv[1])
if limit:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
try:
    summary = run(make_ctx(Path(sys.argv[2]), **{{"synthesis.max_remedial_rounds": 1}}))
except OSError as e:
    from ioa.io import no_space
    full = no_space(e)
    print(f"stopped: {{full}}" if full else f"other: {{e!r}}", file=sys.stderr)
    sys.exit(5)
print(summary["status"])
"""


def run_child(tmp: Path, limit: int) -> subprocess.CompletedProcess:
    code = CHILD.format(tests=str(ROOT / "tests"))
    return subprocess.run([sys.executable, "-c", code, str(limit), str(tmp)], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})


def test_a_write_that_does_not_fit_keeps_the_old_file(tmp_path):
    target = tmp_path / "data.json"
    target.write_text("old")
    code = ("import resource, signal, sys; from ioa.io import atomic_write_text; "
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN); resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))\n"
            f"try:\n    atomic_write_text({str(target)!r}, 'x' * 5000)\n"
            "except OSError as e:\n    print(type(e).__name__, e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.stdout.strip() == f"NoSpaceError no space left on the device writing {target} (it needs 5,000 bytes)"
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["data.json"]


def test_a_run_stopped_by_a_full_disk_resumes_to_the_same_result(tmp_path):
    whole = run_child(tmp_path / "whole", 0)
    assert whole.returncode == 0, whole.stderr
    sizes = sorted(p.stat().st_size for p in (tmp_path / "whole").rglob("*") if p.is_file())
    limit = sizes[len(sizes) // 2]  # half the run's files fit, the bigger half does not
    stopped = run_child(tmp_path / "cut", limit)
    assert stopped.returncode == 5, stopped.stderr
    last = stopped.stderr.strip().splitlines()[-1]
    assert last.startswith("stopped: no space left on the device writing ") and "bytes)" in last
    named = Path(last.split("writing ")[1].split(" (")[0])
    assert not named.exists() or named.stat().st_size <= limit  # no partial file where the good one belongs
    resumed = run_child(tmp_path / "cut", 0)
    assert resumed.returncode == 0, resumed.stderr
    a, b = (json.loads((tmp_path / d / "run" / "summary.json").read_text()) for d in ("whole", "cut"))
    assert [m["p_student_after"] for m in a["modules"]] == [m["p_student_after"] for m in b["modules"]]


def test_the_cli_says_it_in_one_line_with_its_own_exit_code(monkeypatch, capsys):
    from ioa import cli

    def full(args):
        raise NoSpaceError("runs/x/summary.json", 1234)

    monkeypatch.setattr(cli, "cmd_report", full)
    parser_args = ["report", "runs/x"]
    monkeypatch.setattr(cli, "build_parser", lambda real=cli.build_parser: _with_func(real(), full))
    assert cli.main(parser_args) == 5
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["ioa: stopped: no space left on the device writing runs/x/summary.json (it needs 1,234 bytes); "
                   "free space, then `ioa resume DIR` continues from the last finished step"]


def _with_func(parser, func):
    parser.set_defaults(func=func)
    for action in parser._subparsers._group_actions:
        for sub in action.choices.values():
            sub.set_defaults(func=func)
    return parser
