"""Grading in one place: reading the final answer out of a response, and the mastery test.

Pure functions of the text, no imports from the rest of the package.

    strip_think         the answer part of a reasoning model's output (`<think>` blocks removed)
    answer lines        one shape, `answer_head` / `answer_line`: at a line start, `answer` or `final answer`,
                        then an ASCII or Chinese colon (`[:：]`), case-insensitive. Callers differ in the
                        decoration they accept around it and in the value they read, so each variant is
                        that shape with its parts filled in (and a table in tests/test_grading.py):
      ANSWER_LINE           plain `Answer: 42`, leading whitespace only: the built-in domains
      MARKDOWN_ANSWER_LINE  also `**Answer:** 42`, `> Answer: 42`, `## Final answer: 42`: LLM-described domains
      NUMBER_ANSWER_LINE    `Answer: $1,234` (bold allowed), the number read from the value's start: GSM8K
      BOLD_ANSWER_HEAD      the head alone (`**Final Answer**:`), for the MATH final-answer line
      FINISHED_ANSWER_LINE  a plain `Answer:` line (ASCII colon) with a value and its newline: generation may stop
      CHOICE_ANSWER_LINE    `Answer: (B)`, `**Final answer:** B`, case-sensitive: the option letter of a choice
    extract_answer      plain answer line, else (flexible) the last number: the built-in domains
    final_answer        markdown answer line, else `#### x`, else the last `\\boxed{}`: LLM-described domains
    last_number         the last number, `$1,234.50` and `.5` too: LLM-described domains' fallback
    last_boxed          the content of the last `\\boxed{}` / `\\fbox{}`, nested braces kept
    fenced code         `extract_code` (benchmarks: the last fenced block defining the entry point, else the
                        first block, an unclosed last fence too) and `last_python_block` (LLM-described
                        domains: the last closed ```python block) -- two rules on purpose, each its callers'

The benchmark-specific rules built on these (lm-eval's GSM8K strict/flexible, MATH's answer line, number
normalisation, judge ratings) stay in `ioa.evaluation.extract`.

The mastery test: a module is mastered when P_S / P_T >= tau_mastery (never when P_T = 0), with a 1e-9
tolerance for float noise. `mastered` is the one definition; the gate, the Organizer, the IOA method, the
summary and the report use it (or `passes` on a ratio the gate recorded).
"""
from __future__ import annotations

import re

# ---- think blocks --------------------------------------------------------------------------------

THINK_BLOCK = re.compile(r"<think>.*?(?:</think>|$)", re.S | re.I)


def strip_think(text: str) -> str:
    """The answer part of a reasoning model's output: `<think>...</think>` blocks removed (R1-style)."""
    return THINK_BLOCK.sub("", text).strip()


# ---- answer lines --------------------------------------------------------------------------------

ANSWER_WORD = r"(?:final\s+)?answer"  # matched case-insensitively
CASED_ANSWER_WORD = r"(?:[Ff]inal\s+)?[Aa]nswer"  # where the rest of the pattern is case-sensitive
ANY_COLON = "[:：]"  # ASCII or full-width (Chinese) colon


def answer_head(lead: str = r"\s*", marks: str = r"\s*", colon: str = ANY_COLON, word: str = ANSWER_WORD) -> str:
    """The regex of an answer line's head, without `^`: `lead`, the word, `marks`, the colon."""
    return f"{lead}{word}{marks}{colon}"


def answer_line(value: str, *, lead: str = r"\s*", marks: str = r"\s*", colon: str = ANY_COLON) -> re.Pattern[str]:
    """An answer line: its head at a line start, then `value` (a regex whose first group is what the line
    says). Case-insensitive, multi-line."""
    return re.compile(rf"(?im)^{answer_head(lead, marks, colon)}{value}")


REST_OF_LINE = r"\s*(.+?)\s*$"
MARKDOWN_LEAD, MARKDOWN_MARKS = r"[\s*_#>]*", r"\s*[*_]*\s*"  # **Answer:**, __Answer__:, > Answer:, ## Answer:
BOLD_LEAD, BOLD_MARKS = r"\s*\**", r"\**\s*"  # **Answer**: or **Answer:**

ANSWER_LINE = answer_line(REST_OF_LINE)
MARKDOWN_ANSWER_LINE = answer_line(r"\s*[*_]*\s*(.+?)\s*$", lead=MARKDOWN_LEAD, marks=MARKDOWN_MARKS)
NUMBER_ANSWER_LINE = answer_line(r"\s*\**\s*\$?\s*(\-?[0-9][0-9\.\,]*)", lead=BOLD_LEAD, marks=BOLD_MARKS)
BOLD_ANSWER_HEAD = answer_head(BOLD_LEAD, BOLD_MARKS)
FINISHED_ANSWER_LINE = answer_line(r"[^\n]*\S[^\n]*\n", colon=":")
CHOICE_LEAD, CHOICE_MARKS = r"\s*[*_]*", r"[*_]*\s*"
CHOICE_ANSWER_LINE = re.compile(  # case-sensitive, the option letters are capitals: `Answer: (B)`, `**Answer:** B`
    rf"(?m)^{answer_head(CHOICE_LEAD, CHOICE_MARKS, word=CASED_ANSWER_WORD)}\s*[*_]*\s*\(?([A-E])\b\)?")
HASH_ANSWER = re.compile(r"####\s*(.+)")

# ---- numbers -------------------------------------------------------------------------------------

NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?")  # -12, 1,234.5, 3/4
LOOSE_NUMBER = re.compile(r"-?\$?\s?\d[\d,]*(?:\.\d+)?(?:/\d+)?|-?\.\d+")  # also $12, $ 12, -$3, .5


def extract_answer(text: str, mode: str = "flexible") -> str | None:
    """The final answer in a response, or None. mode: "strict" (Answer: line only) or "flexible"
    (else the last number in the text), the two filters lm-evaluation-harness names."""
    lines = ANSWER_LINE.findall(text)
    if lines:
        return lines[-1].strip().rstrip(".")
    if mode == "strict":
        return None
    numbers = NUMBER.findall(text)
    return numbers[-1] if numbers else None


def final_answer(text: str) -> str | None:
    """The stated final answer: last `Answer:` line (markdown too), else `#### x`, else last `\\boxed{}`;
    None if none. Think blocks are stripped first."""
    text = strip_think(text)
    lines = MARKDOWN_ANSWER_LINE.findall(text)
    if lines:
        return lines[-1].strip().rstrip(".").strip("*").strip()
    hashes = HASH_ANSWER.findall(text)
    if hashes:
        return hashes[-1].strip()
    return last_boxed(text)


def last_number(text: str) -> str | None:
    """The last number in the text (`$1,234.50`, `.5`, `3/4`), a trailing comma dropped; None if none."""
    numbers = LOOSE_NUMBER.findall(text)
    return numbers[-1].rstrip(",") if numbers else None


# ---- boxed ---------------------------------------------------------------------------------------

BOXED = re.compile(r"\\(?:boxed|fbox)\s*")


def _balanced(text: str, open_at: int) -> str | None:
    """The content of the brace group opening at text[open_at] == "{", or None if it never closes."""
    depth = 0
    for i in range(open_at, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[open_at + 1 : i]
    return None


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` / `\\fbox{...}` (nested braces kept), or `\\boxed 5`; else None."""
    for m in reversed(list(BOXED.finditer(text))):
        end = m.end()
        if end < len(text) and text[end] == "{":
            inner = _balanced(text, end)
            if inner is not None:
                return inner.strip()
        elif m.group(0) != m.group(0).rstrip():  # `\boxed 5`, as Hendrycks' last_boxed_only_string allows
            token = re.match(r"[^\s$]+", text[end:])
            if token:
                return token.group(0).rstrip(".")
    return None


# ---- fenced code ---------------------------------------------------------------------------------

FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)
PYTHON_BLOCK = re.compile(r"```(?:python|py|Python)?[ \t]*\n(.*?)```", re.S)


def code_blocks(text: str) -> list[str]:
    """Contents of the fenced blocks in `text` (an unclosed last fence runs to the end), Python or untagged."""
    return [body for lang, body in FENCE.findall(text) if lang.lower() in ("", "python", "py", "python3")]


def extract_code(text: str, entry_point: str | None = None) -> str:
    """The code in a chat answer to a benchmark: the last fenced block defining `entry_point`, else the
    first fenced block, else the raw text (a completion that was never fenced)."""
    blocks = code_blocks(text)
    if not blocks:
        return text
    if entry_point:
        defining = [b for b in blocks if re.search(rf"\bdef\s+{re.escape(entry_point)}\s*\(", b)]
        if defining:
            return defining[-1]
    return blocks[0]


def last_python_block(response: str) -> str:
    """The last closed ```python block of a response (think blocks stripped), else the whole response."""
    response = strip_think(response)
    blocks = PYTHON_BLOCK.findall(response)
    return blocks[-1] if blocks else response


# ---- mastery -------------------------------------------------------------------------------------

MASTERY_TOLERANCE = 1e-9  # 0.5 / (5 / 9) is 0.8999999999999999: float noise must not fail a module at tau 0.9


def mastery_ratio(p_student: float, p_teacher: float) -> float:
    """P_S / P_T, the quantity the mastery gate compares with tau_mastery (0 when P_T = 0)."""
    return p_student / p_teacher if p_teacher > 0 else 0.0


def passes(ratio: float, tau_mastery: float) -> bool:
    """The mastery test on a ratio P_S / P_T (what the gate records and the summary and report read back)."""
    return ratio >= tau_mastery - MASTERY_TOLERANCE


def mastered(p_student: float, p_teacher: float, tau_mastery: float) -> bool:
    """Whether a module counts as mastered: P_S / P_T >= tau_mastery (never when P_T = 0)."""
    return p_teacher > 0 and passes(mastery_ratio(p_student, p_teacher), tau_mastery)
