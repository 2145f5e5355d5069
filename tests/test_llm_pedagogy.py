"""LLM-driven pedagogy: prompts, JSON output, domain specs, LLMDomain, LLMTeacher, checkers, estimates.

Driven in-process by the scripted teacher brain (tests/scripted_teacher.py) through `ScriptedBackend`.
"""
from __future__ import annotations

import importlib.util
import json

import pytest
from scripted_teacher import GSM8K_MODULES, ScriptedBackend

from ioa.chat import PHASES, ChatResult, TeacherCallError
from ioa.config import AdapterConfig, Price, RunConfig, TeacherConfig
from ioa.domains.checking import (
    CHECKERS,
    CheckSettings,
    check_choice,
    check_exact,
    check_numeric,
    check_symbolic,
    make_checker,
    program_with_tests,
)
from ioa.domains.llm import LLMDomain, modules_schema
from ioa.domains.spec import DomainSpecError, builtin_specs, load_domain_spec, parse_domain_spec
from ioa.grading import strip_think
from ioa.llm.jsonout import InvalidOutput, TeacherOutputError, ask_json, ask_json_many, extract_json
from ioa.llm.prompts import ANSWER_FORMATS, PROMPTS, render
from ioa.teachers.estimate import estimate_run
from ioa.teachers.llm import LLMTeacher, echoes_prompt, with_answer_line
from ioa.types import Module, Problem

SCHEMA = {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}


def gsm8k(override=None, **cfg):
    backend = ScriptedBackend(override=override)
    domain = LLMDomain(load_domain_spec("gsm8k"), backend, TeacherConfig(**cfg))
    return domain, LLMTeacher(domain, backend, TeacherConfig(**cfg)), backend


def replies(*texts):
    """An override that answers the first len(texts) calls with these texts, then lets the brain answer."""
    queue = list(texts)
    return lambda request, raw: queue.pop(0) if queue else None


# ---------------------------------------------------------------- JSON extraction and re-asking


@pytest.mark.parametrize("text, expected", [
    ('{"n": 1}', {"n": 1}),
    ('Sure! Here it is:\n```json\n{"n": 2}\n```\nAnything else?', {"n": 2}),
    ('```\n[1, 2]\n```', [1, 2]),
    ('The answer is {"n": 3, "s": "a } inside"} as requested.', {"n": 3, "s": "a } inside"}),
    ('Broken {first, then {"n": 4}', {"n": 4}),
    ('```json\n{oops}\n```\nfixed: {"n": 5}', {"n": 5}),
])
def test_extract_json_from_prose_and_fences(text, expected):
    assert extract_json(text) == expected


def test_extract_json_without_json_fails():
    with pytest.raises(InvalidOutput, match="no JSON"):
        extract_json("I'd rather not.")


def test_invalid_json_is_reasked_with_the_error_then_succeeds():
    backend = ScriptedBackend(brain=lambda m, b: '{"n": 7}', override=replies('{"n": "seven"}'))
    request = render("split_steps", domain_name="d", question="q", answer="a", module_list="- m: M.")
    assert ask_json(backend, request, SCHEMA, max_retries=2) == {"n": 7}
    assert len(backend.requests) == 2
    again = backend.requests[1]
    assert again.messages[:2] == request.messages
    assert again.messages[2] == ("assistant", '{"n": "seven"}')
    role, text = again.messages[3]
    assert role == "user" and text.startswith("Your previous output was invalid: at $.n: "
                                              "'seven' is not of type 'integer'")
    assert text.endswith("Reply with only valid JSON matching the schema.")
    assert (again.prompt, again.prompt_version) == (request.prompt, request.prompt_version)


def test_gives_up_after_max_json_retries_with_a_clear_error():
    backend = ScriptedBackend(brain=lambda m, b: "Sorry, I cannot produce JSON today.")
    request = render("split_steps", domain_name="d", question="q", answer="a", module_list="- m: M.")
    with pytest.raises(TeacherOutputError) as err:
        ask_json(backend, request, SCHEMA, max_retries=2)
    message = str(err.value)
    assert "'split_steps' v1" in message and "after 2 re-ask(s)" in message
    assert "no JSON object or array found" in message and "Sorry, I cannot produce JSON today." in message
    assert len(backend.requests) == 3
    assert isinstance(err.value, ValueError)


def test_ask_json_many_reasks_only_the_failed_ones():
    def brain(messages, body):
        question = messages[1]["content"].split("<question>\n")[1][0]
        if question == "b" and len(messages) == 2:  # b's first answer is prose; re-asked, it is JSON
            return "not json"
        return json.dumps({"n": ord(question)})

    backend = ScriptedBackend(brain=brain)
    requests = [render("solve", domain_name="d", question=q, answer_format="f") for q in "abc"]
    assert ask_json_many(backend, requests, SCHEMA, max_retries=1) == [{"n": 97}, {"n": 98}, {"n": 99}]
    assert len(backend.requests) == 4 and backend.requests[3].messages[:2] == requests[1].messages


def test_failed_calls_raise_teacher_call_error_naming_the_prompts():
    class Failing:
        model = "down"

        def complete(self, requests):
            return [ChatResult(text="", raw="", model="down", error="HTTP 503 after 6 retries") for _ in requests]

    domain = LLMDomain(load_domain_spec("gsm8k"), Failing())
    with pytest.raises(TeacherCallError,
                       match=r"1 of 1 teacher call\(s\) failed: prompt 'domain_modules' v1: HTTP 503"):
        domain.modules()


# ---------------------------------------------------------------- module hierarchy


def test_module_json_with_a_cycle_or_unknown_prerequisite_is_reasked():
    cyclic = [dict(GSM8K_MODULES[0], prerequisites=["subtraction_word_problems"]),
              dict(GSM8K_MODULES[1], prerequisites=["addition_word_problems"])]
    unknown = [dict(GSM8K_MODULES[0], prerequisites=["counting"])]
    domain, _, backend = gsm8k(override=replies(json.dumps({"modules": cyclic}), json.dumps({"modules": unknown})))
    assert [m.id for m in domain.modules()] == [m["id"] for m in GSM8K_MODULES]
    asks = [q for q in backend.requests if q.prompt == "domain_modules"]
    assert len(asks) == 3
    assert ("prerequisites form a cycle: addition_word_problems -> subtraction_word_problems -> addition_word_problems"
            in asks[1].messages[-1][1])
    assert "lists unknown prerequisite(s) 'counting'" in asks[2].messages[-1][1]


def test_modules_schema_rejects_bad_ids_and_too_many_modules():
    from ioa.llm.jsonout import schema_error

    assert "does not match" in schema_error({"modules": [dict(GSM8K_MODULES[0], id="Bad Id")]}, modules_schema(8))
    assert "at $.modules: fails maxItems 3 (value: [{" in schema_error({"modules": GSM8K_MODULES}, modules_schema(3))


def test_gsm8k_modules_asked_once_foundations_first():
    domain, _, backend = gsm8k()
    modules = domain.modules()
    assert [(m.id, m.level) for m in modules] == [
        ("addition_word_problems", 0), ("subtraction_word_problems", 0),
        ("multiplication_word_problems", 1), ("multi_step_problems", 2)]
    assert modules[3].abstract
    domain.modules()
    assert [q.prompt for q in backend.requests] == ["domain_modules"]
    assert ("multiplication_word_problems", "multi_step_problems") in domain.declared_prerequisites()


def test_spec_modules_are_used_without_asking():
    backend = ScriptedBackend()
    domain = LLMDomain(load_domain_spec("instructions"), backend)
    assert [m.id for m in domain.modules()][-1] == "constrained_writing"
    assert backend.requests == []


# ---------------------------------------------------------------- LLMDomain


def test_generate_is_deterministic_per_seed_with_known_step_modules():
    domain, _, backend = gsm8k()
    a = domain.generate("multi_step_problems", 0.4, 11)
    b = domain.generate("multi_step_problems", 0.4, 11)
    c = domain.generate("multi_step_problems", 0.4, 12)
    assert a == b and a.question != c.question
    assert a.id == "multi_step_problems-11-0.4" and a.solution == ""
    generated = [q for q in backend.requests if q.prompt == "probe_problems"]
    assert generated[0] == generated[1] and generated[0].seed == 11
    known = {m.id for m in domain.modules()}
    assert [s.module for s in a.steps] == ["multiplication_word_problems", "subtraction_word_problems"]
    assert {s.module for s in a.steps} <= known
    assert a.meta["dropped_steps"] == [{"question": "What is the capital of France?", "module": "geography"}]
    assert a.meta["prompt"] == "probe_problems" and a.meta["prompt_version"] == PROMPTS["probe_problems"].version
    assert domain.check(a, f"Some work.\nAnswer: {a.answer}")
    assert not domain.check(a, f"Answer: {int(a.answer) + 1}")
    assert domain.check_step(a.steps[0].answer, f"so {a.steps[0].answer}")


def test_generate_many_batches_and_accounts_probe_seeds_to_identify():
    domain, _, backend = gsm8k()
    problems = domain.generate_many([("addition_word_problems", 0.2, 3),
                                     ("subtraction_word_problems", 0.2, 1_000_000_003)])
    assert [p.module for p in problems] == ["addition_word_problems", "subtraction_word_problems"]
    assert problems[1].answer.isdigit()  # the brain wrote a JSON number; stored as a string
    phases = [q.phase for q in backend.requests if q.prompt == "probe_problems"]
    assert phases == ["synthesize", "identify"]


def test_generate_rejects_unknown_modules_and_bad_difficulty():
    domain, _, _ = gsm8k()
    with pytest.raises(ValueError, match="unknown module 'fractions'"):
        domain.generate("fractions", 0.5, 1)
    with pytest.raises(ValueError, match=r"difficulty must be in \[0, 1\]"):
        domain.generate("addition_word_problems", 1.5, 1)


def test_non_numeric_reference_answers_are_reasked_for_numeric_domains():
    bad = {"problems": [{"question": "How many?", "answer": "a few", "steps": []}]}
    domain, _, backend = gsm8k(
        override=lambda q, raw: json.dumps(bad) if q.prompt == "probe_problems" and len(q.messages) == 2 else None)
    p = domain.generate("addition_word_problems", 0.5, 2)
    assert p.answer.isdigit()
    last = [q for q in backend.requests if q.prompt == "probe_problems"][-1]
    assert "'a few' is not a single plain number" in last.messages[-1][1]


# ---------------------------------------------------------------- LLMTeacher


def test_solve_keeps_raw_and_splits_text_and_answer():
    domain, teacher, _ = gsm8k()
    problem = domain.generate("multi_step_problems", 0.5, 4)
    (solution,) = teacher.solve([problem])
    assert solution.answer == problem.answer
    assert "Answer:" not in solution.text and solution.text.startswith("In all:")
    assert solution.raw.startswith("<think>") and solution.raw.rstrip().endswith(f"Answer: {problem.answer}")
    (response,) = teacher.respond([problem])
    assert response == strip_think(solution.raw)
    assert domain.check(problem, solution.raw)


def test_make_problems_and_decompose():
    domain, teacher, backend = gsm8k()
    problems = teacher.make_problems("multi_step_problems", 0.3, 3, 100)
    assert [p.id for p in problems] == [f"multi_step_problems-{s}-0.3" for s in (100, 101, 102)]
    assert teacher.decompose(problems[0]) == list(problems[0].steps)
    bare = Problem(id="x", module="multi_step_problems", difficulty=0.3, question=problems[0].question,
                   answer=problems[0].answer)
    steps = teacher.decompose(bare)
    assert [s.module for s in steps] == ["multiplication_word_problems", "subtraction_word_problems"]
    assert backend.requests[-1].prompt == "split_steps" and backend.requests[-1].phase == "identify"


def test_adapt_rewrites_with_exactly_one_answer_line():
    domain, teacher, backend = gsm8k()
    problems = teacher.make_problems("multi_step_problems", 0.5, 2, 7)
    texts = teacher.adapt_many(problems, teacher.solve(problems), domain.modules(), AdapterConfig(layout="structured"))
    for p, text in zip(problems, texts):
        lines = text.splitlines()
        assert lines[0].startswith("Idea:") and any(ln.startswith("Given:") for ln in lines)
        assert lines[-1] == f"Answer: {p.answer}" and sum(ln.startswith("Answer:") for ln in lines) == 1
    assert teacher.adapt_stats == {"rewritten": 2, "fallbacks": 0}
    focused = teacher.adapt_many(problems, teacher.solve(problems), domain.modules(), AdapterConfig())
    for p, text in zip(problems, focused):
        lines = text.splitlines()
        assert any(ln.startswith("Goal:") for ln in lines) and lines[-1] == f"Answer: {p.answer}"
        assert not any(ln.startswith(("Given:", "Plan:", "Check:", "Step ")) for ln in lines)
    adapt = [q for q in backend.requests if q.prompt == "adapt"]
    assert len(adapt) == 4 and all(q.phase == "adapt" for q in adapt)
    assert "Use short sentences" in adapt[0].messages[1][1]


def test_adapt_instructions_follow_the_enabled_transforms():
    domain, teacher, backend = gsm8k()
    problems = teacher.make_problems("addition_word_problems", 0.5, 1, 7)
    (text,) = teacher.adapt_many(problems, teacher.solve(problems), domain.modules(),
                                 AdapterConfig(decompose=False, template=False, analogies=False))
    user = [q for q in backend.requests if q.prompt == "adapt"][0].messages[1][1]
    assert "Given (" not in user and "'Idea:" not in user and "Use short sentences" in user
    assert not text.startswith("Given:") and text.endswith(f"Answer: {problems[0].answer}")


def test_adapt_falls_back_when_a_rewrite_breaks_the_answer():
    def wrong_rewrites(request, raw):
        return "Step 1: I rewrote it badly.\nAnswer: 999999" if request.prompt == "adapt" else None

    domain, teacher, _ = gsm8k(override=wrong_rewrites)
    problems = teacher.make_problems("multiplication_word_problems", 0.5, 2, 7)
    solutions = teacher.solve(problems)
    texts = teacher.adapt_many(problems, solutions, domain.modules(), AdapterConfig())
    assert teacher.adapt_stats == {"rewritten": 0, "fallbacks": 2}
    for p, s, text in zip(problems, solutions, texts):
        assert text == with_answer_line(strip_think(s.raw), p.answer) == f"{s.text}\nAnswer: {p.answer}"


def test_adapt_falls_back_when_a_rewrite_echoes_the_prompt():
    """What a 135M teacher behind `transformers serve` wrote (tests/test_real_teacher_server.py): the right
    answer, then the prompt's own scaffolding. The checker alone would have let it into training."""
    def echoing(request, raw):
        if request.prompt != "adapt":
            return None
        answer = request.messages[1][1].split("<reference>\n")[1].split("\n")[0]
        return f"The result is {answer}.\nAnswer: {answer}\n</remarks>\n\nRewrite the solution:\nAnswer: {answer}"

    domain, teacher, _ = gsm8k(override=echoing)
    problems = teacher.make_problems("multiplication_word_problems", 0.5, 2, 7)
    solutions = teacher.solve(problems)
    texts = teacher.adapt_many(problems, solutions, domain.modules(), AdapterConfig())
    assert teacher.adapt_stats == {"rewritten": 0, "fallbacks": 2}
    assert all("Rewrite the solution" not in t and "</remarks>" not in t for t in texts)
    assert echoes_prompt("Sum: 9.\nAnswer: 9\n</solution>", "Sum: 9.\nAnswer: 9")
    assert not echoes_prompt("Use <b> here.\nAnswer: 9", "We use <b> here.\nAnswer: 9")


def test_adapt_with_every_transform_off_returns_the_raw_solution():
    domain, teacher, backend = gsm8k()
    problems = teacher.make_problems("addition_word_problems", 0.5, 2, 7)
    solutions = teacher.solve(problems)
    off = AdapterConfig(decompose=False, template=False, simplify=False, load_ramp=True, analogies=False)
    assert teacher.adapt_many(problems, solutions, domain.modules(), off) == [s.raw for s in solutions]
    assert not any(q.prompt == "adapt" for q in backend.requests)


def test_with_answer_line_replaces_every_answer_line():
    assert with_answer_line("a\nAnswer: 3\nb\n#### 3\n**Answer:** 3", "4") == "a\nb\nAnswer: 4"


def test_every_request_records_its_prompt_and_version():
    backend = ScriptedBackend()
    for name in builtin_specs():
        domain = LLMDomain(load_domain_spec(name), backend)
        teacher = LLMTeacher(domain, backend)
        if domain.spec.check == "code":
            domain.generate_many([(m.id, 0.5, 1) for m in domain.modules()])
            continue
        problems = domain.generate_many([(m.id, 0.5, 1) for m in domain.modules()])
        solutions = teacher.solve(problems)
        domain.check_many(problems, [s.raw for s in solutions])
        for step in (s for p in problems for s in p.steps):
            domain.check_step(step.answer, f"Answer: {step.answer}")
        teacher.adapt_many(problems, solutions, domain.modules(), AdapterConfig())
    used = {q.prompt for q in backend.requests}
    assert used == set(PROMPTS) - {"split_steps"}
    for q in backend.requests:
        template = PROMPTS[q.prompt]
        assert q.prompt_version == template.version
        assert q.messages[0][1].startswith(f"ioa-prompt: {q.prompt}/{template.version}\n")


def test_templates_are_accounted_to_known_phases():
    assert all(t.phase in PHASES for t in PROMPTS.values())
    assert {t.phase for t in PROMPTS.values()} == set(PHASES)


def test_render_names_missing_fields():
    with pytest.raises(ValueError, match="prompt 'solve' needs field"):
        render("solve", question="q")
    with pytest.raises(ValueError, match="unknown prompt"):
        render("nope")


# ---------------------------------------------------------------- checkers


@pytest.mark.parametrize("check, reference, response, expected", [
    (check_numeric, "1234", "So she pays $1,234.\nAnswer: $1,234", True),
    (check_numeric, "$1,234", "Answer: 1234.0", True),
    (check_numeric, "1234", "The total is \\boxed{1234}.", True),
    (check_numeric, "1234", "#### 1,234", True),
    (check_numeric, "1234", "**Answer:** 1234 apples", True),
    (check_numeric, "1234", "<think>Answer: 1</think>It is 1234 in all.", True),
    (check_numeric, "1234", "Answer: 1243", False),
    (check_numeric, "1234", "Answer: 12340", False),
    (check_numeric, "1234", "I don't know.", False),
    (check_numeric, "0.5", "Answer: \\frac{1}{2}", True),
    (check_numeric, "3/4", "Answer: 0.75", True),
    (check_symbolic, "\\frac{1}{2}", "Answer: 0.5", True),
    (check_symbolic, "0.5", "so \\boxed{\\frac{1}{2}}", True),
    (check_symbolic, "x^2 + 2x + 1", "Answer: (x+1)^2", True),
    (check_symbolic, "\\frac{1}{2}", "Answer: 0.6", False),
    (check_choice, "B", "Answer: (B)", True),
    (check_choice, "(B)", "After all that, the answer is B.", True),
    (check_choice, "B", "B", True),
    (check_choice, "B", "Answer: (C)", False),
    (check_choice, "B", "The answer is a bit unclear.", False),
    (check_exact, "Paris", "Answer: paris.", True),
    (check_exact, "Paris", "The city.\nAnswer: Lyon", False),
    (check_exact, "x=3, y=-2", "Answer: x=3,  y=-2", True),
])
def test_checkers(check, reference, response, expected):
    assert check(reference, response) is expected


def test_checker_registry_builds_each_kind():
    assert set(CHECKERS) == {"numeric", "symbolic", "exact", "choice", "code", "judge"}
    p = Problem(id="p", module="m", difficulty=0.0, question="q", answer="12")
    assert make_checker("numeric").check_many([p, p], ["Answer: 12", "Answer: 13"]) == [True, False]
    with pytest.raises(ValueError, match="judge checker needs the teacher's client"):
        make_checker("judge")
    with pytest.raises(ValueError, match="unknown check kind"):
        make_checker("vibes")


def test_program_with_tests_joins_code_tests_and_check_call():
    assert (program_with_tests("def f():\n    return 1", "assert f() == 1")
            == "def f():\n    return 1\n\n\nassert f() == 1\n")
    program = program_with_tests("def f(x): return x", "def check(candidate):\n    assert candidate(2) == 2", "f")
    assert program.endswith("check(f)\n")


@pytest.mark.skipif(importlib.util.find_spec("ioa.evaluation.sandbox") is None,
                    reason="ioa.evaluation.sandbox (the code sandbox) is not in this checkout yet")
def test_code_checker_runs_tests_in_the_sandbox():
    backend = ScriptedBackend()
    domain = LLMDomain(load_domain_spec("python-functions"), backend)
    teacher = LLMTeacher(domain, backend)
    problem = domain.generate("list_functions", 0.5, 3)
    (solution,) = teacher.solve([problem])
    k = problem.meta["entry_point"].split("_")[1]
    broken = f"```python\ndef {problem.meta['entry_point']}(xs):\n    return [x - {k} for x in xs]\n```"
    assert domain.check_many([problem, problem], [solution.raw, broken]) == [True, False]
    assert solution.answer.startswith(f"def {problem.meta['entry_point']}")


def test_judge_checks_through_the_teacher():
    backend = ScriptedBackend()
    domain = LLMDomain(load_domain_spec("instructions"), backend)
    problem = domain.generate("format_constraints", 0.5, 2)
    n = int(problem.question.split()[1])
    good = "\n".join(f"{i}. A short tip." for i in range(1, n + 1))
    bad = "1. Only one tip."
    assert domain.check_many([problem, problem], [good, bad]) == [True, False]
    assert domain.check_step("3", "A list of 3 tips has 3 items.\nAnswer: 3")
    assert not domain.check_step("3", "Answer: 4")
    judged = [q for q in backend.requests if q.phase == "judge"]
    assert {q.prompt for q in judged} == {"judge", "judge_correct"}


def test_judge_verdict_reasked_when_missing():
    backend = ScriptedBackend(override=replies("Looks fine to me."))
    checker = make_checker("judge", CheckSettings(client=backend, domain_name="instructions", rubric="r"))
    p = Problem(id="p", module="m", difficulty=0.0, question="Say hi in 5 words or more.", answer="")
    assert checker.check_many([p], ["Hello there, my good friend, how are you today?"]) == [True]
    assert len(backend.requests) == 2 and "[[7]]" in backend.requests[1].messages[-1][1]


# ---------------------------------------------------------------- domain specs


def test_the_three_shipped_specs_load():
    assert builtin_specs() == ["gsm8k", "instructions", "python-functions"]
    kinds = {name: load_domain_spec(name).check for name in builtin_specs()}
    assert kinds == {"gsm8k": "numeric", "python-functions": "code", "instructions": "judge"}
    assert len(load_domain_spec("gsm8k").seed_examples) == 3
    assert load_domain_spec("instructions").judge_rubric


def test_spec_errors_name_the_file_and_field(tmp_path):
    path = tmp_path / "maths.yaml"
    path.write_text("name: maths\ndescription: sums\ncheck: vibes\nmax_modules: 0\n")
    with pytest.raises(DomainSpecError) as err:
        load_domain_spec(path)
    message = str(err.value)
    assert str(path) in message and "check:" in message and "max_modules:" in message and "'vibes'" in message
    path.write_text("name: maths\ncheck: numeric\n")
    with pytest.raises(DomainSpecError, match="description: Field required"):
        load_domain_spec(path)
    path.write_text("name: [unclosed\n")
    with pytest.raises(DomainSpecError, match=f"{path}: not valid YAML"):
        load_domain_spec(path)
    with pytest.raises(DomainSpecError, match="domain spec file not found"):
        load_domain_spec(tmp_path / "missing.yaml")
    with pytest.raises(DomainSpecError,
                       match="unknown domain spec 'chess'; built-in: gsm8k, instructions, python-functions"):
        load_domain_spec("chess")


def test_spec_modules_must_form_a_sound_hierarchy():
    text = ("name: t\ndescription: d\ncheck: exact\nmodules:\n"
            "  - {id: a, name: A, prerequisites: [b]}\n  - {id: b, name: B, prerequisites: [a]}\n")
    with pytest.raises(DomainSpecError, match="prerequisites form a cycle"):
        parse_domain_spec(text, "t.yaml")
    with pytest.raises(DomainSpecError, match=r"t.yaml.*\n.*modules.0.id"):
        parse_domain_spec("name: t\ndescription: d\ncheck: exact\nmodules: [{id: Bad, name: B}]\n", "t.yaml")


# ---------------------------------------------------------------- estimate


def test_estimate_run_hand_computed():
    spec = parse_domain_spec(
        "name: t\ndescription: d\ncheck: numeric\nmodules:\n  - {id: a, name: A}\n"
        "  - {id: b, name: B, prerequisites: [a]}\n", "t")
    cfg = RunConfig.model_validate({
        "probe": {"items_per_module": 2}, "synthesis": {"examples_per_module": 3, "remedial_examples_per_module": 1,
                                                        "max_remedial_rounds": 1, "replay_fraction": 0.5},
        "teacher": {"kind": "openai", "model": "m", "max_tokens": 100,
                    "prices": {"m": Price(input_per_mtok=1.0, output_per_mtok=2.0)}},
    })
    est = estimate_run(cfg, spec)
    # 2 modules x 2 probe items; the teacher answers each item and its 2 steps: 12 solves.
    # New examples 2 x 3 = 6, remedial 1 round x 2 x 1 = 2, replay made fresh 8 x 0.5 / 0.5 = 8: 16 made.
    calls = {(c["phase"], c["prompt"]): c["calls"] for c in est["calls"]}
    assert calls == {("identify", "probe_problems"): 4, ("identify", "solve"): 12, ("synthesize", "probe_problems"): 16,
                     ("synthesize", "solve"): 16, ("adapt", "adapt"): 16}
    assert est["n_modules"] == 2 and est["priced"]
    total = est["total"]
    assert total["calls"] == 64
    assert total["completion_tokens_max"] == 6400 and total["completion_tokens_typical"] == 3200
    per_call = {c["prompt"]: c["prompt_tokens_per_call"] for c in est["calls"]}
    solve = render("solve", domain_name="t", question="x" * 300, answer_format=ANSWER_FORMATS["numeric"])
    assert per_call["solve"] == sum(-(-len(c) // 4) for _, c in solve.messages)
    prompt_tokens = 20 * per_call["probe_problems"] + 28 * per_call["solve"] + 16 * per_call["adapt"]
    assert total["prompt_tokens"] == prompt_tokens
    assert total["cost_max"] == pytest.approx(prompt_tokens * 1e-6 + 6400 * 2e-6)
    assert total["cost_typical"] == pytest.approx(prompt_tokens * 1e-6 + 3200 * 2e-6)
    assert est["phases"]["identify"]["calls"] == 16


def test_estimate_counts_judge_calls_and_the_module_tree_call():
    cfg = RunConfig.model_validate({"probe": {"items_per_module": 2}, "synthesis": {
        "examples_per_module": 1, "remedial_examples_per_module": 0, "max_remedial_rounds": 0, "replay_fraction": 0.0}})
    est = estimate_run(cfg, load_domain_spec("instructions"), n_modules=2)
    calls = {(c["phase"], c["prompt"]): c["calls"] for c in est["calls"]}
    # judge: probes 2 learners x 4 problems + 2 verified + 2 rewrites + evaluation 2 x 1 x 3 + final 4
    assert calls[("judge", "judge")] == 8 + 2 + 2 + 6 + 4
    assert calls[("judge", "judge_correct")] == 2 * 4 * 2
    assert not est["priced"] and est["total"]["cost_max"] == 0.0
    gsm8k = estimate_run(cfg, load_domain_spec("gsm8k"))
    assert gsm8k["n_modules"] == 8  # the spec's max_modules: the teacher has not decomposed it yet
    assert (gsm8k["calls"][0]["prompt"], gsm8k["calls"][0]["calls"]) == ("domain_modules", 1)


def test_module_objects_pass_through_adapt_lookup():
    domain, teacher, _ = gsm8k()
    problems = teacher.make_problems("multi_step_problems", 0.5, 1, 9)
    concrete = Module("multi_step_problems", "Multi-step problems", 2, abstract=False)
    (text,) = teacher.adapt_many(problems, teacher.solve(problems), [concrete], AdapterConfig())
    assert not text.startswith("Idea:")  # the given module (not abstract here) wins over the domain's


# ---------------------------------------------------------------- how the student is asked


def test_problems_carry_their_domains_answer_format_into_prompts_and_examples():
    from ioa.answers import INSTRUCTION, answer_format_of, prompt_for
    from ioa.methods.error_targeted import as_problem
    from ioa.synthesize import synthesize

    backend = ScriptedBackend()
    domain = LLMDomain(load_domain_spec("python-functions"), backend, TeacherConfig())
    teacher = LLMTeacher(domain, backend, TeacherConfig())
    module = domain.modules()[0]
    problem = domain.generate(module.id, 0.3, 5)
    assert answer_format_of(problem) == domain.answer_format != INSTRUCTION
    assert prompt_for(problem).endswith("give the complete function in one ```python fenced block.")
    made = synthesize(teacher, domain, [module], {module.id: [0.2, 0.4]}, AdapterConfig(), set(), "s0r0", "synth", 0)
    assert made.examples
    for e in made.examples:
        assert e.prompt.endswith(domain.answer_format) and "Answer:" not in e.prompt
        assert e.meta["answer_format"] == domain.answer_format and e.meta["entry_point"]
        again = as_problem(e)  # error-targeted rebuilds the problem from its training example
        assert prompt_for(again) == e.prompt and again.meta["entry_point"] == e.meta["entry_point"]


def test_the_hf_student_stops_at_an_answer_line_only_when_the_format_asks_for_one():
    from ioa.students.hf import HFStudent

    class Recorder:  # stands in for the model half of HFStudent; respond() is the code under test
        def generate(self, prompts, **options):
            self.prompts, self.options = prompts, options
            return [""] * len(prompts)

    code = Problem(id="c", module="m", difficulty=0.1, question="Write f.", answer="assert f()",
                   meta={"answer_format": ANSWER_FORMATS["code"]})
    plain = Problem(id="p", module="m", difficulty=0.1, question="What is 2 + 2?", answer="4")
    rec = Recorder()
    HFStudent.respond(rec, [code])
    assert rec.options == {"answer_line_stop": False} and rec.prompts[0].endswith("```python fenced block.")
    HFStudent.respond(rec, [plain])
    assert rec.options == {"answer_line_stop": True} and rec.prompts[0].endswith("'Answer: <final answer>'.")
