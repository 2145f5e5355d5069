"""`ioa score` end to end, as a subprocess (`python -m ioa.cli score ...`), on the real
benchmark files: reference solutions score perfectly, known-broken samples score exactly as counted by
hand, and bad input fails with one line naming the file and line."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("IOA_DATA_DIR", ROOT.parent / "shared" / "data"))

if not (DATA / "humaneval" / "HumanEval.jsonl").is_file():
    pytest.skip(f"benchmark data not found at {DATA} (set IOA_DATA_DIR)", allow_module_level=True)


def read(rel: str) -> list[dict]:
    with open(DATA / rel) as f:
        return [json.loads(line) for line in f if line.strip()]


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def score(benchmark: str, samples: Path, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "ioa.cli", "score", "--benchmark", benchmark,
           "--samples", str(samples), "--data-dir", str(extra[0]) if extra else str(DATA), "--no-progress"]
    if benchmark == "vicuna":
        cmd += ["--judge-config", str(Path(samples).with_name("judge.yaml"))]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)


def summary(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    return json.loads(last)  # the summary is the last stdout line and is JSON


def results(samples: Path) -> list[dict]:
    out = samples.with_name(f"{samples.stem}_results.jsonl")
    return [json.loads(line) for line in out.read_text().splitlines()]


HUMANEVAL = read("humaneval/HumanEval.jsonl")


def test_humaneval_canonical_solutions_all_pass(tmp_path):
    samples = write(tmp_path / "canonical.jsonl",
                    [{"task_id": r["task_id"], "completion": r["canonical_solution"]} for r in HUMANEVAL])
    s = summary(score("humaneval", samples))
    assert s == {"benchmark": "humaneval", "n": 164, "samples": 164, "pass@1": 1.0}
    rows = results(samples)
    assert len(rows) == 164 and all(r["passed"] for r in rows)


def test_humaneval_mixed_file_exact_pass_at_1(tmp_path):
    tasks = HUMANEVAL[:10]
    rows = [{"task_id": r["task_id"], "completion": r["canonical_solution"]} for r in tasks]
    rows[1]["completion"] = "    return None\n"  # wrong answer
    rows[2]["completion"] = "    return (\n"  # syntax error
    rows[3]["completion"] = "    import sys\n    sys.exit(0)\n"  # exits "successfully" before the tests
    rows[4]["completion"] = "    raise RuntimeError('boom')\n"
    # a chat answer: the whole function in a fenced block, passes
    entry = tasks[5]["entry_point"]
    full = tasks[5]["prompt"] + tasks[5]["canonical_solution"]
    rows[5]["completion"] = f"Sure! Here it is:\n```python\n{full}```\nThis works because ..."
    assert f"def {entry}(" in full
    samples = write(tmp_path / "mixed.jsonl", rows)
    s = summary(score("humaneval", samples))
    assert s["n"] == 10 and s["pass@1"] == pytest.approx(6 / 10)
    assert [r["passed"] for r in results(samples)] == [True, False, False, False, False, True, True, True, True, True]


def test_humaneval_several_samples_per_task_pass_at_1_and_10(tmp_path):
    a, b = HUMANEVAL[0], HUMANEVAL[2]
    rows = [{"task_id": a["task_id"], "completion": a["canonical_solution"] if i == 0 else "    return None\n"}
            for i in range(12)]
    rows += [{"task_id": b["task_id"], "completion": "    return -1.0\n"} for _ in range(12)]
    samples = write(tmp_path / "multi.jsonl", rows)
    s = summary(score("humaneval", samples))
    # task a: n=12, c=1 -> pass@1 1/12, pass@10 1 - C(11,10)/C(12,10) = 5/6; task b: c=0 -> 0
    assert s["n"] == 2 and s["samples"] == 24
    assert s["pass@1"] == pytest.approx((1 / 12 + 0) / 2)
    assert s["pass@10"] == pytest.approx((1 - math.comb(11, 10) / math.comb(12, 10)) / 2)
    assert s["pass@10"] == pytest.approx(5 / 12)


def test_mbpp_reference_code_passes_with_evalplus_ids(tmp_path):
    rows = [r for r in read("mbpp/mbpp.jsonl") if 11 <= r["task_id"] <= 40]
    samples = write(tmp_path / "mbpp.jsonl",
                    [{"task_id": f"Mbpp/{r['task_id']}", "completion": r["code"]} for r in rows])
    assert summary(score("mbpp", samples)) == {"benchmark": "mbpp", "n": 30, "samples": 30, "pass@1": 1.0}


def test_gsm8k_gold_solutions_score_strict_one(tmp_path):
    rows = read("gsm8k/test.jsonl")
    samples = write(tmp_path / "gsm8k.jsonl", [{"idx": i, "completion": r["answer"]} for i, r in enumerate(rows)])
    s = summary(score("gsm8k", samples))
    assert s == {"benchmark": "gsm8k", "n": 1319, "samples": 1319, "strict_match": 1.0, "flexible_extract": 1.0}


def test_gsm8k_matched_by_question_with_other_output_fields(tmp_path):
    rows = read("gsm8k/test.jsonl")[:3]
    gold = [r["answer"].split("####")[-1].strip() for r in rows]
    samples = write(tmp_path / "q.jsonl", [
        {"question": rows[0]["question"], "response": f"Reasoning...\n#### {gold[0]}"},
        {"question": rows[1]["question"], "output": f"so the total is {gold[1]} bolts"},  # flexible only
        {"question": rows[2]["question"], "answer": "#### 1"},  # wrong
    ])
    s = summary(score("gsm8k", samples))
    assert s["strict_match"] == pytest.approx(1 / 3) and s["flexible_extract"] == pytest.approx(2 / 3)


def test_math500_boxed_gold_scores_one_and_wrong_scores_zero(tmp_path):
    rows = read("math/math500_test.jsonl")
    right = write(tmp_path / "right.jsonl",
                  [{"unique_id": r["unique_id"], "completion": f"Thus the answer is $\\boxed{{{r['answer']}}}$."}
                   for r in rows])
    assert summary(score("math500", right)) == {"benchmark": "math500", "n": 500, "samples": 500, "accuracy": 1.0}
    wrong = write(tmp_path / "wrong.jsonl",
                  [{"problem": r["problem"], "completion": "So $\\boxed{123456789}$."} for r in rows[:50]])
    assert summary(score("math500", wrong))["accuracy"] == 0.0


def test_aime_and_dolly_references(tmp_path):
    aime = write(tmp_path / "aime.jsonl", [{"id": r["id"], "completion": f"\\boxed{{{int(r['answer'])}}}"}
                                           for r in read("aime2024/test.jsonl")])
    assert summary(score("aime24", aime))["accuracy"] == 1.0
    dolly = write(tmp_path / "dolly.jsonl",
                  [{"id": i, "completion": r["output"]} for i, r in enumerate(read("dolly/valid.jsonl")[:20])])
    assert summary(score("dolly", dolly)) == {"benchmark": "dolly", "n": 20, "samples": 20, "rougeL": 100.0}


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_malformed_jsonl_names_file_and_line(tmp_path):
    samples = tmp_path / "bad.jsonl"
    samples.write_text('{"task_id": "HumanEval/0", "completion": "    return True\\n"}\n\n'
                       '{"task_id": "HumanEval/1", \n')
    msg = one_line_error(score("humaneval", samples))
    assert f"{samples}: line 3" in msg and "not valid JSON" in msg


@pytest.mark.parametrize("line,needle", [
    ({"task_id": "HumanEval/999", "completion": ""}, "task_id 'HumanEval/999' is not a humaneval item"),
    ({"task_id": "HumanEval/0"}, "no model output"),
    ({"task_id": "HumanEval/0", "completion": 5}, "'completion' must be a string"),
    ({"completion": "    pass\n"}, "no item id"),
])
def test_bad_sample_lines_name_file_and_line(tmp_path, line, needle):
    samples = write(tmp_path / "s.jsonl", [{"task_id": "HumanEval/0", "completion": "    return True\n"}, line])
    msg = one_line_error(score("humaneval", samples))
    assert f"{samples}: line 2" in msg and needle in msg


def test_missing_data_offline_names_the_hub_dataset(tmp_path):
    samples = write(tmp_path / "s.jsonl", [{"idx": 0, "completion": "#### 18"}])
    empty = tmp_path / "no-data"
    empty.mkdir()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    msg = one_line_error(score("gsm8k", samples, str(empty), env=env))
    assert "gsm8k" in msg and "'openai/gsm8k'" in msg and str(empty / "gsm8k" / "test.jsonl") in msg


def test_unknown_benchmark_is_a_user_error(tmp_path):
    samples = write(tmp_path / "s.jsonl", [{"idx": 0, "completion": "#### 18"}])
    assert "unknown benchmark 'gsm9k'" in one_line_error(score("gsm9k", samples))


def test_vicuna_judged_through_a_teacher_endpoint(tmp_path):
    """--judge-config: the judge is the teacher backend of a run config, here a real local
    chat-completions server whose judge answers every response with a rating of 7."""
    sys.path.insert(0, str(ROOT / "tests"))
    from chat_server import ChatServer

    with ChatServer(lambda messages, body: "The answer is helpful and accurate.\nRating: [[7]]") as server:
        config = tmp_path / "judge.yaml"
        config.write_text(f"teacher: {{kind: openai, model: judge, base_url: '{server.base_url}', "
                          f"api_key_env: IOA_JUDGE_KEY, cache_path: '{tmp_path / 'judge.sqlite'}'}}\n")
        samples = write(tmp_path / "vicuna.jsonl",
                        [{"question_id": i, "completion": f"Answer number {i}."} for i in (1, 2, 3)])
        proc = score("vicuna", samples, str(DATA), env={**os.environ, "IOA_JUDGE_KEY": "k"})
        cmd_ok = summary(proc)
        assert server.completions == 3
    assert cmd_ok["n"] == 3 and 7 in [v for v in cmd_ok.values() if isinstance(v, (int, float))]
