"""The Adapter: a teacher's worked solution rewritten into a form a small student can learn from.

Pure functions, one per transform, each switchable in `AdapterConfig`:

  decompose   the solution laid out in phases; `layout` says which:
                focused     formulate -> solve -> result: the goal, the module's own solving lines and the
                            result restated right before the answer line (the default)
                structured  extract -> relate -> formulate -> solve -> verify (the paper's five phases)
  template    the phases as labelled lines ending in a single `Answer:` line (structured: numbered steps)
  simplify    plainer words and shorter sentences
  expand_steps  a solving line that states a step of a module the student has not mastered is written
              out in that module's own worked form (the column lines under "Add the parts: 1300 + 455"),
              so a curriculum's earlier stage is used, and practised, where the later one needs it
  load_ramp   small numbers first: a stage's examples run from the easy end of the difficulty band
              to the hard end (bridge stages stay in the easier half)
  analogies   a concrete picture for abstract modules (fractions as pizza slices, ...)

`adapt_solution` composes the enabled transforms; with all of them off the teacher's raw text is
used as is (the `ioa-no-adapter` ablation).
"""
from __future__ import annotations

import re
from typing import Mapping, Sequence

from ioa.config import AdapterConfig
from ioa.types import Module, Problem, Step

NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:/\d+)?")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")

ANALOGIES: dict[str, str] = {
    "fractions": "Think of a pizza cut into equal slices: the bottom number is how many slices the pizza has, "
                 "the top number is how many you take.",
    "percentages": "Think of 100 coins: a percent is how many coins out of every 100.",
    "linear_equations": "Think of a balance scale: do the same thing to both sides and it stays balanced.",
    "linear_systems": "Think of two shopping receipts with the same two items: compare the receipts to find "
                      "each price.",
}
GENERIC_ANALOGY = "Think of it with real objects you can count."

SIMPLER_WORDS: dict[str, str] = {
    "compute": "work out", "calculate": "work out", "determine": "find", "obtain": "get",
    "therefore": "so", "thus": "so", "hence": "so", "subsequently": "then", "utilize": "use",
    "equivalently": "in other words", "consequently": "so", "additionally": "also",
    "evaluate": "work out",
}
FILLER = re.compile(r"\b(?:note that|it follows that|we can see that|observe that|clearly,?|obviously,?)\s*", re.I)


def analogy(module: Module) -> str | None:
    """A concrete picture for an abstract module, or None for a concrete one."""
    if not module.abstract:
        return None
    return ANALOGIES.get(module.id, GENERIC_ANALOGY)


def _as_task(question: str) -> str:
    """'What is 9 + 3?' -> '9 + 3'; other questions lose only their question mark."""
    q = question.strip().rstrip("?").strip()
    return q[8:] if q.lower().startswith("what is ") else q[:1].lower() + q[1:]


def states_result(line: str, answer: str) -> bool:
    """Whether a solving line already ends on the answer ("So 58 + 5 = 63.")."""
    return bool(answer) and re.search(rf"(?:=|is)\s*{re.escape(answer)}\.?\s*$", line.strip()) is not None


def anchor(problem: Problem, module: Module) -> str:
    """'What is 58 + 5?' in multi-digit addition -> '58 + 5: multi-digit addition.': the task copied, then
    the skill it takes.

    After 20 steps on the teacher's lines most wrong answers were written in another module's layout
    (`Ones: 8 × 8 = 64. Write 64 and carry 1.` for a multiplication) or took a digit from the wrong place:
    the student chose its first solving line right after the instruction text, far from the operator and
    the digits. Copying the task first is what the untrained student does anyway (`2 + 2 = 4`), and it
    puts the operator and the operands right before the tokens that choose the layout. Unlike the goal
    line (`58 + 5 = ?`), it does not teach the student to write `= ?` where it used to write the answer.
    """
    sentences = SENTENCE_END.split(problem.question.strip())
    with_numbers = [s for s in sentences if NUMBER.search(s)]
    sentence = (with_numbers or sentences)[-1].strip()
    task = problem.meta.get("equation") or \
        (_as_task(sentence) if sentence.lower().startswith("what is ") else sentence.rstrip(".?!"))
    return f"{task}: {module.name.lower()}."


def focus(problem: Problem, solution: str, goal: bool = True, opening: str | None = None) -> list[tuple[str, str]]:
    """(phase, text) for formulate (the goal line, unless `goal` is off) or anchor (`opening`, where given),
    solve (one entry per line) and, unless the last solving line already says it, result.

    Only lines this module's problem needs: a 135M student trained on the structured layout answered
    multiplication facts with the addition layout ("Plan: Use addition facts, then place value ..."),
    since the lines every module shares (the numbers, the plan, the check) outweighed the few that
    differ. The result comes right before the answer line, so the last number the student writes
    before `Answer:` is the result, never a check's operand.
    """
    question = SENTENCE_END.split(problem.question.strip())[-1]
    if opening:
        phases = [("anchor", opening)]
    else:
        phases = [("formulate", problem.meta.get("equation") or f"{_as_task(question)} = ?")] \
            if goal and (question.lower().startswith("what is ") or problem.meta.get("equation")) else []
    phases += [("solve", line.strip()) for line in solution.splitlines() if line.strip()]
    solved = [text for phase, text in phases if phase == "solve"]
    if not solved or not states_result(solved[-1], problem.answer):
        phases.append(("result", f"So the answer is {problem.answer}."))
    return phases


def step_expression(step: Step) -> str | None:
    """'What is 1300 + 455?' -> '1300 + 455'; None for a question of another shape."""
    q = step.question.strip()
    return q[8:].rstrip("?").strip() if q.lower().startswith("what is ") else None


def expand_steps(lines: Sequence[str], steps: Sequence[Step], worked: Mapping[str, Sequence[str]]) -> list[str]:
    """Solving lines with each line that ends by stating a step's result (`... 1300 + 455 = 1755.`)
    replaced by its head (`... 1300 + 455.`) and the step's worked lines, for the steps `worked` holds
    (keyed by step question). Other lines stay as they are."""
    out: list[str] = []
    for line in lines:
        for step in steps:
            expr = step_expression(step)
            if expr is None or step.question not in worked:
                continue
            found = re.fullmatch(rf"(.*?{re.escape(expr)})\s*=\s*{re.escape(step.answer)}\.?", line.strip())
            if found:
                out += [found[1] + ".", *worked[step.question]]
                break
        else:
            out.append(line)
    return out


def decompose(problem: Problem, solution: str, names: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """(phase, text) for extract, relate, formulate, solve (one entry per line), verify: the paper's
    structured layout.

    The relate phase names the knowledge the problem builds on (its steps' modules, side steps left
    out) rather than precomputing sub-results: a small student asked to state "13 - 6" before it has
    borrowed invents numbers there.
    """
    numbers = list(dict.fromkeys(NUMBER.findall(problem.question)))
    phases = [("extract", f"The numbers are {', '.join(numbers)}." if numbers else "Read what is given.")]
    side = set(problem.meta.get("side_steps", ()))
    used = dict.fromkeys(s.module for i, s in enumerate(problem.steps) if i not in side)
    if used:
        known = [(names or {}).get(m, m.replace("_", " ")).lower() for m in used]
        phases.append(("relate", "Use " + ", then ".join(known) + "."))
    question = SENTENCE_END.split(problem.question.strip())[-1]
    goal = f"{_as_task(question)} = ?" if question.lower().startswith("what is ") else question
    phases.append(("formulate", problem.meta.get("equation") or goal))
    phases += [("solve", line.strip()) for line in solution.splitlines() if line.strip()]
    verify = problem.meta.get("verify") or f"Check: the answer {problem.answer} fits every step."
    phases.append(("verify", verify.removeprefix("Check: ")))
    return phases


PHASE_LABEL = {"extract": "Given", "relate": "Plan", "formulate": "Goal", "verify": "Check"}


def template(phases: list[tuple[str, str]], note: str | None = None, numbered: bool = True) -> str:
    """The standard layout: labelled phases and solving steps, numbered unless `numbered` is off (the
    answer line comes last). Solving and result lines carry no label of their own when unnumbered."""
    lines = [f"Idea: {note}"] if note else []
    step = 0
    for phase, text in phases:
        if phase == "solve" and numbered:
            step += 1
            lines.append(f"Step {step}: {text}")
        elif phase in ("solve", "result", "anchor"):
            lines.append(text)
        else:
            lines.append(f"{PHASE_LABEL[phase]}: {text}")
    return "\n".join(lines)


def simplify(text: str) -> str:
    """Plainer words and no filler phrases."""
    text = FILLER.sub("", text)

    def swap(match: re.Match[str]) -> str:
        word = match.group(0)
        simple = SIMPLER_WORDS.get(word.lower(), word)
        return simple.capitalize() if word[0].isupper() else simple

    return re.sub(r"[A-Za-z]+", swap, text)


def load_ramp(n: int, low: float, high: float, bridge: bool = False) -> list[float]:
    """n difficulties rising from `low` to `high` (to the middle of the band for a bridge stage)."""
    if n <= 0:
        return []
    top = (low + high) / 2 if bridge else high
    if n == 1:
        return [round(low, 4)]
    return [round(low + (top - low) * i / (n - 1), 4) for i in range(n)]


def adapt_solution(
    problem: Problem, solution: str, raw: str, module: Module, cfg: AdapterConfig,
    names: Mapping[str, str] | None = None, worked: Mapping[str, Sequence[str]] | None = None,
    domain_form: bool = False,
) -> str:
    """The completion the student is trained on, built from the enabled transforms. `worked` holds the
    worked lines of the problem's steps to write out (`expand_steps`), keyed by step question;
    `domain_form`: `solution` is the domain's own form of the problem (atomic, table, checked, explicit or peeled
    lines), not the teacher's lines, so it is trained on even with every text transform off."""
    if not (cfg.decompose or cfg.template or cfg.simplify or cfg.analogies or domain_form
            or (cfg.expand_steps and worked)):
        return raw
    if cfg.expand_steps and worked:
        solution = "\n".join(expand_steps(solution.splitlines(), problem.steps, worked))
    note = analogy(module) if cfg.analogies else None
    structured = cfg.layout == "structured"
    if cfg.decompose:
        phases = decompose(problem, solution, names) if structured else \
            focus(problem, solution, cfg.goal_line, anchor(problem, module) if cfg.anchor_line else None)
    else:
        phases = [("solve", line.strip()) for line in solution.splitlines() if line.strip()]
    if cfg.template:
        body = template(phases, note, numbered=structured)
    else:
        body = "\n".join(([note] if note else []) + [text for _, text in phases])
    if cfg.simplify:
        body = simplify(body)
    # The answer line is added last and never rewritten, so simplification cannot change an answer.
    return f"{body}\nAnswer: {problem.answer}" if body else f"Answer: {problem.answer}"


RAW = {"decompose": False, "template": False, "simplify": False, "analogies": False, "expand_steps": False,
       "atomic_steps": False, "explicit_digits": False, "peel_columns": False, "carry_steps": False,
       "borrow_steps": False, "checked_steps": False, "table_steps": False, "table_stop": False, "long_division": False}
# Each candidate form of the calibration pilot (ioa.calibrate), keyed by the names config.ADAPTER_FORMS
# validates (a test holds the two lists equal; config cannot import this module).
FORM_CHANGES: dict[str, dict[str, object]] = {
    "configured": {},
    "raw": RAW,
    "goal": {"layout": "focused", "goal_line": True},
    "anchor": {"layout": "focused", "anchor_line": True},
    "structured": {"layout": "structured"},
    "explicit": {"explicit_digits": True},
    "atomic": {"atomic_steps": True},
    "peeled": {"peel_columns": True},
    "expand": {"expand_steps": True},
    "checked": {"checked_steps": True},
    "table": {"table_steps": True},
    "table-stop": {"table_stop": True},
    "long": {"long_division": True},
    "carry": {"carry_steps": True},
    "borrow": {"borrow_steps": True},
}


def raw_adapter(adapter: AdapterConfig) -> AdapterConfig:
    """Every rewrite off: the teacher's raw solution. The load ramp stays, as it orders difficulty rather
    than rewriting text."""
    return adapter.model_copy(update=RAW)


def adapter_form(name: str, adapter: AdapterConfig) -> AdapterConfig:
    """The configured Adapter changed into the candidate form `name` (a key of FORM_CHANGES)."""
    if name not in FORM_CHANGES:
        raise ValueError(f"unknown Adapter form {name!r}; known: {', '.join(FORM_CHANGES)}")
    return adapter.model_copy(update=FORM_CHANGES[name])
