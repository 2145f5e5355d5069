"""A deterministic scripted "teacher brain" that answers ioa's LLM prompts as a competent model would.

`respond(messages, body) -> str` reads the `ioa-prompt: <name>/<version>` marker of the system message
and the `Domain:` line of the user message, and writes what a good teacher writes: a module tree as
JSON (fenced, in prose or bare, to exercise extraction), problems from an RNG seeded by the request's
seed with correct answers and tagged steps, correct worked solutions ending in `Answer: N`, rewrites
in the Given/Plan/Goal/Step/Check layout, and judge verdicts it actually computes. Domains: gsm8k,
python-functions, instructions. Plug it into `tests/chat_server.py` (`ChatServer(respond)`) for HTTP
tests, or use `ScriptedBackend` for in-process ones.
"""
from __future__ import annotations

import json
import random
import re
from typing import Callable, Sequence

from ioa.chat import ChatRequest, ChatResult
from ioa.grading import strip_think

MARKER = re.compile(r"ioa-prompt: (\w+)/")
NAMES = ("Ava", "Ben", "Cara", "Dev", "Eli", "Fay", "Gus", "Hana")
ITEMS = ("apples", "stickers", "marbles", "books", "shells", "cookies")
TOPICS = ("saving water", "staying focused", "learning a language", "keeping plants alive", "sleeping well")

GSM8K_MODULES = [
    {"id": "addition_word_problems", "name": "Addition word problems", "description": "Stories that add two amounts.",
     "level": 0, "abstract": False, "prerequisites": []},
    {"id": "subtraction_word_problems", "name": "Subtraction word problems",
     "description": "Stories that take an amount away.", "level": 0, "abstract": False, "prerequisites": []},
    {"id": "multiplication_word_problems", "name": "Multiplication word problems",
     "description": "Equal groups: how many in all.", "level": 1, "abstract": False,
     "prerequisites": ["addition_word_problems"]},
    {"id": "multi_step_problems", "name": "Multi-step problems", "description": "Multiply, then take away.",
     "level": 2, "abstract": True, "prerequisites": ["multiplication_word_problems", "subtraction_word_problems"]},
]
CODE_MODULES = [
    {"id": "arithmetic_functions", "name": "Arithmetic functions", "description": "Functions computing with numbers.",
     "level": 0, "abstract": False, "prerequisites": []},
    {"id": "string_functions", "name": "String functions", "description": "Functions counting or changing text.",
     "level": 0, "abstract": False, "prerequisites": []},
    {"id": "list_functions", "name": "List functions", "description": "Functions over lists.",
     "level": 1, "abstract": False, "prerequisites": ["arithmetic_functions"]},
]


# ---------------------------------------------------------------- reading the prompt


def tag(text: str, name: str) -> str:
    m = re.search(rf"<{name}>\n?(.*?)\n?</{name}>", text, re.S)
    return m.group(1).strip() if m else ""


def field(text: str, pattern: str, default: str = "") -> str:
    m = re.search(pattern, text)
    return m.group(1) if m else default


def wrap_json(value: object, style: int) -> str:
    """The JSON bare, in a ```json fence with prose, or in prose: the ways real models reply."""
    text = json.dumps(value, indent=1 if style == 1 else None)
    return [text, f"Here is the hierarchy you asked for:\n```json\n{text}\n```\nLet me know if you need changes.",
            f"Sure! The result is {text} -- hope that helps."][style % 3]


# ---------------------------------------------------------------- gsm8k


def gsm8k_problem(module: str, rng: random.Random, d: float) -> dict:
    hi = 5 + int(d * 95)
    name, friend = rng.sample(NAMES, 2)
    items = rng.choice(ITEMS)
    a, b, c = rng.randint(2, hi), rng.randint(2, hi), rng.randint(2, 9)
    if module == "addition_word_problems":
        return {"question": f"{name} has {a} {items}. {friend} gives {name} {b} more {items}. "
                            f"How many {items} does {name} have now?",
                "answer": str(a + b), "steps": []}
    if module == "subtraction_word_problems":
        a, b = max(a, b) + 1, min(a, b)
        return {"question": f"{name} has {a} {items} and gives {b} of them to {friend}. "
                            f"How many {items} does {name} have left?",
                "answer": a - b, "steps": []}  # a JSON number, as models often write
    if module == "multiplication_word_problems":
        return {"question": f"{name} buys {c} bags with {b} {items} in each bag. How many {items} does {name} buy?",
                "answer": str(b * c),
                "steps": [{"question": f"What is {b * (c - 1)} + {b}?", "answer": str(b * c),
                           "module": "addition_word_problems"}]}
    gone = rng.randint(1, b * c - 1)
    return {"question": f"{name} buys {c} bags with {b} {items} in each bag and gives {gone} {items} to {friend}. "
                        f"How many {items} does {name} have left?",
            "answer": str(b * c - gone),
            "steps": [{"question": f"What is {c} × {b}?", "answer": str(b * c),
                       "module": "multiplication_word_problems"},
                      {"question": f"What is {b * c} - {gone}?", "answer": str(b * c - gone),
                       "module": "subtraction_word_problems"},
                      # tagged with a module the tree does not have: the domain must drop it
                      {"question": "What is the capital of France?", "answer": "Paris", "module": "geography"}]}


ARITH = {"+": lambda x, y: x + y, "-": lambda x, y: x - y, "×": lambda x, y: x * y, "*": lambda x, y: x * y}


def gsm8k_lines(question: str) -> list[str] | None:
    """Worked lines for the problems `gsm8k_problem` writes (and bare `What is a op b?`), or None."""
    if m := re.search(r"What is (-?\d+) ([-+×*]) (-?\d+)\?", question):
        a, op, b = int(m[1]), m[2], int(m[3])
        return [f"{a} {op} {b} = {ARITH[op](a, b)}.", f"Answer: {ARITH[op](a, b)}"]
    if m := re.search(r"buys (\d+) bags with (\d+) \w+ in each bag and gives (\d+)", question):
        c, b, gone = map(int, m.groups())
        return [f"In all: {c} × {b} = {b * c}.", f"Left: {b * c} - {gone} = {b * c - gone}.", f"Answer: {b * c - gone}"]
    if m := re.search(r"buys (\d+) bags with (\d+) \w+ in each bag", question):
        c, b = map(int, m.groups())
        return [f"{c} bags of {b}: {c} × {b} = {b * c}.", f"Answer: {b * c}"]
    if m := re.search(r"has (\d+) \w+\. \w+ gives \w+ (\d+) more", question):
        a, b = map(int, m.groups())
        return [f"{a} + {b} = {a + b}.", f"Answer: {a + b}"]
    if m := re.search(r"has (\d+) \w+ and gives (\d+) of them", question):
        a, b = map(int, m.groups())
        return [f"{a} - {b} = {a - b}.", f"Answer: {a - b}"]
    return None


# ---------------------------------------------------------------- python-functions


def code_problem(module: str, rng: random.Random) -> dict:
    k = rng.randint(2, 9)
    if module == "arithmetic_functions":
        return {"question": f"Write a function `scale_by_{k}(x)` that returns x multiplied by {k}.",
                "answer": f"assert scale_by_{k}(3) == {3 * k}\nassert scale_by_{k}(0) == 0",
                "entry_point": f"scale_by_{k}", "steps": []}
    if module == "string_functions":
        ch = rng.choice("aeiou")
        return {"question": f"Write a function `count_{ch}(s)` that returns how many times the letter '{ch}' "
                            "occurs in s.",
                "answer": f"assert count_{ch}('{ch}x{ch}') == 2\nassert count_{ch}('') == 0",
                "entry_point": f"count_{ch}", "steps": []}
    return {"question": f"Write a function `add_{k}_to_all(xs)` that returns a new list with {k} added to each "
                        "item of xs.",
            "answer": f"assert add_{k}_to_all([1, 2]) == [{1 + k}, {2 + k}]\nassert add_{k}_to_all([]) == []",
            "entry_point": f"add_{k}_to_all",
            "steps": [{"question": f"What is 1 + {k}?", "answer": str(1 + k), "module": "arithmetic_functions"}]}


def code_solution(question: str) -> str | None:
    if m := re.search(r"`scale_by_(\d+)\(x\)`", question):
        body = f"def scale_by_{m[1]}(x):\n    return x * {m[1]}\n"
    elif m := re.search(r"`count_(\w)\(s\)`", question):
        body = f"def count_{m[1]}(s):\n    return s.count('{m[1]}')\n"
    elif m := re.search(r"`add_(\d+)_to_all\(xs\)`", question):
        body = f"def add_{m[1]}_to_all(xs):\n    return [x + {m[1]} for x in xs]\n"
    else:
        return None
    return f"A one-line body does it.\n\n```python\n{body}```"


# ---------------------------------------------------------------- instructions


def instruction_problem(module: str, rng: random.Random) -> dict:
    n, topic = rng.randint(2, 5), rng.choice(TOPICS)
    steps = []
    if module == "constrained_writing":
        steps = [{"question": f"How many items does a list of {n} tips have?", "answer": str(n),
                  "module": "format_constraints"}]
    return {"question": f"Give {n} tips for {topic}, as a numbered list with one short sentence each.", "answer": "",
            "steps": steps}


def instruction_response(question: str) -> str:
    if m := re.search(r"Give (\d+) tips for ([\w ]+),", question):
        n, topic = int(m[1]), m[2]
        return "\n".join(f"{i}. Tip {i} for {topic}: start small and keep at it every day." for i in range(1, n + 1))
    return "Here is a careful, complete answer to the request, written plainly and to the point."


def rate_instruction(question: str, response: str) -> int:
    if m := re.search(r"Give (\d+) tips", question):
        items = re.findall(r"(?m)^\s*\d+\.", response)
        return 9 if len(items) == int(m[1]) else 3
    return 8 if len(response) >= 40 and "don't know" not in response.lower() else 2


# ---------------------------------------------------------------- handlers, one per prompt


def on_domain_modules(domain: str, user: str, seed: int) -> str:
    modules = {"gsm8k": GSM8K_MODULES, "python-functions": CODE_MODULES}.get(domain, GSM8K_MODULES[:2])
    return wrap_json({"modules": modules}, 1)


def on_probe_problems(domain: str, user: str, seed: int) -> str:
    module = field(user, r"Module: (\w+)")
    d = float(field(user, r"Difficulty: ([\d.]+)", "0.5"))
    rng = random.Random(f"{domain}:{module}:{seed}:{d}")
    maker = ({"python-functions": lambda: code_problem(module, rng),
              "instructions": lambda: instruction_problem(module, rng)}
             .get(domain, lambda: gsm8k_problem(module, rng, d)))
    return wrap_json({"problems": [maker()]}, seed)


def on_split_steps(domain: str, user: str, seed: int) -> str:
    question = tag(user, "question")
    first = field(user, r"(?m)^- (\w+):")
    m = re.search(r"buys (\d+) bags with (\d+) \w+ in each bag and gives (\d+)", question)
    if m:
        c, b, gone = map(int, m.groups())
        steps = [{"question": f"What is {c} × {b}?", "answer": str(b * c), "module": "multiplication_word_problems"},
                 {"question": f"What is {b * c} - {gone}?", "answer": str(b * c - gone),
                  "module": "subtraction_word_problems"}]
    else:
        steps = [{"question": question, "answer": tag(user, "reference"), "module": first}]
    return json.dumps({"steps": steps})


def on_solve(domain: str, user: str, seed: int) -> str:
    question = tag(user, "question")
    if domain == "python-functions" and (code := code_solution(question)):
        return f"<think>Which function is this? Easy.</think>\n{code}"
    if domain == "instructions":
        if m := re.search(r"a list of (\d+) tips have", question):
            return f"A list of {m[1]} tips has {m[1]} items.\nAnswer: {m[1]}"
        return instruction_response(question)
    lines = gsm8k_lines(question) or ["I cannot work this one out.", "Answer: 0"]
    return "<think>Let me work it out step by step.</think>\n" + "\n".join(lines)


def on_adapt(domain: str, user: str, seed: int) -> str:
    solution, reference, question = tag(user, "solution"), tag(user, "reference"), tag(user, "question")
    lines = [ln for ln in solution.splitlines() if ln.strip() and not ln.lower().startswith("answer:")]
    if domain != "gsm8k":  # code and open-ended answers are kept whole
        return solution
    out = []
    if "'Idea:" in user:
        out.append("Idea: Think of bags of sweets you can count one by one.")
    if "Given (" in user:
        numbers = ", ".join(dict.fromkeys(re.findall(r"\d+", question)))
        out += [f"Given: the numbers {numbers}.", "Plan: combine the amounts in order.", "Goal: find the final amount."]
    elif "Goal (" in user:
        out.append("Goal: find the final amount.")
    out += [f"Step {i}: {ln}" for i, ln in enumerate(lines, 1)] if "no step numbers" not in user else lines
    if "Check (" in user:
        out.append("Check: every step uses the numbers given.")
    return "\n".join(out + [f"Answer: {reference}"])


def last_number(text: str) -> str | None:
    found = re.findall(r"-?\d+(?:\.\d+)?", text.replace(",", ""))
    return found[-1] if found else None


def on_judge_correct(domain: str, user: str, seed: int) -> str:
    reference, response = tag(user, "reference"), tag(user, "response")
    said = field(response, r"(?im)^answer:\s*(.+)$") or response
    if re.fullmatch(r"-?\d+(?:\.\d+)?", reference.replace(",", "")):
        ok = last_number(said) is not None and float(last_number(said)) == float(reference.replace(",", ""))
    else:
        ok = reference.strip().lower() in said.strip().lower()
    return f"The response {'matches' if ok else 'does not match'} the reference. [[{'yes' if ok else 'no'}]]"


def on_judge(domain: str, user: str, seed: int) -> str:
    rating = rate_instruction(tag(user, "question"), tag(user, "response"))
    return f"The response {'meets' if rating >= 7 else 'misses'} the request's constraints. [[{rating}]]"


HANDLERS: dict[str, Callable[[str, str, int], str]] = {
    "domain_modules": on_domain_modules, "probe_problems": on_probe_problems, "split_steps": on_split_steps,
    "solve": on_solve, "adapt": on_adapt, "judge_correct": on_judge_correct, "judge": on_judge,
}


def respond(messages: list[dict], body: dict) -> str:
    """The brain's reply to a chat-completions request (messages as dicts, body as sent)."""
    system = next((m["content"] for m in messages if m["role"] == "system"), "")
    user = next((m["content"] for m in messages if m["role"] == "user"), "")  # the task, not a re-ask
    marker = MARKER.search(system)
    if not marker or marker[1] not in HANDLERS:
        return "I do not recognise this request."
    seed = body.get("seed")
    if seed is None:
        seed = int(field(user, r"Variation key: (\d+)", "0"))
    return HANDLERS[marker[1]](field(user, r"Domain: (\S+)"), user, int(seed))


class ScriptedBackend:
    """An in-process ChatBackend over a brain; records every request. `override(request, raw)` may
    replace a reply (to inject bad output), returning the raw text to use or None to keep it."""

    def __init__(self, brain: Callable[[list[dict], dict], str] = respond,
                 override: Callable[[ChatRequest, str], str | None] | None = None, model: str = "scripted"):
        self.brain, self.override, self.model = brain, override, model
        self.requests: list[ChatRequest] = []

    def complete(self, requests: Sequence[ChatRequest]) -> list[ChatResult]:
        out = []
        for q in requests:
            self.requests.append(q)
            raw = self.brain(q.message_dicts(), {"model": self.model, "seed": q.seed, "max_tokens": q.max_tokens,
                                                  "temperature": q.temperature})
            if self.override is not None:
                replaced = self.override(q, raw)
                raw = raw if replaced is None else replaced
            out.append(ChatResult(text=strip_think(raw), raw=raw, model=self.model))
        return out
