"""`ioa eval`: the runner with a scripted model (fast), then once on the real default student (slow).

The scripted model stands in for HFStudent.generate so the tests can check exactly what is prompted,
how samples are grouped, what is scored and what lands in results.json and the samples files.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ioa.chat import ChatResult
from ioa.evaluation.benchmarks import get_benchmark
from ioa.evaluation.runner import SKIPPED_NO_JUDGE, EvalOptions, format_table, resolve_model_spec, run_eval
from ioa.io import InputError

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("IOA_DATA_DIR", ROOT.parent / "shared" / "data"))

needs_data = pytest.mark.skipif(not (DATA / "gsm8k" / "test.jsonl").is_file(),
                                reason=f"benchmark data not found at {DATA} (set IOA_DATA_DIR)")


def rows(rel: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / rel).read_text().splitlines() if line.strip()]


class ScriptedModel:
    """generate(prompts, **options) -> reply(prompt) for each prompt; remembers every call."""

    source = "scripted"

    def __init__(self, reply):
        self.reply = reply
        self.calls: list[tuple[list[str], dict]] = []
        self.last_generation = {}

    def generate(self, prompts, **options):
        self.calls.append((list(prompts), options))
        self.last_generation = {"prompts": len(prompts), "new_tokens": 10 * len(prompts), "seconds": 1.0,
                                "tokens_per_s": 10.0}
        return [self.reply(p) for p in prompts]


class FixedJudge:
    model = "fixed-judge"

    def __init__(self):
        self.requests = []

    def complete(self, requests):
        self.requests.extend(requests)
        return [ChatResult(text="Clear and correct. Rating: [[7]]", raw="", model=self.model) if i % 2 == 0
                else ChatResult(text="no rating given", raw="", model=self.model) for i, _ in enumerate(requests)]


def options(tmp_path, benchmarks, **kw) -> EvalOptions:
    return EvalOptions(model="scripted", benchmarks=benchmarks, out=tmp_path / "out", data_dir=DATA,
                       progress=False, **kw)


def samples_file(tmp_path, name) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "out" / f"{name}.samples.jsonl").read_text().splitlines()]


@needs_data
def test_gsm8k_scored_strict_and_flexible_and_written(tmp_path):
    gold = [r["answer"].split("####")[-1].strip() for r in rows("gsm8k/test.jsonl")[:3]]
    replies = {0: f"Step by step...\n#### {gold[0]}", 1: f"So it is {gold[1]}.", 2: "I don't know."}
    question_of = {r["question"]: i for i, r in enumerate(rows("gsm8k/test.jsonl")[:3])}
    model = ScriptedModel(lambda p: replies[question_of[p.split("\n\nSolve the problem")[0]]])
    results = run_eval(options(tmp_path, ["gsm8k"], limit=3), student=model)

    entry = results["benchmarks"]["gsm8k"]
    assert entry["status"] == "ok" and entry["n"] == 3
    assert entry["metrics"] == {"strict_match": pytest.approx(1 / 3), "flexible_extract": pytest.approx(2 / 3)}
    settings = entry["settings"]
    assert settings["limit"] == 3 and settings["seed"] == 0 and settings["model"] == "scripted"
    assert (settings["max_new_tokens"] == 256 and settings["decoding"] == "greedy"
            and "####" in settings["prompt_format"])
    assert json.loads((tmp_path / "out" / "results.json").read_text()) == json.loads(json.dumps(results))
    lines = samples_file(tmp_path, "gsm8k")
    assert [x["id"] for x in lines] == ["gsm8k/0", "gsm8k/1", "gsm8k/2"]
    assert [x["score"] for x in lines] == [1.0, 0.0, 0.0] and lines[1]["samples"][0]["flexible_extract"] is True
    prompts, opts = model.calls[0]
    assert opts["max_new_tokens"] == 256 and opts["chat"] is True and "temperature" not in opts
    assert prompts[0].endswith('in the form "#### <number>".')
    assert "gsm8k" in format_table(results) and "strict_match 0.3333" in format_table(results)


@needs_data
def test_humaneval_chat_answers_and_sampling_for_pass_at_k(tmp_path):
    tasks = {r["prompt"]: r for r in rows("humaneval/HumanEval.jsonl")[:2]}

    def reply(prompt):
        task = tasks[prompt.split("```python\n", 1)[1].rsplit("```", 1)[0]]
        if task["task_id"] == "HumanEval/1":
            return "```python\ndef broken(:\n```"
        return f"Here you go:\n```python\n{task['prompt']}{task['canonical_solution']}```"

    model = ScriptedModel(reply)
    results = run_eval(options(tmp_path, ["humaneval"], limit=2, samples_per_task=3, seed=5), student=model)
    entry = results["benchmarks"]["humaneval"]
    assert entry["metrics"] == {"pass@1": 0.5}  # pass@10 needs >= 10 samples per task
    assert entry["settings"]["decoding"] == {"temperature": 0.8, "top_p": 0.95}
    prompts, opts = model.calls[0]
    assert len(prompts) == 6 and prompts[0] == prompts[1] == prompts[2]  # each prompt N times
    assert opts["temperature"] == 0.8 and opts["top_p"] == 0.95
    lines = samples_file(tmp_path, "humaneval")
    assert len(lines) == 2 and all(len(x["completions"]) == 3 for x in lines)
    assert [s["passed"] for s in lines[0]["samples"]] == [True] * 3 and lines[1]["score"] == 0.0


@needs_data
def test_humaneval_completion_mode_feeds_the_raw_prompt_with_stops(tmp_path):
    solutions = {r["prompt"]: r["canonical_solution"] for r in rows("humaneval/HumanEval.jsonl")[:2]}
    model = ScriptedModel(lambda p: solutions[p])
    results = run_eval(options(tmp_path, ["humaneval"], limit=2, code_prompt="completion"), student=model)
    assert results["benchmarks"]["humaneval"]["metrics"] == {"pass@1": 1.0}
    _, opts = model.calls[0]
    assert opts["chat"] is False and "\ndef " in opts["stop"]


@needs_data
def test_vicuna_skipped_without_judge_and_graded_with_one(tmp_path):
    model = ScriptedModel(lambda p: "A helpful answer.")
    results = run_eval(options(tmp_path, ["vicuna", "dolly"], limit=2), student=model)
    assert results["benchmarks"]["vicuna"]["status"] == SKIPPED_NO_JUDGE == "skipped: no judge configured"
    assert len(model.calls) == 1  # dolly only: nothing generated for a benchmark that cannot be scored
    assert "skipped: no judge configured" in format_table(results)
    assert not (tmp_path / "out" / "vicuna.samples.jsonl").exists()
    assert 0.0 <= results["benchmarks"]["dolly"]["metrics"]["rougeL"] <= 100.0

    judge = FixedJudge()
    results = run_eval(options(tmp_path, ["vicuna"], limit=2), student=model, judge=judge)
    entry = results["benchmarks"]["vicuna"]
    assert entry["metrics"] == {"score": 7.0, "rated": 1.0, "unrated": 1.0}
    first = judge.requests[0]
    assert first.messages[0] == ("system", "You are a helpful assistant.")
    assert "[[rating]]" in first.messages[1][1] and "A helpful answer." in first.messages[1][1]
    assert first.temperature == 0.0 and first.phase == "judge"


class Killed(Exception):
    """Stands for the process dying mid-generation."""


class BatchingModel(ScriptedModel):
    """Like HFStudent.generate: prompts in batches of `size` (here in input order), batches already in
    `done` skipped, each finished batch reported to `on_batch`; dies after `die_after` generated batches."""

    def __init__(self, reply, size=2, die_after=None):
        super().__init__(reply)
        self.size, self.die_after, self.generated = size, die_after, []

    def generate(self, prompts, done=None, on_batch=None, **options):
        self.calls.append((list(prompts), options))
        out, batches = [], 0
        for i in range(0, len(prompts), self.size):
            idx = list(range(i, min(i + self.size, len(prompts))))
            if done and all(j in done for j in idx):
                out += [done[j] for j in idx]
                continue
            if self.die_after is not None and batches == self.die_after:
                raise Killed
            texts = [self.reply(prompts[j]) for j in idx]
            self.generated += [prompts[j] for j in idx]
            if on_batch:
                on_batch(idx, texts)
            out += texts
            batches += 1
        return out


def _numbered_reply(prompt):
    return f"#### {len(prompt) % 97}"


@needs_data
def test_killed_evaluation_resumes_from_its_last_finished_batch(tmp_path):
    reference = run_eval(options(tmp_path / "ref", ["gsm8k"], limit=6), student=BatchingModel(_numbered_reply))
    expected = (tmp_path / "ref" / "out" / "gsm8k.samples.jsonl").read_text()

    with pytest.raises(Killed):
        run_eval(options(tmp_path, ["gsm8k"], limit=6), student=BatchingModel(_numbered_reply, die_after=2))
    partial = tmp_path / "out" / "gsm8k.generations.partial.jsonl"
    assert len(partial.read_text().splitlines()) == 1 + 4  # header + two batches of two
    with partial.open("a") as f:
        f.write('{"i": 4, "compl')  # a write cut short by the kill: ignored, its batch redone

    resumed = BatchingModel(_numbered_reply)
    results = run_eval(options(tmp_path, ["gsm8k"], limit=6), student=resumed)
    prompts = resumed.calls[0][0]
    assert resumed.generated == prompts[4:6]  # only the batch that had not finished
    assert (tmp_path / "out" / "gsm8k.samples.jsonl").read_text() == expected
    assert results["benchmarks"]["gsm8k"]["metrics"] == reference["benchmarks"]["gsm8k"]["metrics"]
    assert not partial.exists()

    again = BatchingModel(_numbered_reply)
    assert run_eval(options(tmp_path, ["gsm8k"], limit=6), student=again) == json.loads(json.dumps(results))
    assert again.calls == []  # already scored with the same settings: kept
    fresh = BatchingModel(_numbered_reply)
    run_eval(options(tmp_path, ["gsm8k"], limit=6, resume=False), student=fresh)
    assert len(fresh.generated) == 6


@needs_data
def test_checkpoint_from_other_settings_is_set_aside(tmp_path):
    with pytest.raises(Killed):
        run_eval(options(tmp_path, ["gsm8k"], limit=6, max_new_tokens=100),
                 student=BatchingModel(_numbered_reply, die_after=1))
    model = BatchingModel(_numbered_reply)
    results = run_eval(options(tmp_path, ["gsm8k"], limit=6, max_new_tokens=200), student=model)
    assert len(model.generated) == 6 and results["benchmarks"]["gsm8k"]["settings"]["max_new_tokens"] == 200
    assert (tmp_path / "out" / "gsm8k.generations.partial.jsonl.stale").exists()
    changed = BatchingModel(_numbered_reply)
    run_eval(options(tmp_path, ["gsm8k"], limit=5, max_new_tokens=200), student=changed)
    assert len(changed.generated) == 5  # another --limit is another run: not kept


def test_data_is_checked_before_any_model_loads(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    opts = EvalOptions(model="does-not-matter", benchmarks=["vicuna"], out=tmp_path / "o", data_dir=empty)
    with pytest.raises(InputError, match="vicuna: no local file"):
        run_eval(opts, judge=FixedJudge())  # would raise StudentLoadError if it tried to load the model
    with pytest.raises(InputError, match="unknown benchmark 'nope'"):
        run_eval(EvalOptions(model="x", benchmarks=["gsm8k", "nope"], out=tmp_path / "o"))
    with pytest.raises(InputError):
        get_benchmark("")


def test_run_directory_means_its_model_folder(tmp_path):
    (tmp_path / "run" / "model").mkdir(parents=True)
    (tmp_path / "run" / "model" / "config.json").write_text("{}")
    assert resolve_model_spec(str(tmp_path / "run")) == str(tmp_path / "run" / "model")
    assert resolve_model_spec(str(tmp_path / "run" / "model")) == str(tmp_path / "run" / "model")
    assert resolve_model_spec("HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_cli_rejects_unknown_benchmark_in_one_line():
    proc = subprocess.run([sys.executable, "-m", "ioa.cli", "eval", "--benchmarks", "gsm8k,bogus"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and "unknown benchmark 'bogus'" in proc.stderr


@pytest.mark.slow
@needs_data
def test_eval_real_default_student(tmp_path):
    out = tmp_path / "eval"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    # One torch thread: on a busy 2-core machine two threads wait on each other (measured ~10x slower).
    env.setdefault("OMP_NUM_THREADS", "1")
    cmd = [sys.executable, "-m", "ioa.cli", "eval", "--model", "smollm2-135m",
           "--benchmarks", "gsm8k,humaneval,dolly,vicuna", "--limit", "4", "--max-new-tokens", "48",
           "--batch-size", "4", "--data-dir", str(DATA), "--out", str(out),
           "--cache-dir", str(ROOT / "runs" / ".cache"), "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    benches = results["benchmarks"]
    assert list(benches) == ["gsm8k", "humaneval", "dolly", "vicuna"]
    assert benches["vicuna"]["status"] == "skipped: no judge configured"
    for name in ("gsm8k", "humaneval", "dolly"):
        entry = benches[name]
        assert entry["status"] == "ok" and entry["n"] == 4
        assert entry["settings"]["max_new_tokens"] == 48 and entry["settings"]["model"] == "smollm2-135m"
        assert entry["generation"]["new_tokens"] > 0
        lines = [json.loads(x) for x in (out / f"{name}.samples.jsonl").read_text().splitlines()]
        assert len(lines) == 4 and all(len(x["completions"]) == 1 and x["completions"][0] for x in lines)
    assert set(benches["gsm8k"]["metrics"]) == {"strict_match", "flexible_extract"}
    assert set(benches["humaneval"]["metrics"]) == {"pass@1"}
    assert 0.0 <= benches["dolly"]["metrics"]["rougeL"] <= 100.0
    assert "skipped: no judge configured" in proc.stdout and "humaneval" in proc.stdout


@pytest.mark.slow
@needs_data
def test_real_eval_killed_with_sigkill_resumes_to_the_uninterrupted_outputs(tmp_path):
    """The real student, batch size 2: a SIGKILL after four finished completions, then the same command again.
    In fp32 the resumed completions equal an uninterrupted run's exactly (continuous batching gives the rest
    other neighbours; in bf16 that alone can change a greedy token)."""
    import signal
    import time

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}

    def cmd(out):
        return [sys.executable, "-m", "ioa.cli", "eval", "--model", "smollm2-135m", "--benchmarks", "gsm8k",
                "--limit", "8", "--max-new-tokens", "32", "--batch-size", "2", "--precision", "fp32",
                "--data-dir", str(DATA), "--out", str(out), "--cache-dir", str(ROOT / "runs" / ".cache"),
                "--no-progress"]

    def completions(out):
        return [json.loads(x)["completions"] for x in (out / "gsm8k.samples.jsonl").read_text().splitlines()]

    whole = subprocess.run(cmd(tmp_path / "whole"), capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert whole.returncode == 0, whole.stderr[-3000:]

    out = tmp_path / "killed"
    partial = out / "gsm8k.generations.partial.jsonl"
    proc = subprocess.Popen(cmd(out), cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while not (partial.exists() and len(partial.read_text().splitlines()) >= 1 + 4):
        assert proc.poll() is None and time.monotonic() < deadline, "finished or stuck before four completions"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    recorded = len(partial.read_text().splitlines()) - 1
    assert 4 <= recorded < 8 and not (out / "gsm8k.samples.jsonl").exists()

    again = subprocess.run(cmd(out), capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"resuming; {recorded} of 8 completions" in again.stderr
    assert completions(out) == completions(tmp_path / "whole")
    generated = json.loads((out / "results.json").read_text())["benchmarks"]["gsm8k"]["generation"]
    assert generated["reused"] == recorded and generated["prompts"] == 8 - recorded
