"""Every file a run writes is named in `ioa.rundir`, and nowhere else in the package."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from fakes import LearningFake

from ioa.config import load_config
from ioa.context import Context
from ioa.domains import load_domain
from ioa.methods.registry import run
from ioa.report import write_report
from ioa.rundir import RoundDir, RunDir
from ioa.teachers import load_teacher

PACKAGE = Path(__file__).resolve().parents[1] / "ioa"
MODULES = ["addition_facts", "place_value", "multi_digit_addition", "multiplication_facts"]
START = {"addition_facts": 0.95, "place_value": 0.95, "multi_digit_addition": 0.3, "multiplication_facts": 0.4}
# Folders whose insides belong to someone else: the student's weights (a round's, and the calibration pilot's
# starting weights) and the trainer's checkpoints, the merged model, and `ioa eval`'s output.
OWNED = ("state", "start", "trainer", "model", "benchmarks")


def named_paths(rd: RunDir, when: tuple[str, ...] = ("before", "after")) -> set[Path]:
    """Every path RunDir and RoundDir name for the stages and rounds on disk."""
    def properties(obj, cls) -> set[Path]:
        return {getattr(obj, name) for name, v in vars(cls).items() if isinstance(v, property)} - {rd.cache}

    out = properties(rd, RunDir) | {rd.benchmarks(w) for w in when}
    out |= {rd.plot(p.stem) for p in (rd.root / "plots").glob("*")}
    for rdir in rd.all_rounds():
        out |= properties(rdir, RoundDir) - {rdir.index, rdir.stage} | {rd.selected(rdir.stage)}
    for rdir in rd.pilot_forms():  # the calibration pilot's rounds: named by form, not numbered
        out |= {getattr(rdir, name) for name, v in vars(RoundDir).items()
                if isinstance(v, property) and name not in ("index", "stage")}
    return out


def unnamed_files(rd: RunDir) -> list[str]:
    named = named_paths(rd)
    owned = {p for p in named if p.name in OWNED}
    return sorted(str(p.relative_to(rd.root)) for p in rd.root.rglob("*")
                  if p.is_file() and p not in named and not any(d in p.parents for d in owned))


@pytest.mark.parametrize("method", ["ioa", "ioa+calibration", "error-targeted", "self-instruct"])
def test_every_file_a_run_writes_is_named_in_rundir(tmp_path, method):
    method, _, calibration = method.partition("+")
    overrides = [f"method={method}", f"modules=[{', '.join(MODULES)}]", "probe.items_per_module=20",
                 f"adapter.calibrate.enabled={bool(calibration)}", "adapter.calibrate.forms=[configured, goal]",
                 "identifier.min_support=5", "synthesis.examples_per_module=8", "synthesis.max_remedial_rounds=1",
                 "eval.test_items_per_module=6", "eval.curve=true", "baseline.error_rounds=2"]
    domain = load_domain("arithmetic")
    rd = RunDir(tmp_path / method)
    rd.root.mkdir()
    student = LearningFake(START, domain.declared_prerequisites())
    ctx = Context(cfg=load_config(None, None, overrides), rd=rd, domain=domain,
                  teacher=load_teacher("procedural", domain), student=student, progress=False, quiet=True)
    run(ctx)
    write_report(rd.root)
    assert rd.all_rounds() and rd.test_before.exists() and rd.round(0, 0).curve.exists()
    assert rd.adapter_choice.exists() == bool(calibration) and len(rd.pilot_forms()) == 2 * bool(calibration)
    assert unnamed_files(rd) == []


def test_rounds_are_listed_in_numeric_order(tmp_path):
    rd = RunDir(tmp_path)
    for stage, rnd in [(10, 0), (2, 11), (2, 2), (0, 0)]:
        rd.round(stage, rnd).path.mkdir(parents=True)
    assert [r.index for r in rd.rounds(2)] == [2, 11]
    assert [(r.stage, r.index) for r in rd.all_rounds()] == [(0, 0), (2, 2), (2, 11), (10, 0)]
    assert RoundDir.of_state(rd.round(2, 11).state) == rd.round(2, 11)


def test_no_module_but_rundir_spells_a_run_directory_file_name():
    """A run-directory file name joined onto a path (`x / "eval.json"`) outside ioa/rundir.py is a second
    name for it. The student's own files inside state/ and trainer/ are its business (ioa/students)."""
    rd, rdir = RunDir(Path("DIR")), RoundDir(Path("DIR/stages/0/round-0"))
    names = {p.name for p in named_paths(rd) | {getattr(rdir, n) for n, v in vars(RoundDir).items()
                                                 if isinstance(v, property) and n not in ("index", "stage")}}
    pattern = re.compile(r"""/\s*f?["'](%s)["']""" % "|".join(map(re.escape, sorted(names))))
    found = [f"{path.relative_to(PACKAGE)}: {m.group(1)}"
             for path in sorted(PACKAGE.rglob("*.py")) if path.name != "rundir.py" and "students" not in path.parts
             for m in pattern.finditer(path.read_text())]
    assert found == []
