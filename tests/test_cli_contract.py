"""The command-line contract of `ioa identify` and `ioa plan`, driven as a user would, in a subprocess."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest


def ioa(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "ioa.cli", *map(str, args)], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(proc.stderr)
    return proc


def write_outcomes(path, extra_lines=()):
    rows = []
    for i in range(30):
        a_ok = i % 3 != 0
        rows += [
            {"learner": "student", "module": "add", "group": f"g{i}", "role": "step", "correct": a_ok},
            {"learner": "student", "module": "mul", "group": f"g{i}", "correct": a_ok and i % 2 == 0,
             "note": "ignored"},
            {"learner": "teacher", "module": "add", "group": f"g{i}", "role": "step", "correct": True},
            {"learner": "teacher", "module": "mul", "group": f"g{i}", "role": "problem", "correct": True},
            {"learner": "teacher", "module": "add", "group": f"a{i}", "role": "problem", "correct": True},
            {"learner": "student", "module": "add", "group": f"a{i}", "role": "problem", "correct": i % 4 == 0},
        ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n" + "".join(extra_lines))


def test_identify_then_plan(tmp_path):
    outcomes = tmp_path / "o.jsonl"
    write_outcomes(outcomes)
    ioa("identify", "--outcomes", outcomes, "--out", tmp_path / "d")
    diag = json.loads((tmp_path / "d" / "diagnosis.json").read_text())
    mods = {m["id"]: m for m in diag["modules"]}
    assert set(mods) == {"add", "mul"}
    for m in mods.values():
        assert {"id", "p_teacher", "p_student", "gap", "deficient", "severity"} <= set(m)
    assert mods["add"]["p_student"] == pytest.approx(8 / 30, abs=1e-6)
    assert [(e["source"], e["target"]) for e in diag["edges"]] == [("add", "mul")]
    assert diag["edges"][0]["support"] == 30  # the student's pairs (teacher pairs are not pooled)

    ioa("plan", "--diagnosis", tmp_path / "d" / "diagnosis.json", "--out", tmp_path / "p", "--set",
        "identifier.coverage=1")
    cur = json.loads((tmp_path / "p" / "curriculum.json").read_text())
    stages = cur["stages"]
    assert all({"index", "modules", "difficulty"} <= set(s) for s in stages)
    order = [k for s in stages if not s.get("bridge") for k in s["modules"]]
    assert order.index("add") < order.index("mul")


def test_malformed_line_is_named_and_nothing_is_written(tmp_path):
    outcomes = tmp_path / "o.jsonl"
    write_outcomes(outcomes, ['{"learner": "student", "module": "add", "group": "x", "correct": tru}\n'])
    proc = ioa("identify", "--outcomes", outcomes, "--out", tmp_path / "d", check=False)
    assert proc.returncode == 2
    assert "line 181" in proc.stderr and "o.jsonl" in proc.stderr
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("line, message", [
    ('{"learner": "robot", "module": "a", "group": "g", "correct": true}', "learner"),
    ('{"learner": "student", "group": "g", "correct": true}', "module"),
    ('{"learner": "student", "module": "a", "group": "g", "role": "quiz", "correct": true}', "role"),
    ('{"learner": "student", "module": "a", "group": "g", "correct": "yes"}', "correct"),
    ('[1, 2]', "line 2"),
])
def test_bad_values_are_named_by_line_and_field(tmp_path, line, message):
    outcomes = tmp_path / "o.jsonl"
    outcomes.write_text('{"learner": "teacher", "module": "a", "group": "g", "correct": true}\n' + line + "\n")
    proc = ioa("identify", "--outcomes", outcomes, "--out", tmp_path / "d", check=False)
    assert proc.returncode == 2 and "line 2" in proc.stderr and message in proc.stderr
    assert not (tmp_path / "d").exists()


def test_bad_config_value_stops_before_anything_runs(tmp_path):
    outcomes = tmp_path / "o.jsonl"
    write_outcomes(outcomes)
    proc = ioa("identify", "--outcomes", outcomes, "--out", tmp_path / "d", "--set", "identifier.tau_gap=3",
               check=False)
    assert proc.returncode == 2 and "identifier.tau_gap" in proc.stderr
    assert not (tmp_path / "d").exists()


def test_plan_names_a_missing_field(tmp_path):
    bad = tmp_path / "diagnosis.json"
    bad.write_text(json.dumps({"modules": [{"id": "a", "p_teacher": 1.0, "p_student": 0.2, "deficient": True}]}))
    proc = ioa("plan", "--diagnosis", bad, "--out", tmp_path / "p", check=False)
    assert proc.returncode == 2 and "modules[0].severity" in proc.stderr


def test_identify_on_the_builtin_domain_writes_attempts(tmp_path):
    ioa("identify", "--domain", "arithmetic", "--out", tmp_path / "d", "--set", "probe.items_per_module=6")
    attempts = [json.loads(line) for line in (tmp_path / "d" / "attempts.jsonl").read_text().splitlines()]
    assert {a["learner"] for a in attempts} == {"teacher", "student"}
    assert {a["role"] for a in attempts} == {"problem", "step"}
    diag = json.loads((tmp_path / "d" / "diagnosis.json").read_text())
    assert len(diag["modules"]) >= 15


def test_unknown_domain_is_one_clear_error(tmp_path):
    proc = ioa("identify", "--domain", "astrology", "--out", tmp_path / "d", check=False)
    assert proc.returncode == 2 and "unknown domain 'astrology'" in proc.stderr


@pytest.mark.parametrize("setting, message", [
    ("identifier.tau_gpa=0.2", "did you mean identifier.tau_gap?"),
    ("identifer.coverage=1", "did you mean identifier?"),
    ("student.model=/no/such/model", "student.model: Value error, no such path: /no/such/model"),
])
def test_config_errors_point_at_the_cause(tmp_path, setting, message):
    proc = ioa("run", "--run-dir", tmp_path / "r", "--set", setting, check=False)
    assert proc.returncode == 2 and message in proc.stderr
    assert not (tmp_path / "r").exists()


def test_compare_hints_match_what_the_folder_is(tmp_path):
    (tmp_path / "plain").mkdir()
    proc = ioa("compare", tmp_path / "plain", "--out", tmp_path / "c", check=False)
    assert proc.returncode == 2 and "not a run directory" in proc.stderr and "ioa resume" not in proc.stderr
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.yaml").write_text("method: ioa\n")
    proc = ioa("compare", tmp_path / "half", "--out", tmp_path / "c", check=False)
    assert proc.returncode == 2 and f"ioa resume {tmp_path / 'half'}" in proc.stderr
    assert not (tmp_path / "c").exists()


def test_a_second_process_on_a_locked_run_directory_stops_at_once(tmp_path):
    run_dir = tmp_path / "r"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from ioa.lock import acquire; "
                               f"acquire({str(run_dir)!r}); print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        (run_dir / "config.yaml").write_text("method: ioa\n")
        proc = ioa("resume", run_dir, check=False)
        assert proc.returncode == 2 and f"in use by pid {holder.pid}" in proc.stderr
        (run_dir / "diagnosis.json").write_text("{}")
        proc = ioa("report", run_dir, check=False)
        assert proc.returncode == 2 and f"pid {holder.pid}" in proc.stderr and not (run_dir / "report.md").exists()
    finally:
        holder.kill()
        holder.wait()
    # the kernel released the killed holder's lock: no stale lock to clean up
    from ioa.lock import acquire, release

    acquire(run_dir)
    release(run_dir)


@pytest.mark.parametrize("argv, preset", [
    (["run"], "default"),
    (["run", "--set", "seed=3"], "default"),
    (["run", "--preset", "smoke"], "smoke"),
    (["run", "--set", "domain=gsm8k"], None),  # the default preset names arithmetic modules
])
def test_a_run_takes_the_default_preset_only_for_the_builtin_domain(argv, preset):
    from ioa.cli import build_parser, implied_preset

    assert implied_preset(build_parser().parse_args(argv)) == preset
