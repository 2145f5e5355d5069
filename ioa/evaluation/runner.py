"""Running benchmarks: `run_eval` generates with a Hugging Face model and scores; `score_samples` scores a
file of pre-generated samples. Both write per-sample records for inspection and return the metrics.

`ioa eval` writes OUT/results.json (per benchmark: status, n, metrics, settings, generation speed) and
OUT/<benchmark>.samples.jsonl (one line per item: prompt, gold, every completion and its score). It
resumes: a benchmark already scored in OUT with the same settings is kept, and one that was being
generated when the process died continues from OUT/<benchmark>.generations.partial.jsonl (every finished
batch is appended there; see checkpoint.py). `--fresh` starts over.
`ioa score` reads JSONL samples, one line per sample: an id (`task_id`, `id`, `unique_id`,
`question_id` or `idx`) or the question text (`question`, `problem`, `prompt` or `instruction`), and
the model output in the first present of `completion`, `response`, `output`, `answer`.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ioa.evaluation.benchmarks import Benchmark, CodeBenchmark, Item, get_benchmark
from ioa.evaluation.checkpoint import GenerationCheckpoint, fingerprint
from ioa.evaluation.data import load_rows
from ioa.io import InputError, atomic_write_json, atomic_write_jsonl, iter_jsonl, read_json
from ioa.paths import user_cache_dir
from ioa.rundir import RunDir, eval_results
from ioa.students.base import ReportsGeneration, ReportsPrecision, ReportsSource

__all__ = [
    "EvalOptions", "run_eval", "score_samples", "format_table", "resolve_model_spec", "load_model",
    "LocalChatBackend", "OUTPUT_FIELDS", "ID_FIELDS", "TEXT_FIELDS", "SKIPPED_NO_JUDGE",
]

OUTPUT_FIELDS = ("completion", "response", "output", "answer")
ID_FIELDS = ("task_id", "id", "unique_id", "question_id", "idx")
TEXT_FIELDS = ("question", "problem", "prompt", "instruction")
SKIPPED_NO_JUDGE = "skipped: no judge configured"


@dataclass
class EvalOptions:
    model: str
    benchmarks: Sequence[str]
    out: Path
    data_dir: Path | None = None
    limit: int | None = None
    samples_per_task: int = 1
    max_new_tokens: int | None = None  # None: each benchmark's own default
    batch_size: int = 16
    seed: int = 0
    temperature: float = 0.8  # only when samples_per_task > 1
    top_p: float = 0.95
    code_prompt: str = "chat"
    cache_dir: Path = field(default_factory=user_cache_dir)
    device: str = "auto"
    precision: str = "auto"  # auto: bf16 where the hardware has it (greedy outputs can then change with batch size)
    decode: str = "continuous"  # greedy decoding: continuous batching, or transformers' generate in fixed batches
    progress: bool = True
    resume: bool = True  # keep what an earlier call with the same settings left in `out`


def resolve_model_spec(spec: str) -> str:
    """A run directory (or anything holding a `model/` folder with a config.json) means that folder."""
    path = Path(spec).expanduser()
    model = RunDir(path).model
    if path.is_dir() and not (path / "config.json").is_file() and (model / "config.json").is_file():
        return str(model)
    return spec


def load_model(spec: str, cache_dir: Path, *, batch_size: int = 16, max_new_tokens: int = 512,
               device: str = "auto", precision: str = "auto", progress: bool = True, name: str = "student",
               decode: str = "continuous"):
    from ioa.config import StudentConfig
    from ioa.students.hf import HFStudent

    cfg = StudentConfig(model=resolve_model_spec(spec), gen_batch_size=batch_size,
                        max_new_tokens=max_new_tokens, device=device, precision=precision, decode=decode)
    return HFStudent(cfg, cache_dir, name=name, progress=progress)


class LocalChatBackend:
    """A `ChatBackend` over a local Hugging Face model (an `HFStudent`): an LLM judge without an endpoint."""

    def __init__(self, student):
        self.student = student
        self.model = str(student.source)

    def _render(self, messages: list[dict[str, str]]) -> str:
        tok = self.student.tokenizer
        text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        # generate(chat=False) lets the tokenizer add its special tokens; do not send a BOS twice.
        bos = tok.bos_token
        if bos and text.startswith(bos) and tok("x")["input_ids"][:1] == [tok.bos_token_id]:
            text = text[len(bos):]
        return text

    def complete(self, requests):
        from ioa.chat import ChatResult
        from ioa.grading import strip_think

        if not requests:
            return []
        texts = [self._render(r.message_dicts()) for r in requests]
        outs = self.student.generate(texts, chat=False, answer_line_stop=False,
                                     max_new_tokens=max(r.max_tokens for r in requests))
        return [ChatResult(text=strip_think(o).strip(), raw=o, model=self.model) for o in outs]


# ---- ioa eval ------------------------------------------------------------------------------------

def _benchmarks(names: Sequence[str]) -> list[Benchmark]:
    out: list[Benchmark] = []
    for name in names:
        if not name.strip():
            continue
        bench = get_benchmark(name)
        if bench not in out:
            out.append(bench)
    if not out:
        raise InputError("no benchmarks named (e.g. --benchmarks gsm8k,humaneval)")
    return out


def _mode(bench: Benchmark, code_prompt: str) -> str:
    return code_prompt if isinstance(bench, CodeBenchmark) else "chat"


def run_eval(opts: EvalOptions, *, judge=None, student=None,
             log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Generate and score every benchmark in `opts`; writes results.json and the samples files.

    Data and arguments are checked before the model loads. A benchmark that needs a judge is reported
    as skipped when `judge` is None. `student` (an already loaded HFStudent) skips loading the model.
    """
    log = log or (lambda msg: print(msg, file=sys.stderr))
    if opts.samples_per_task < 1:
        raise InputError(f"--samples-per-task must be >= 1, got {opts.samples_per_task}")
    if opts.limit is not None and opts.limit < 1:
        raise InputError(f"--limit must be >= 1, got {opts.limit}")
    benches = _benchmarks(opts.benchmarks)
    work: list[tuple[Benchmark, list[Item], str]] = []
    for bench in benches:
        if bench.needs_judge and judge is None:
            work.append((bench, [], ""))
            continue
        rows, origin = load_rows(bench.name, bench.source, opts.data_dir)
        items = bench.items(rows)[: opts.limit]
        if not items:
            raise InputError(f"{bench.name}: {origin} holds no items")
        work.append((bench, items, origin))

    if student is None and any(items for _, items, _ in work):
        student = load_model(opts.model, opts.cache_dir, batch_size=opts.batch_size, device=opts.device,
                             precision=opts.precision, progress=opts.progress, decode=opts.decode)
    source = str(student.source) if isinstance(student, ReportsSource) else opts.model
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"model": opts.model, "model_source": source, "benchmarks": {}}
    earlier = _earlier_results(out) if opts.resume else {}
    for bench, items, origin in work:
        mode = _mode(bench, opts.code_prompt)
        settings = _settings(bench, opts, mode, source, student)
        if not items:
            results["benchmarks"][bench.name] = {"status": SKIPPED_NO_JUDGE, "n": 0, "metrics": {},
                                                 "settings": settings}
            log(f"{bench.name}: {SKIPPED_NO_JUDGE}")
            continue
        settings["data"] = origin
        kept = earlier.get(bench.name)
        if _same_run(kept, settings, out):
            results["benchmarks"][bench.name] = kept
            log(f"{bench.name}: already scored in {out} with these settings; kept (--fresh to redo)")
            continue
        log(f"{bench.name}: {len(items)} items x {opts.samples_per_task} samples from {origin}")
        entry = _run_one(bench, items, mode, opts, settings, student, judge, out, log)
        results["benchmarks"][bench.name] = entry
        atomic_write_json(eval_results(out), results)  # partial results survive a crash mid-run
    atomic_write_json(eval_results(out), results)
    return results


def _earlier_results(out: Path) -> dict[str, Any]:
    path = eval_results(out)
    if not path.exists():
        return {}
    try:
        return dict(read_json(path).get("benchmarks", {}))
    except (InputError, AttributeError):
        return {}


def _same_run(entry: dict[str, Any] | None, settings: dict[str, Any], out: Path) -> bool:
    if not entry or entry.get("status") != "ok" or not (out / str(entry.get("samples_file", ""))).is_file():
        return False
    return entry.get("settings") == settings


def _settings(bench: Benchmark, opts: EvalOptions, mode: str, source: str, student=None) -> dict[str, Any]:
    sampled = opts.samples_per_task > 1
    return {
        "prompt_format": bench.prompt_format(mode),
        "max_new_tokens": opts.max_new_tokens or bench.max_new_tokens,
        "limit": opts.limit,
        "seed": opts.seed,
        "model": opts.model,
        "model_source": source,
        "samples_per_task": opts.samples_per_task,
        "batch_size": opts.batch_size,
        "precision": student.precision if isinstance(student, ReportsPrecision) else opts.precision,
        "decoding": {"temperature": opts.temperature, "top_p": opts.top_p} if sampled else "greedy",
        "decode": "generate" if sampled else opts.decode,  # how the batches are formed (sampling: generate)
    }


def _run_one(bench, items, mode, opts, settings, student, judge, out: Path, log) -> dict[str, Any]:
    import torch

    n = opts.samples_per_task
    prompts = [bench.prompt(item, mode) for item in items]
    flat_prompts = [p for p in prompts for _ in range(n)]
    checkpoint = GenerationCheckpoint(out / f"{bench.name}.generations.partial.jsonl",
                                      fingerprint({"settings": settings, "prompts": flat_prompts}),
                                      len(flat_prompts), log)
    if not opts.resume:
        checkpoint.remove()
    done = checkpoint.load()
    if done:
        log(f"{bench.name}: resuming; {len(done)} of {len(flat_prompts)} completions were generated before")
    torch.manual_seed(opts.seed)
    sampling = {"temperature": opts.temperature, "top_p": opts.top_p, "seed": opts.seed} if n > 1 else {}
    flat = student.generate(flat_prompts, max_new_tokens=settings["max_new_tokens"], done=done,
                            on_batch=checkpoint.append, **sampling, **bench.generation(mode))
    generation = dict(student.last_generation or {}) if isinstance(student, ReportsGeneration) else {}
    completions = [flat[i * n : (i + 1) * n] for i in range(len(items))]
    start = time.perf_counter()
    scored = bench.score(items, completions, judge=judge, progress=opts.progress, mode=mode)
    scoring_s = time.perf_counter() - start
    rows = []
    for item, prompt, outs, record in zip(items, prompts, completions, scored.records, strict=True):
        row = {"id": item.id, "prompt": prompt}
        if item.gold is not None:
            row["gold"] = item.gold
        row.update({"completions": outs, "samples": record["samples"], "score": record["score"]})
        rows.append(row)
    samples_file = out / f"{bench.name}.samples.jsonl"
    atomic_write_jsonl(samples_file, rows)
    checkpoint.remove()
    entry = {"status": "ok", "n": len(items), "metrics": scored.metrics, "settings": settings,
             "samples_file": samples_file.name, "generation": generation, "scoring_seconds": round(scoring_s, 3)}
    if scored.notes:
        entry["notes"] = scored.notes
    return entry


def format_table(results: dict[str, Any]) -> str:
    """A plain-text table: benchmark, n, then its metrics (or its skip status)."""
    lines = [f"{'benchmark':<12} {'n':>5}  metrics", f"{'-' * 12} {'-' * 5}  {'-' * 40}"]
    for name, entry in results["benchmarks"].items():
        if entry.get("status") != "ok":
            lines.append(f"{name:<12} {'-':>5}  {entry.get('status')}")
            continue
        metrics = "  ".join(f"{k} {_fmt(v)}" for k, v in entry["metrics"].items())
        lines.append(f"{name:<12} {entry['n']:>5}  {metrics}")
    return "\n".join(lines)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.2f}" if abs(v) >= 10 else f"{v:.4f}"
    return str(v)


# ---- ioa score -----------------------------------------------------------------------------------

def _norm_text(text: str) -> str:
    return " ".join(str(text).split())


def _item_index(bench: Benchmark, items: list[Item]) -> tuple[dict[str, Item], dict[str, Item | None]]:
    by_id: dict[str, Item] = {}
    by_text: dict[str, Item | None] = {}
    for i, item in enumerate(items):
        keys = {item.id}
        if item.id == f"{bench.name}/{i}":
            keys.add(str(i))  # gsm8k and dolly have no ids in the data: the line index is one
        if bench.name == "mbpp":
            keys.add(f"Mbpp/{item.id}")  # EvalPlus spelling
        for key in keys:
            by_id[key] = item
        text = _norm_text(item.text)
        by_text[text] = None if text in by_text else item  # None: several items share the text
    return by_id, by_text


def _match(path: Path, lineno: int, obj: dict[str, Any], bench: Benchmark, by_id, by_text) -> Item:
    for key in ID_FIELDS:
        if key in obj and obj[key] is not None:
            value = str(obj[key]).strip()
            if value in by_id:
                return by_id[value]
            raise InputError(f"{path}: line {lineno}: {key} {obj[key]!r} is not a {bench.name} item")
    for key in TEXT_FIELDS:
        if isinstance(obj.get(key), str):
            text = _norm_text(obj[key])
            if text not in by_text:
                raise InputError(f"{path}: line {lineno}: field {key!r} matches no {bench.name} item")
            if by_text[text] is None:
                raise InputError(f"{path}: line {lineno}: field {key!r} matches several {bench.name} items; give an id")
            return by_text[text]  # type: ignore[return-value]
    raise InputError(f"{path}: line {lineno}: no item id ({', '.join(ID_FIELDS)}) or question text "
                     f"({', '.join(TEXT_FIELDS)})")


def _output(path: Path, lineno: int, obj: dict[str, Any]) -> str:
    for key in OUTPUT_FIELDS:
        if key in obj:
            if not isinstance(obj[key], str):
                raise InputError(f"{path}: line {lineno}: field {key!r} must be a string, "
                                 f"got {type(obj[key]).__name__}")
            return obj[key]
    raise InputError(f"{path}: line {lineno}: no model output (one of {', '.join(OUTPUT_FIELDS)})")


def default_results_path(samples: Path) -> Path:
    return samples.with_name(f"{samples.stem}_results.jsonl")


def score_samples(benchmark: str, samples: Path, *, data_dir: Path | None = None, out: Path | None = None,
                  judge=None, progress: bool = False) -> dict[str, Any]:
    """Score a JSONL file of pre-generated samples; writes one result line per sample to `out` and
    returns the summary {"benchmark", "n" (items), "samples", metrics...}."""
    bench = get_benchmark(benchmark)
    samples = Path(samples)
    lines = list(iter_jsonl(samples))  # a malformed line fails here, before the data is loaded
    if not lines:
        raise InputError(f"{samples}: no samples")
    if bench.needs_judge and judge is None:
        raise InputError(f"{bench.name}: scoring needs an LLM judge (--judge-model)")
    rows, _ = load_rows(bench.name, bench.source, data_dir)
    by_id, by_text = _item_index(bench, bench.scoring_items(rows))
    order: list[Item] = []
    grouped: dict[str, list[str]] = {}
    placed: list[tuple[dict[str, Any], str, int]] = []  # (line, item id, sample index within the item)
    for lineno, obj in lines:
        item = _match(samples, lineno, obj, bench, by_id, by_text)
        text = _output(samples, lineno, obj)
        if item.id not in grouped:
            grouped[item.id] = []
            order.append(item)
        placed.append((obj, item.id, len(grouped[item.id])))
        grouped[item.id].append(text)
    scored = bench.score(order, [grouped[i.id] for i in order], judge=judge, progress=progress, mode="completion")
    per_item = {item.id: record for item, record in zip(order, scored.records)}
    results = []
    for obj, item_id, j in placed:
        row = dict(obj)
        row["item_id"] = item_id
        row.update(per_item[item_id]["samples"][j])
        results.append(row)
    atomic_write_jsonl(out or default_results_path(samples), results)
    return {"benchmark": bench.name, "n": len(order), "samples": len(placed), **scored.metrics}


def summary_line(summary: dict[str, Any]) -> str:
    return json.dumps(summary)
