"""The run report: DIR/report.md, DIR/report.html and DIR/plots/*.png, built only from the run directory.

Works on a finished run and on an unfinished one (it reports what exists and says how to resume).
The report is first built as a list of blocks (headings, paragraphs, tables, images); the Markdown
and the self-contained HTML (images inlined as base64) are two renderings of the same blocks, so
they always carry the same information. Figures live in `ioa.report_plots`.
"""
from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ioa import report_plots as plots
from ioa.grading import passes
from ioa.io import atomic_write_bytes, atomic_write_text, read_json
from ioa.records import Evaluation, FinalEval, RunSummary
from ioa.rundir import RunDir
from ioa.summary import stage_history
from ioa.types import Curriculum, Diagnosis

DASH = "–"
MAX_EDGE_ROWS = 200
CSS = ("body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;"
       "color:#222;line-height:1.45}\n"
       "table{border-collapse:collapse;margin:.8em 0;font-size:.9em}th,td{border:1px solid #ccc;padding:.25em .6em;"
       "text-align:left}\n"
       "th{background:#f1f1f1}tr:nth-child(even) td{background:#fafafa}img{max-width:100%;border:1px solid #eee;"
       "margin:.5em 0}\n"
       "code{background:#f3f3f3;padding:0 .25em;border-radius:3px}.unfinished{color:#b45f06;font-weight:bold}")


# --- reading the run directory ------------------------------------------------------------------

@dataclass
class RunData:
    rd: RunDir
    config: dict[str, Any] = field(default_factory=dict)
    diagnosis: Diagnosis | None = None
    curriculum: Curriculum | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    final: dict[str, float] | None = None
    before: dict[str, float] | None = None  # on the held-out test set, when the run has one
    summary: RunSummary | None = None
    timings: dict[str, float] = field(default_factory=dict)
    memory: dict[str, float] = field(default_factory=dict)  # peak resident MiB per phase (memory.json)

    @property
    def finished(self) -> bool:
        return self.summary is not None and self.summary.status == "finished" and self.final is not None


def _json_or_none(path: Path) -> Any:
    return read_json(path) if path.exists() else None


def load_run(root: Path) -> RunData:
    rd = RunDir(Path(root))
    data = RunData(rd)
    if rd.config.exists():
        data.config = yaml.safe_load(rd.config.read_text()) or {}
    if rd.diagnosis.exists():
        data.diagnosis = Diagnosis.from_dict(read_json(rd.diagnosis))
    if rd.curriculum.exists():
        data.curriculum = Curriculum.from_dict(read_json(rd.curriculum))
        data.history = stage_history(rd, data.curriculum)
        for stage in data.history:
            for r in stage["rounds"]:
                rdir = rd.round(stage["index"], r["round"])
                r["synthesis"] = _json_or_none(rdir.synthesis) or {}
                metrics = _json_or_none(rdir.metrics) or {}
                r["losses"] = [float(x) for x in metrics.get("train_loss") or metrics.get("losses") or []
                               if x is not None]
    if rd.test_before.exists():
        data.before = Evaluation.from_dict(read_json(rd.test_before)).accuracy
    if rd.final_eval.exists():
        data.final = FinalEval.from_dict(read_json(rd.final_eval)).accuracy
    if rd.summary.exists():
        data.summary = RunSummary.from_dict(read_json(rd.summary))
    data.timings = _json_or_none(rd.timings) or {}
    data.memory = _json_or_none(rd.memory) or {}
    return data


# --- derived numbers ----------------------------------------------------------------------------

def pct(x: float | None) -> str:
    return DASH if x is None else f"{100 * x:.1f}%"


def points(x: float | None, sign: bool = True) -> str:
    return DASH if x is None else f"{x:+.1f} pts" if sign else f"{x:.1f} pts"


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def gate_points(history: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """module -> accuracy, ratio, stage and mastered flag at the last gate of the last stage teaching it."""
    out: dict[str, dict[str, Any]] = {}
    for stage in history:
        gated = [r for r in stage["rounds"] if "ratios" in r]
        if stage["bridge"] or not gated:
            continue
        last = gated[-1]
        for m in stage["modules"]:
            if m in last.get("accuracy", {}):
                ratio = last["ratios"].get(m, 0.0)
                out[m] = {"stage": stage["index"], "accuracy": last["accuracy"][m], "ratio": ratio,
                          "mastered": passes(ratio, stage["mastery_threshold"])}
    return out


def module_rows(data: RunData) -> list[dict[str, Any]]:
    """One row per diagnosed module, in stage order (untaught modules last, by severity)."""
    if data.diagnosis is None:
        return []
    curriculum = data.curriculum.stages if data.curriculum else ()
    stages: dict[str, list[str]] = {}
    first_seen: dict[str, int] = {}
    for s in curriculum:
        for m in s.modules:
            stages.setdefault(m, []).append(f"{s.index} (bridge)" if s.bridge else str(s.index))
            first_seen.setdefault(m, s.index)
    gates = gate_points(data.history)
    rows = []
    for m in data.diagnosis.modules:
        after = (data.final or {}).get(m.id)
        before = (data.before or {}).get(m.id, m.p_student)
        room = m.p_teacher - before
        rows.append({
            "id": m.id, "p_teacher": m.p_teacher, "before": before, "after": after, "deficient": m.deficient,
            "severity": m.severity, "stages": stages.get(m.id, []), "gate": gates.get(m.id),
            "gap_closed": (after - before) / room if after is not None and room > 0 else None,
        })
    return sorted(rows, key=lambda r: (first_seen.get(r["id"], float("inf")), -r["severity"]))


def headline(data: RunData, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Deficient before -> after and retention drop: from summary.json when finished, else what is known."""
    if data.finished:
        d, r = data.summary.deficient, data.summary.retention
        return {"count": d["count"], "before": d["mean_before"], "after": d["mean_after"], "gain": d["gain_points"],
                "retention": r["modules"], "at_gate": r["mean_at_mastery"], "final": r["mean_final"],
                "drop": r["drop_points"]}
    deficient = [x for x in rows if x["deficient"]]
    return {"count": len(deficient), "before": _mean([x["before"] for x in deficient]), "after": None, "gain": None,
            "retention": [], "at_gate": None, "final": None, "drop": None}


def timing_rows(timings: dict[str, float]) -> tuple[list[list[str]], float]:
    """Rows (phase, seconds, share) and the total; the loop's phases never nest, so they add up."""
    phases = {k: float(v) for k, v in timings.items() if k != "total"}
    total = float(timings.get("total", sum(phases.values())))
    rows = [[k, fmt_seconds(v), f"{100 * v / total:.1f}%" if total > 0 else DASH] for k, v in phases.items()]
    return rows, total


def fmt_seconds(s: float | None) -> str:
    if s is None:
        return DASH
    s = float(s)
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {s % 60:04.1f} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


# --- blocks: the report's content, rendered twice -------------------------------------------------

@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Para:
    text: str  # `code` spans allowed
    css: str = ""


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Image:
    path: str  # relative to the run directory
    alt: str
    png: bytes


def header_blocks(data: RunData, rows: list[dict[str, Any]]) -> list[Any]:
    cfg, summary = data.config, data.summary or RunSummary(status="unfinished")
    domain = cfg.get("domain") or summary.domain or DASH
    student = (cfg.get("student") or {}).get("model") or summary.student or DASH
    h = headline(data, rows)
    timing, total = timing_rows(data.timings)
    retained = (f"retention on modules mastered in earlier stages ({', '.join(h['retention'])}): {pct(h['at_gate'])} "
                f"at their gate → {pct(h['final'])} final (drop {points(h['drop'], sign=False)})" if h["retention"] else
                "retention: no module was mastered in an earlier stage" + ("" if data.finished else " yet"))
    prior = summary.prior_knowledge
    known = (f"prior knowledge (mastered before the run, not taught: {', '.join(prior['modules'])}): "
             f"{pct(prior['mean_before'])} → {pct(prior['mean_after'])} "
             f"(drop {points(prior['drop_points'], sign=False)})"
             if prior.get("modules") else None)
    untaught = summary.not_taught
    cost = (f"modules not taught ({', '.join(untaught['modules'])}): {pct(untaught['mean_before'])} → "
            f"{pct(untaught['mean_after'])} ({points(untaught['change_points'])})"
            if untaught.get("modules") and untaught.get("change_points") is not None else None)
    lengths = summary.completion_tokens
    length = ("completion length, raw → adapted (≈ tokens): "
              + ", ".join(f"{m} {v['raw']:.0f} → {v['adapted']:.0f}" for m, v in lengths.items()) if lengths else None)
    bleed = summary.layout_bleed
    bled = (f"answers written in another module's layout: {pct(bleed['mean_before'])} before → "
            f"{pct(bleed['mean_after'])} after "
            "(mean over modules; " + ", ".join(f"{m} {pct(v)}" for m, v in bleed["after"].items()) + ")"
            if bleed.get("mean_after") is not None else None)
    items = tuple(x for x in (
        f"domain: {domain}", f"student model: {student}", f"status: {'finished' if data.finished else 'unfinished'}",
        f"deficient modules ({h['count']}): mean accuracy {pct(h['before'])} → {pct(h['after'])} ({points(h['gain'])})",
        cost, retained, known, length, bled,
        f"total wall time: {fmt_seconds(total) if data.timings else DASH}"
        + (f" ({', '.join(f'{r[0]} {r[1]}' for r in timing)})" if timing else ""),
    ) if x)
    blocks: list[Any] = [Heading(1, f"IOA run report: {data.rd.root.name}"), Bullets(items)]
    if not data.finished:
        blocks.append(Para(f"status: unfinished — resume with `ioa resume {data.rd.root}`. "
                           "Only the steps that have written their files are reported below.", "unfinished"))
    return blocks


def _retention(row: dict[str, Any]) -> str:
    g = row["gate"]
    if g is None:
        return DASH
    change = f" ({points(100 * (row['after'] - g['accuracy']))})" if row["after"] is not None else ""
    return f"{pct(g['accuracy'])} → {pct(row['after'])}{change}" + ("" if g["mastered"] else " (unmastered)")


def module_blocks(rows: list[dict[str, Any]]) -> list[Any]:
    headers = ("module", "P_T (teacher)", "student before", "student after", "change", "gap closed", "deficient",
               "taught in stage", "at gate → final")

    def change(r: dict[str, Any]) -> str:
        return points(100 * (r["after"] - r["before"])) if r["after"] is not None else DASH

    table = tuple((r["id"], pct(r["p_teacher"]), pct(r["before"]), pct(r["after"]), change(r),
                   pct(r["gap_closed"]) if r["stages"] else DASH,
                   "yes" if r["deficient"] else "no", ", ".join(r["stages"]) or DASH, _retention(r)) for r in rows)
    return [Heading(2, "Modules"),
            Para("Sorted by stage order; modules not taught come last, by severity. Change: after − before, in "
                 "points. Gap closed (taught modules only) = (after − before) / (P_T − before). At gate → final: "
                 "accuracy at the last gate of the module's stage and on the final evaluation (forgetting when it "
                 "falls)."),
            Table(headers, table) if rows else Para("No diagnosis yet.")]


def graph_blocks(data: RunData, images: dict[str, Image]) -> list[Any]:
    blocks: list[Any] = [Heading(2, "Dependency graph")]
    if "dependency_graph" in images:
        blocks.append(images["dependency_graph"])
    edges = data.diagnosis.edges if data.diagnosis else ()
    rejected = data.diagnosis.rejected_prior if data.diagnosis else ()
    if rejected:
        blocks.append(Para("Declared prerequisites the student's data rejected (no lift): "
                           + ", ".join(f"{e.source} → {e.target} (lift {e.lift:.3f}, {e.support} pairs)"
                                       for e in rejected[:50])))
    if not edges:
        blocks.append(Para("No prerequisite edges were discovered."))
        return blocks
    origin = {"data": "found in the data", "confirmed": "declared, confirmed by the data",
              "prior": "declared, not rejected"}
    rows = tuple((e.source, e.target, str(e.support), f"{e.lift:.3f}", origin.get(e.origin, e.origin))
                 for e in edges[:MAX_EDGE_ROWS])
    blocks.append(Table(("source (prerequisite)", "target", "support", "lift", "origin"), rows))
    if len(edges) > MAX_EDGE_ROWS:
        blocks.append(Para(f"… and {len(edges) - MAX_EDGE_ROWS} more edges (see diagnosis.json)."))
    dropped = data.diagnosis.dropped_edges
    if dropped:
        blocks.append(Para("Dropped to break cycles: " + ", ".join(f"{e.source} → {e.target}" for e in dropped[:50])))
    return blocks


def _examples(r: dict[str, Any]) -> str:
    kinds = r.get("examples")
    if not kinds:
        return DASH
    order = ["synth", "remedial", "replay", "bridge"]
    return ", ".join(f"{k} {kinds[k]}" for k in order + sorted(set(kinds) - set(order)) if k in kinds)


def _action(stage: dict[str, Any], r: dict[str, Any]) -> str:
    if stage["bridge"]:
        return "bridge (no gate)"
    if "action" not in r:
        return "in progress"
    # the informative case: an earlier round's weights were kept because the later ones did worse
    rolled_back = r["round"] == stage.get("selected_round") != stage["rounds"][-1]["round"]
    return r["action"] + (" · weights kept" if rolled_back else "")


def _round_row(stage: dict[str, Any], r: dict[str, Any] | None) -> tuple[str, ...]:
    """A round's row; the stage's own columns (but its index) only on its first round."""
    head = (str(stage["index"]), ", ".join(stage["modules"]), f"{stage['difficulty']:.3f}",
            "yes" if stage["bridge"] else "no", f"{stage['mastery_threshold']:.2f}")
    if r is not None and r is not stage["rounds"][0]:
        head = (head[0],) + ("",) * (len(head) - 1)
    if r is None:
        return head + (DASH,) * 6 + ("not started",)
    syn = r.get("synthesis") or {}
    dropped = f"{syn.get('rejected', 0)} / {syn.get('duplicates', 0)}" if syn else DASH
    loss = f"{r['final_loss']:.4f}" if isinstance(r.get("final_loss"), (int, float)) else DASH
    ratio = f"{r['min_ratio']:.3f}" if "min_ratio" in r else DASH
    return head + (str(r["round"]), _examples(r), dropped, str(r.get("steps") if r.get("steps") is not None else DASH),
                   loss, ratio, _action(stage, r))


def curriculum_blocks(data: RunData) -> list[Any]:
    blocks: list[Any] = [Heading(2, "Curriculum and rounds")]
    if data.curriculum is None:
        return blocks + [Para("No curriculum yet.")]
    headers = ("stage", "modules", "difficulty", "bridge", "threshold", "round", "examples by kind",
               "rejected / duplicates", "steps", "final loss", "min P_S/P_T", "action")
    rows = tuple(_round_row(s, r) for s in data.history for r in (s["rounds"] or [None]))
    return blocks + [
        Para("One row per training round. The gate compares the worst P_S/P_T over the stage's modules with the "
             "stage's mastery threshold: advance (passed), remediate (another round on the failed probes' "
             "modules) or advance-unmastered (out of remedial rounds). Bridge stages train once and have no gate."),
        Table(headers, rows)]


def calibration_blocks(data: RunData) -> list[Any]:
    """The Adapter calibration pilot (adapter.json): each form's pilot score per module and the choice."""
    record = _json_or_none(data.rd.adapter_choice)
    if record is None:
        return []
    modules, scores, twins = record["modules"], record["scores"], record.get("same_as_per_module", {})

    def cell(form: str, m: str) -> str:
        if form not in scores:
            return DASH
        mark = " ←" if record["choice"].get(m) == form else ""
        same = twins.get(m, {}).get(form)  # writes this module as an earlier form does: no candidate for it
        return f"({pct(scores[form].get(m))}, as {same})" if same else f"{pct(scores[form].get(m))}{mark}"

    headers = ("form", "trained", "≈ words per completion", *modules)
    rows = tuple((form, "yes" if form in scores else f"no (writes as {record['same_as'].get(form, DASH)})",
                  f"{record['completion_words'].get(form, 0):.0f}", *(cell(form, m) for m in modules))
                 for form in record["candidates"])
    return [Heading(2, "Adapter calibration"),
            Para(f"Before the first stage every candidate form of the same {record['examples_per_module']} teacher "
                 f"solutions per module trained {record['steps_per_form']} step(s) from the starting weights and was "
                 f"scored on {record['items_per_module']} pilot items per module (neither probes nor test items); ← "
                 f"marks the form each module was taught in (ties keep the earlier form; a score in parentheses is "
                 f"a form that writes the module as an earlier form does, no candidate for it). The pilot spent "
                 f"{record['steps']} of the run's steps."),
            Table(headers, rows)]


def figure_blocks(title: str, images: dict[str, Image], keys: list[str], missing: str) -> list[Any]:
    found = [images[k] for k in keys if k in images]
    return [Heading(2, title)] + (found or [Para(missing)])


def benchmark_blocks(data: RunData) -> list[Any]:
    """Benchmark scores before and after the run (config eval.benchmarks), from DIR/benchmarks/."""
    from ioa.summary import benchmark_metrics

    scores = benchmark_metrics(data.rd)
    if not scores:
        return []
    before, after = scores.get("before", {}), scores.get("after", {})
    rows = []
    for name in sorted(set(before) | set(after)):
        metrics = sorted({k for d in (before.get(name, {}), after.get(name, {})) for k in d
                          if k not in ("n", "status")})
        for k in metrics or ["status"]:
            b, a = before.get(name, {}).get(k), after.get(name, {}).get(k)
            rows.append((name, k, DASH if b is None else (f"{b:.4g}" if isinstance(b, float) else str(b)),
                         DASH if a is None else (f"{a:.4g}" if isinstance(a, float) else str(a))))
    return [Heading(2, "Benchmarks"),
            Para("Scored as `ioa eval` does (benchmarks/before and benchmarks/after hold every output)."),
            Table(("benchmark", "metric", "before", "after"), tuple(rows))]


def usage_blocks(data: RunData) -> list[Any]:
    """Teacher calls, tokens and cost per phase (LLM teachers), from the run's ledger."""
    from ioa.llm.accounting import Ledger

    totals = Ledger.totals_of(data.rd.teacher_calls)
    if not totals:
        return []
    rows = []
    for phase, t in [*totals["phases"].items(), ("total", totals)]:
        rows.append((phase, str(t["calls"]), str(t["cached"]), str(t["errors"]), f"{t['prompt_tokens']:,}",
                     f"{t['completion_tokens']:,}", f"${t['cost']:,.4f}"))
    return [Heading(2, "Teacher usage"),
            Para("Every teacher call is in teacher_calls.jsonl (prompt name and version, tokens, cost, retries). "
                 "Cached calls cost nothing and are not counted in tokens or cost."),
            Table(("phase", "calls", "cached", "failed", "prompt tokens", "completion tokens", "cost"), tuple(rows))]


def timing_blocks(data: RunData) -> list[Any]:
    rows, total = timing_rows(data.timings)
    if not rows:
        return [Heading(2, "Timings"), Para("No timings.json yet.")]
    headers, total_row = ("phase", "wall time", "share"), ("total", fmt_seconds(total), "100.0%")
    blocks: list[Any] = [Heading(2, "Timings")]
    if data.memory:
        def peak(phase: str | None) -> str:
            mb = max(data.memory.values()) if phase is None else data.memory.get(phase)
            return DASH if mb is None else f"{mb / 1024:.2f} GiB"
        rows = [[*row, peak(row[0])] for row in rows]
        if "other" in data.memory:
            rows.append(["other (loading, between phases)", DASH, DASH, peak("other")])
        headers, total_row = (*headers, "peak memory"), (*total_row, peak(None))
        blocks.append(Para("Peak memory: the process's largest resident set during the phase (the kernel's "
                           "high-water mark, reset when the phase starts and ends), over all of its calls and "
                           "resumes."))
    return [*blocks, Table(headers, tuple(map(tuple, rows)) + (total_row,))]


def loss_series(history: list[dict[str, Any]]) -> list[tuple[int, int, list[float], int | None]]:
    return [(s["index"], r["round"], r.get("losses") or [], r.get("steps")) for s in history for r in s["rounds"]]


def make_images(data: RunData, rows: list[dict[str, Any]]) -> dict[str, Image]:
    """Draw every figure there is data for; key -> Image (PNG bytes not yet written)."""
    figures = {}
    if data.diagnosis is not None:
        ids = [m.id for m in data.diagnosis.modules]
        edges = [(e.source, e.target) for e in data.diagnosis.edges if e.source in ids and e.target in ids]
        taught = {m for s in (data.curriculum.stages if data.curriculum else ()) for m in s.modules}
        deficient = {m.id for m in data.diagnosis.modules if m.deficient}
        figures["dependency_graph"] = ("prerequisite graph", plots.dependency_graph(ids, edges, deficient, taught))
    figures["mastery_curves"] = ("mastery curves", plots.mastery_curves(data.history))
    figures["accuracy"] = ("accuracy before and after", plots.accuracy_bars(rows))
    figures["training_loss"] = ("training loss", plots.training_loss(loss_series(data.history)))
    return {k: Image(str(data.rd.plot(k).relative_to(data.rd.root)), alt, plots.png_bytes(fig))
            for k, (alt, fig) in figures.items() if fig is not None}


def build_blocks(data: RunData) -> tuple[list[Any], dict[str, Image]]:
    rows = module_rows(data)
    images = make_images(data, rows)
    shown = f" (first {plots.MAX_BARS} modules of the table)" if len(rows) > plots.MAX_BARS else ""
    blocks = header_blocks(data, rows) + module_blocks(rows)
    blocks += figure_blocks(f"Accuracy before and after{shown}", images, ["accuracy"], "No module accuracies yet.")
    blocks += graph_blocks(data, images) + calibration_blocks(data) + curriculum_blocks(data)
    blocks += figure_blocks("Mastery curves", images, ["mastery_curves"], "No mastery gate has run yet.")
    blocks += figure_blocks("Training loss", images, ["training_loss"],
                            "No per-step training losses were recorded (metrics.json has no train_loss).")
    return blocks + benchmark_blocks(data) + usage_blocks(data) + timing_blocks(data), images


# --- rendering ----------------------------------------------------------------------------------
# Written by hand on purpose: five block types, a few lines each in Markdown and HTML. Jinja2 templates
# would need the same per-type dispatch in template syntax plus the escaping (Markdown table cells,
# `code` spans) as filters, so they would be longer; a Markdown library rendering the Markdown would
# drop the inlined images and CSS classes the self-contained HTML needs.

def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(blocks: list[Any]) -> str:
    out = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append("#" * b.level + " " + b.text)
        elif isinstance(b, Para):
            out.append(f"**{b.text}**" if b.css else b.text)
        elif isinstance(b, Bullets):
            out.append("\n".join(f"- {x}" for x in b.items))
        elif isinstance(b, Table):
            lines = ["| " + " | ".join(map(_md_cell, b.headers)) + " |", "|" + "---|" * len(b.headers)]
            lines += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in b.rows]
            out.append("\n".join(lines))
        elif isinstance(b, Image):
            out.append(f"![{b.alt}]({b.path})")
    return "\n\n".join(out) + "\n"


def _inline(text: str) -> str:
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def _html_block(b: Any) -> str:
    if isinstance(b, Heading):
        return f"<h{b.level}>{_inline(b.text)}</h{b.level}>"
    if isinstance(b, Para):
        return f'<p class="{b.css}">{_inline(b.text)}</p>' if b.css else f"<p>{_inline(b.text)}</p>"
    if isinstance(b, Bullets):
        return "<ul>" + "".join(f"<li>{_inline(x)}</li>" for x in b.items) + "</ul>"
    if isinstance(b, Table):
        head = "".join(f"<th>{_inline(h)}</th>" for h in b.headers)
        body = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in b.rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    if isinstance(b, Image):
        data = base64.b64encode(b.png).decode("ascii")
        return f'<figure><img alt="{html.escape(b.alt)}" src="data:image/png;base64,{data}"></figure>'
    raise TypeError(f"unknown report block {type(b).__name__}")


def to_html(blocks: list[Any], title: str) -> str:
    body = "\n".join(_html_block(b) for b in blocks)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{CSS}</style></head>\n<body>\n{body}\n</body></html>\n")


def write_report(run_dir: Path) -> list[Path]:
    """Write DIR/report.md, DIR/report.html and DIR/plots/*.png; return the paths written."""
    data = load_run(Path(run_dir))
    rd = data.rd
    blocks, images = build_blocks(data)
    written = []
    for img in images.values():
        atomic_write_bytes(rd.root / img.path, img.png)
        written.append(rd.root / img.path)
    atomic_write_text(rd.report_md, to_markdown(blocks))
    atomic_write_text(rd.report_html, to_html(blocks, f"IOA run report: {rd.root.name}"))
    return [rd.report_md, rd.report_html] + written
