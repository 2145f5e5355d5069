"""The run report (`ioa.report.write_report`) on hand-made run directories: finished, mid-run and barely started."""
from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess

import pytest

from ioa.config import RunConfig, config_to_yaml
from ioa.evaluate import gate
from ioa.io import atomic_write_json, atomic_write_jsonl, read_json
from ioa.records import FinalEval
from ioa.report import DASH, write_report
from ioa.report_plots import graph_layout, layer_depths
from ioa.rundir import RunDir
from ioa.summary import summarize
from ioa.types import Curriculum, Diagnosis, Edge, Example, ModuleDiagnosis, Stage

PNG = b"\x89PNG\r\n\x1a\n"
P_TEACHER = {"add": 1.0, "mda": 1.0, "mul": 0.95, "mdm": 0.9}
BEFORE = {"add": 0.9, "mda": 0.3, "mul": 0.2, "mdm": 0.1}
FINAL = {"add": 0.9, "mda": 0.85, "mul": 0.88, "mdm": 0.5}


def diagnosis() -> Diagnosis:
    mods = tuple(
        ModuleDiagnosis(id=m, p_teacher=P_TEACHER[m], p_student=BEFORE[m],
                        gap=(P_TEACHER[m] - BEFORE[m]) / P_TEACHER[m],
                        deficient=m != "add", teachable=True, connectivity=0.5, severity=0.9 - 0.1 * i,
                        difficulty=0.0 if m in ("add", "mul") else 1.0)
        for i, m in enumerate(P_TEACHER))
    edges = (Edge("add", "mda", 40, 0.95, 0.1, 0.62), Edge("mul", "mdm", 35, 0.9, 0.05, 0.71))
    return Diagnosis(modules=mods, edges=edges)


def curriculum() -> Curriculum:
    return Curriculum(stages=(
        Stage(0, ("mda", "mul"), 0.3, 0.9),
        Stage(1, ("mdm",), 0.45, 0.9, bridge=True),
        Stage(2, ("mdm",), 0.6, 0.9),
    ))


def examples(stage: int, rnd: int, kinds: dict[str, int], modules) -> list[dict]:
    out = []
    for kind, n in kinds.items():
        for i in range(n):
            m = modules[i % len(modules)]
            out.append(Example(f"s{stage}r{rnd}-{kind}-{i}", m, f"q {i}", f"a {i}\nAnswer: {i}", str(i), 0.5,
                               kind).to_dict())
    return out


def write_round(rd: RunDir, stage: Stage, rnd: int, kinds: dict[str, int], accuracy: dict | None,
                losses: list[float] | None, last: bool = False):
    rdir = rd.round(stage.index, rnd)
    atomic_write_jsonl(rdir.train, examples(stage.index, rnd, kinds, stage.modules))
    atomic_write_json(rdir.synthesis, {"examples": sum(kinds.values()), "replayed": kinds.get("replay", 0),
                                                "rejected": 1, "duplicates": 2})
    metrics = {"steps": 6, "final_loss": (losses or [0.5])[-1]}
    if losses is not None:
        metrics["train_loss"] = losses
    atomic_write_json(rdir.metrics, metrics)
    if accuracy is None:
        return
    atomic_write_json(rdir.eval, {"accuracy": accuracy, "items": [], "stage_modules": list(stage.modules)})
    g = gate(accuracy, P_TEACHER, stage.modules, stage.mastery_threshold)
    action = "advance" if g.passed else ("advance-unmastered" if last else "remediate")
    atomic_write_json(rdir.gate, dataclasses.replace(g, action=action).to_dict())


@pytest.fixture
def run_dir(tmp_path):
    rd = RunDir(tmp_path / "run")
    cfg = RunConfig()
    rd.root.mkdir()
    rd.config.write_text(config_to_yaml(cfg))
    diag, cur = diagnosis(), curriculum()
    atomic_write_json(rd.diagnosis, diag.to_dict())
    atomic_write_json(rd.curriculum, cur.to_dict())
    s0, s1, s2 = cur.stages
    write_round(rd, s0, 0, {"synth": 16}, {"mda": 0.6, "mul": 0.7}, [2.1, 1.6, 1.2, 0.9, 0.8, 0.7])
    write_round(rd, s0, 1, {"remedial": 8, "replay": 2}, {"mda": 0.95, "mul": 0.9}, [0.9, 0.7, 0.6, 0.55, 0.5, 0.45])
    write_round(rd, s1, 0, {"bridge": 4}, None, [1.9, 1.5, 1.1])
    write_round(rd, s2, 0, {"synth": 16, "replay": 4}, {"mdm": 0.5, "mda": 0.85, "mul": 0.88}, None, last=True)
    atomic_write_json(rd.final_eval, {"accuracy": FINAL, "items": []})
    atomic_write_json(rd.timings, {"probe": 10.0, "identify": 2.5, "synthesize": 30.0, "train": 200.0, "evaluate": 40.0,
                                   "save_model": 5.0})
    final = FinalEval.from_dict(read_json(rd.final_eval))
    atomic_write_json(rd.summary, summarize(rd, diag, cur, final, cfg).to_dict())
    return rd.root


def section(text: str, start: str, end: str) -> str:
    return text.split(start, 1)[1].split(end, 1)[0]


def test_writes_every_file(run_dir):
    paths = write_report(run_dir)
    names = {p.relative_to(run_dir).as_posix() for p in paths}
    assert names == {"report.md", "report.html", "plots/dependency_graph.png", "plots/mastery_curves.png",
                     "plots/accuracy.png", "plots/training_loss.png"}
    for p in paths:
        assert p.is_file()
        if p.suffix == ".png":
            data = p.read_bytes()
            assert data.startswith(PNG) and len(data) > 5000, p


def test_markdown_module_table(run_dir):
    write_report(run_dir)
    md = (run_dir / "report.md").read_text()
    table = section(md, "## Modules", "## ")
    for m in P_TEACHER:
        rows = [line for line in table.splitlines() if line.startswith(f"| {m} |")]
        assert len(rows) == 1, m
        cells = [c.strip() for c in rows[0].strip("|").split("|")]
        assert cells[1:4] == [f"{100 * P_TEACHER[m]:.1f}%", f"{100 * BEFORE[m]:.1f}%", f"{100 * FINAL[m]:.1f}%"]
        assert cells[4] == f"{100 * (FINAL[m] - BEFORE[m]):+.1f} pts"  # the plain change, for every module
        assert cells[6] == ("no" if m == "add" else "yes")
    mda = next(line for line in table.splitlines() if line.startswith("| mda |"))
    assert "78.6%" in mda  # gap closed (0.85 - 0.3) / (1 - 0.3)
    assert "95.0% → 85.0% (-10.0 pts)" in mda  # at its gate -> final
    add = next(line for line in table.splitlines() if line.startswith("| add |"))
    assert add.rstrip(" |").endswith("–")  # never taught: no gate
    assert [c.strip() for c in add.strip("|").split("|")][5] == "–"  # and no "gap closed" for a module not taught
    assert "| 2 (bridge)" not in table and "1 (bridge), 2" in table  # mdm appears in the bridge and in stage 2


def test_header_and_curriculum(run_dir):
    write_report(run_dir)
    md = (run_dir / "report.md").read_text()
    assert "status: finished" in md and "unfinished" not in md
    assert "domain: arithmetic" in md and "student model: smollm2-135m" in md
    assert "20.0% → 74.3% (+54.3 pts)" in md  # deficient mean before -> after
    assert "drop 6.0 pts" in md  # mda, mul: 92.5% at their gate -> 86.5% final
    assert "4 min 47.5 s" in md  # total wall time: the phases add up
    stages = section(md, "## Curriculum and rounds", "## ")
    for action in ("remediate", "advance", "advance-unmastered", "bridge (no gate)"):
        assert f"| {action} |" in stages
    assert "synth 16" in stages and "remedial 8, replay 2" in stages and "bridge 4" in stages
    assert "0.600" in stages and "0.947" in stages  # min ratios at stage 0's two gates


def test_html_is_self_contained_and_matches(run_dir):
    paths = write_report(run_dir)
    text = (run_dir / "report.html").read_text()
    assert text.count("data:image/png;base64,") == sum(p.suffix == ".png" for p in paths)
    assert 'src="plots/' not in text
    modules = section(text, "<h2>Modules</h2>", "<h2>")
    for m in P_TEACHER:
        assert modules.count(f"<tr><td>{m}</td>") == 1
        assert f"{100 * FINAL[m]:.1f}%" in modules
    for action in ("remediate", "advance-unmastered", "bridge (no gate)"):
        assert f"<td>{action}</td>" in text
    assert "→" in text and "<code>" not in text  # finished: no resume command


def test_unfinished_run_reports_what_exists(tmp_path):
    rd = RunDir(tmp_path / "early")
    atomic_write_json(rd.diagnosis, diagnosis().to_dict())
    atomic_write_json(rd.curriculum, curriculum().to_dict())
    paths = write_report(rd.root)
    names = {p.relative_to(rd.root).as_posix() for p in paths}
    assert {"report.md", "report.html", "plots/dependency_graph.png", "plots/accuracy.png"} <= names
    md, page = (rd.root / "report.md").read_text(), (rd.root / "report.html").read_text()
    assert f"status: unfinished — resume with `ioa resume {rd.root}`" in md
    assert f"<code>ioa resume {rd.root}</code>" in page
    assert "not started" in md and "| mda | 100.0% | 30.0% | – |" in md


def test_mid_run_without_summary(run_dir):
    for name in ("summary.json", "final_eval.json"):
        (run_dir / name).unlink()
    shutil.rmtree(run_dir / "stages" / "2")
    paths = write_report(run_dir)
    md = (run_dir / "report.md").read_text()
    assert "status: unfinished" in md and "ioa resume" in md
    assert "plots/mastery_curves.png" in {p.relative_to(run_dir).as_posix() for p in paths}
    assert "95.0% → –" in md  # mastered at its gate, final not known yet
    assert "| 2 | mdm | 0.600 | no | 0.90 | – |" in md  # stage 2 not started


def test_diagnosis_only_and_empty_dir(tmp_path):
    rd = RunDir(tmp_path / "diag")
    atomic_write_json(rd.diagnosis, diagnosis().to_dict())
    write_report(rd.root)
    assert "No curriculum yet." in (rd.root / "report.md").read_text()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert {p.name for p in write_report(empty)} == {"report.md", "report.html"}
    assert "unfinished" in (empty / "report.md").read_text()


def test_layout_layers_and_long_edges():
    ids = ["a", "b", "c", "d"]
    edges = [("a", "b"), ("b", "c"), ("a", "c"), ("d", "c")]
    assert layer_depths(ids, edges) == {"a": 0, "d": 0, "b": 1, "c": 2}
    pos, chains = graph_layout(ids, edges)
    assert [pos[n][0] for n in ids] == [0, 1, 2, 0]
    assert len(chains[("a", "c")]) == 3 and pos[chains[("a", "c")][1]][0] == 1  # one dummy in layer 1
    assert len(chains[("a", "b")]) == 2


def test_html_renders_in_chromium(run_dir, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        pytest.skip("no headless Chromium installed")
    write_report(run_dir)
    shot = tmp_path / "report.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}",
                    "--window-size=1200,3000",
                    (run_dir / "report.html").as_uri()], check=True, capture_output=True, timeout=120)
    assert shot.read_bytes().startswith(PNG)


def test_no_stray_markup(run_dir):
    write_report(run_dir)
    text = (run_dir / "report.html").read_text()
    body = re.sub(r'src="data:image/png;base64,[^"]+"', "", text)
    assert "`" not in body and "**" not in body


def test_layout_puts_the_nodes_of_a_cycle_in_one_layer():
    ids = ["a", "b", "c"]
    edges = [("a", "b"), ("b", "c"), ("c", "b")]  # a damaged diagnosis: the Identifier breaks cycles
    assert layer_depths(ids, edges) == {"a": 0, "b": 1, "c": 1}
    pos, chains = graph_layout(ids, edges)
    assert {pos["b"][0], pos["c"][0]} == {1} and set(chains) == set(edges)


def test_timings_table_shows_each_phases_peak_memory(run_dir):
    write_report(run_dir)
    assert "peak memory" not in section((run_dir / "report.md").read_text(), "## Timings", "\n## ")
    atomic_write_json(RunDir(run_dir).memory, {"other": 1100.0, "probe": 1500.0, "train": 3600.0, "evaluate": 2048.0})
    write_report(run_dir)
    table = section((run_dir / "report.md").read_text() + "\n## ", "## Timings", "\n## ")
    rows = {c[0]: c[1:] for c in ([x.strip() for x in line.strip("|").split("|")]
                                  for line in table.splitlines() if line.startswith("| "))}
    assert rows["train"][-1] == "3.52 GiB" and rows["evaluate"][-1] == "2.00 GiB"
    assert rows["identify"][-1] == DASH  # a phase without a mark says so
    assert rows["total"][-1] == "3.52 GiB"  # the run's peak is its largest phase's
    assert rows["other (loading, between phases)"][-1] == "1.07 GiB"
