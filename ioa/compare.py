"""`ioa compare RUN_DIR ...`: the paper-style comparison of methods from finished run directories.

Runs are grouped by method (config.yaml); each method's row is mean +- std over its runs (seeds) of:
per-module accuracy on the held-out items, the mean over deficient modules, the mean over all modules,
benchmark scores when the runs have them, and the budget actually used. "Deficient" is the
Identifier's rule (gap > tau_gap) applied to each run's own pre-training diagnosis, for every method
alike, so the ablation that teaches every module is still scored on the modules that needed it.
Runs of one seed share their probes and held-out items, so each method is also compared with `ioa`
seed by seed (paired differences and win/tie/loss counts): with a few seeds and a dozen items per
module, that is what tells a difference from noise.
Writes compare.json, compare.md, compare.html and plots/ (accuracy bars, accuracy against examples).
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import yaml

from ioa.config import METHODS
from ioa.io import InputError, atomic_write_bytes, atomic_write_json, atomic_write_text, read_json, read_jsonl
from ioa.lock import acquire
from ioa.records import FinalEval, RunSummary
from ioa.report import Heading, Image, Para, Table, to_html, to_markdown
from ioa.rundir import RunDir
from ioa.stats import paired_bootstrap


@dataclass
class RunResult:
    root: Path
    method: str
    seed: int
    after: dict[str, float]
    before: dict[str, float]
    deficient: list[str]
    budget: dict[str, int]
    curve: list[dict[str, Any]]
    benchmarks: dict[str, float] = field(default_factory=dict)
    items_per_module: float | None = None  # held-out items each module was scored on
    items: dict[str, dict[str, bool]] = field(default_factory=dict)  # module -> item id -> correct (final evaluation)
    bleed_after: float | None = None  # mean share of final answers written in another module's layout
    completion_tokens: float | None = None  # mean adapted completion length of the new examples (≈ tokens)


def load_result(root: Path) -> RunResult:
    rd = RunDir(Path(root))
    root = rd.root
    if not rd.summary.exists():
        hint = (f"an unfinished run: `ioa resume {root}` finishes it" if rd.config.exists()
                else "not a run directory: give the folders `ioa run` wrote (each has config.yaml)")
        raise InputError(f"{root}: no summary.json ({hint})")
    summary = RunSummary.from_dict(read_json(rd.summary))
    cfg = yaml.safe_load(rd.config.read_text()) or {} if rd.config.exists() else {}
    # runs summarized before the summary carried a field: the config's
    tau_gap = summary.tau_gap if summary.tau_gap is not None else (cfg.get("identifier") or {}).get("tau_gap", 0.3)
    diagnosis = read_json(rd.diagnosis)
    deficient = [m["id"] for m in diagnosis["modules"] if m.get("gap") is not None and m["gap"] > tau_gap + 1e-9]
    modules = summary.modules
    return RunResult(
        root=root, method=cfg.get("label") or summary.method or cfg.get("method", "ioa"),
        seed=int(summary.seed if summary.seed is not None else cfg.get("seed", 0)),
        after={m["id"]: m["p_student_after"] for m in modules if m["p_student_after"] is not None},
        before={m["id"]: m["p_student_before"] for m in modules},
        deficient=deficient, budget=budget_used(rd, summary), curve=summary.curve or [],
        benchmarks=flat_benchmarks(summary.benchmarks or {}),
        items_per_module=items_per_module(rd),
        items=final_items(rd),
        bleed_after=(summary.layout_bleed or {}).get("mean_after"),
        completion_tokens=mean_completion(summary.completion_tokens or {}),
    )


def mean_completion(lengths: dict[str, dict[str, float]]) -> float | None:
    n = sum(v["examples"] for v in lengths.values())
    return sum(v["adapted"] * v["examples"] for v in lengths.values()) / n if n else None


def budget_used(rd: RunDir, summary: RunSummary) -> dict[str, int]:
    """The summary's budget, with trained tokens read from the rounds' metrics for runs summarized before
    the summary carried them."""
    used = dict((summary.budget or {}).get("used", {}))
    if "trained_tokens" not in used:
        from ioa.methods.budget import spent

        used["trained_tokens"] = spent(rd).trained_tokens
    return used


def final_items(rd: RunDir) -> dict[str, dict[str, bool]]:
    """module -> item id -> correct, from final_eval.json (empty when the run has none)."""
    out: dict[str, dict[str, bool]] = {}
    for it in FinalEval.from_dict(read_json(rd.final_eval)).items if rd.final_eval.exists() else []:
        out.setdefault(it["module"], {})[it["id"]] = bool(it["correct"])
    return out


def items_per_module(rd: RunDir) -> float | None:
    """Mean held-out items per module (test_items.jsonl, else the probes the accuracy was read on)."""
    for path in (rd.test_items, rd.probes):
        if path.exists():
            counts = Counter(row.get("module", "") for row in read_jsonl(path))
            return sum(counts.values()) / len(counts) if counts else None
    return None


def flat_benchmarks(bench: dict[str, Any]) -> dict[str, float]:
    """{"after": {"gsm8k": {"strict": 0.1, ...}}} -> {"gsm8k strict": 0.1, ...} (scores after training)."""
    after = bench.get("after", bench)
    out = {}
    for name, metrics in after.items():
        if isinstance(metrics, dict):
            for k, v in metrics.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "n":
                    out[f"{name} {k}"] = float(v)
    return out


def mean_std(xs: Sequence[float]) -> tuple[float | None, float | None]:
    xs = [x for x in xs if x is not None]
    if not xs:
        return None, None
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else None  # one run: no spread
    return m, sd


def _mean(xs: Sequence[float]) -> float | None:
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def run_scores(r: RunResult) -> dict[str, float | None]:
    return {
        "deficient_before": _mean([r.before.get(m) for m in r.deficient]),
        "deficient_after": _mean([r.after.get(m) for m in r.deficient]),
        "all_before": _mean(list(r.before.values())),
        "all_after": _mean(list(r.after.values())),
        # what the student already knew (the other modules): kept, or forgotten while being taught
        "known_before": _mean([v for m, v in r.before.items() if m not in r.deficient]),
        "known_after": _mean([v for m, v in r.after.items() if m not in r.deficient]),
    }


def method_order(methods: Sequence[str]) -> list[str]:
    known = [m for m in METHODS if m in methods]
    return known + sorted(m for m in methods if m not in known)


def compare(results: Sequence[RunResult]) -> dict[str, Any]:
    """Per method: n runs, seeds, mean/std of each score, per-module accuracy and budget used."""
    by_method: dict[str, list[RunResult]] = {}
    for r in results:
        by_method.setdefault(r.method, []).append(r)
    modules = sorted({m for r in results for m in r.after})
    bench_keys = sorted({k for r in results for k in r.benchmarks})
    rows = []
    for method in method_order(list(by_method)):
        runs = sorted(by_method[method], key=lambda r: r.seed)
        scores = [run_scores(r) for r in runs]
        row: dict[str, Any] = {"method": method, "n": len(runs), "seeds": [r.seed for r in runs],
                               "runs": [str(r.root) for r in runs]}
        for key in ("deficient_before", "deficient_after", "known_before", "known_after", "all_before", "all_after"):
            row[key] = mean_std([s[key] for s in scores])
        row["modules"] = {m: mean_std([r.after.get(m) for r in runs]) for m in modules}
        row["benchmarks"] = {k: mean_std([r.benchmarks.get(k) for r in runs]) for k in bench_keys}
        kinds = ("examples", "steps", "trained_tokens", "teacher_calls", "teacher_tokens")
        row["budget"] = {k: mean_std([r.budget.get(k) for r in runs]) for k in kinds}
        row["bleed_after"] = mean_std([r.bleed_after for r in runs])
        row["completion_tokens"] = mean_std([r.completion_tokens for r in runs])
        row["curves"] = [r.curve for r in runs]
        rows.append(row)
    items = [r.items_per_module for r in results if r.items_per_module]
    return {"methods": rows, "modules": modules, "benchmarks": bench_keys,
            "paired": paired(results, "ioa"), "paired_vs_vanilla": paired(results, "vanilla"),
            "items_per_module": min(items) if items else None}


GROUPS = ("deficient", "known", "all")


def group_modules(r: RunResult, group: str) -> list[str]:
    if group == "deficient":
        return [m for m in r.deficient if m in r.after]
    if group == "known":
        return [m for m in r.after if m not in r.deficient]
    return list(r.after)


def seed_pairs(mine: RunResult, ref: RunResult, group: str) -> dict[str, tuple[list[bool], list[bool]]]:
    """The group's modules (by the reference run's diagnosis) -> both runs' correctness on the items both scored."""
    out = {}
    for m in group_modules(ref, group):
        a, b = mine.items.get(m, {}), ref.items.get(m, {})
        shared = sorted(set(a) & set(b))
        if shared:
            out[m] = ([a[i] for i in shared], [b[i] for i in shared])
    return out


def paired(results: Sequence[RunResult], reference: str) -> list[dict[str, Any]]:
    """Each other method against `reference` on the seeds both ran: mean +- std of the per-seed
    differences (method - reference), how often the method was ahead, level or behind, and per group
    (deficient, known, all) the paired difference with a 95% bootstrap interval over seeds and items."""
    refs = {r.seed: r for r in results if r.method == reference}
    ref = {seed: run_scores(r) for seed, r in refs.items()}
    methods = method_order(sorted({r.method for r in results} - {reference}))
    out = []
    for method in methods:
        diffs: dict[str, list[float]] = {"deficient_after": [], "known_after": [], "all_after": []}
        for r in sorted((r for r in results if r.method == method and r.seed in ref), key=lambda r: r.seed):
            mine = run_scores(r)
            for key in diffs:
                if mine[key] is not None and ref[r.seed][key] is not None:
                    diffs[key].append(mine[key] - ref[r.seed][key])
        if not diffs["all_after"]:
            continue
        d = diffs["deficient_after"]
        pairs = [(r, refs[r.seed]) for r in results if r.method == method and r.seed in refs]
        intervals = {}
        for group in GROUPS:
            ci = paired_bootstrap([seed_pairs(a, b, group) for a, b in pairs])
            intervals[group] = ci.to_dict() if ci else None
        out.append({"method": method, "reference": reference, "seeds": len(diffs["all_after"]),
                    **{f"delta_{k}": mean_std(v) for k, v in diffs.items()}, "ci": intervals,
                    "ahead": sum(x > 1e-9 for x in d), "level": sum(abs(x) <= 1e-9 for x in d),
                    "behind": sum(x < -1e-9 for x in d)})
    return out


def fmt(ms: tuple[float | None, float | None], scale: float = 100.0, digits: int = 1) -> str:
    m, sd = ms
    if m is None:
        return "—"
    return f"{m * scale:.{digits}f}" if sd is None else f"{m * scale:.{digits}f} ± {sd * scale:.{digits}f}"


def fmt_count(ms: tuple[float | None, float | None]) -> str:
    m, sd = ms
    if m is None:
        return "—"
    return f"{m:.0f}" if not sd else f"{m:.0f} ± {sd:.0f}"


def fmt_ci(ci: dict[str, Any] | None) -> str:
    if not ci:
        return "—"
    return f"{ci['mean'] * 100:+.1f} [{ci['low'] * 100:+.1f}, {ci['high'] * 100:+.1f}] {ci['verdict']}"


def paired_blocks(pairs: list[dict[str, Any]]) -> list[Any]:
    ref = pairs[0]["reference"]
    return [
        Heading(2, f"Paired against {ref} (same seed: same probes and held-out items)"),
        Para(f"Differences in points, method − {ref}: the mean over shared seeds with its 95% bootstrap interval "
             "(seeds and, within each seed, items resampled; the same items for both methods). \"within noise\": "
             "the interval crosses 0, so this comparison cannot tell the two apart. Ahead / level / behind counts "
             "the seeds on the deficient-module mean."),
        Table(("method", "seeds", "Δ deficient [95% CI]", "Δ known [95% CI]", "Δ all [95% CI]",
               "ahead / level / behind"), tuple(
            (p["method"], str(p["seeds"]), *(fmt_ci((p.get("ci") or {}).get(g)) for g in GROUPS),
             f"{p['ahead']} / {p['level']} / {p['behind']}") for p in pairs)),
    ]


def blocks(table: dict[str, Any], images: dict[str, Image]) -> list[Any]:
    rows = table["methods"]
    out: list[Any] = [Heading(1, "Comparison of methods"),
                      Para("Accuracy in % on held-out items (mean ± std over seeds). Deficient: modules with gap > "
                           "tau_gap in each run's own pre-training diagnosis; known: the other modules (what the "
                           "student already knew: kept or forgotten). Budget: what each method actually used.")]
    headers = ("method", "runs", "deficient before", "deficient after", "known before", "known after", "all before",
               "all after", "examples", "steps", "trained tokens", "teacher calls", "teacher tokens",
               "completion ≈tokens", "layout bleed after") + tuple(table["benchmarks"])
    body = []
    for r in rows:
        body.append((r["method"], str(r["n"]), fmt(r["deficient_before"]), fmt(r["deficient_after"]),
                     fmt(r["known_before"]), fmt(r["known_after"]), fmt(r["all_before"]),
                     fmt(r["all_after"]), fmt_count(r["budget"]["examples"]), fmt_count(r["budget"]["steps"]),
                     fmt_count(r["budget"]["trained_tokens"]), fmt_count(r["budget"]["teacher_calls"]),
                     fmt_count(r["budget"]["teacher_tokens"]),
                     fmt_count(r.get("completion_tokens", (None, None))), fmt(r.get("bleed_after", (None, None))))
                    + tuple(fmt(r["benchmarks"][k]) for k in table["benchmarks"]))
    out.append(Table(headers, tuple(body)))
    if table.get("items_per_module"):
        n = table["items_per_module"]
        out.append(Para(f"Each run scores about {n:.0f} held-out items per module: one item is {100 / n:.1f} points "
                        "of a module's accuracy."))
    for key in ("paired", "paired_vs_vanilla"):
        if table.get(key):
            out += paired_blocks(table[key])
    out.append(Heading(2, "Per module (accuracy after, %)"))
    out.append(Table(("method",) + tuple(table["modules"]),
                     tuple((r["method"],) + tuple(fmt(r["modules"][m]) for m in table["modules"]) for r in rows)))
    for key in ("accuracy", "sample_efficiency"):
        if key in images:
            out.append(images[key])
    return out


def write_comparison(run_dirs: Sequence[Path], out: Path) -> list[Path]:
    from ioa.compare_plots import accuracy_bars, sample_efficiency
    from ioa.report_plots import png_bytes

    if not run_dirs:
        raise InputError("ioa compare: give at least one run directory")
    table = compare([load_result(Path(d)) for d in run_dirs])
    images = {}
    for key, fig in (("accuracy", accuracy_bars(table["methods"])),
                     ("sample_efficiency", sample_efficiency(table["methods"]))):
        if fig is not None:
            images[key] = Image(f"plots/{key}.png", key.replace("_", " "), png_bytes(fig))
    acquire(out)  # one writer per output folder; creates it
    for img in images.values():
        atomic_write_bytes(out / img.path, img.png)
    content = blocks(table, images)
    atomic_write_json(out / "compare.json", table)
    atomic_write_text(out / "compare.md", to_markdown(content))
    atomic_write_text(out / "compare.html", to_html(content, "IOA: comparison of methods"))
    return [out / "compare.md", out / "compare.html", out / "compare.json"] + [out / i.path for i in images.values()]
