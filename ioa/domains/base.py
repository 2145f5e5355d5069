"""The Domain protocol: a tree of knowledge modules with problem generators and answer checkers, and
the optional capabilities some domains have (each its own protocol, checked with isinstance).

A domain knows its modules, can make a problem for a module at a difficulty d in [0, 1] from a seed,
and can check a free-text response against a problem. It may also declare the prerequisite graph its
author intended; that is used only by tests and reports to judge what the Identifier discovers, never
by the Identifier itself.
"""
from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

from ioa.types import Module, Problem, Step


@runtime_checkable
class Domain(Protocol):
    name: str

    def modules(self) -> list[Module]:
        """All modules, foundations first."""
        ...

    def generate(self, module_id: str, difficulty: float, seed: int) -> Problem:
        """A problem for `module_id` at `difficulty`; the same seed gives the same problem."""
        ...

    def check(self, problem: Problem, response: str) -> bool:
        """Whether a free-text response (worked solution ending in an answer) is correct."""
        ...

    def check_step(self, step_answer: str, response: str) -> bool:
        """Whether a response answers a sub-question whose exact answer is `step_answer`."""
        ...

    def declared_prerequisites(self) -> list[tuple[str, str]]:
        """(prerequisite, dependent) pairs the domain's author intended."""
        ...


@runtime_checkable
class GeneratesMany(Protocol):
    """Optional: many problems in one batch (an LLM-written domain sends the requests concurrently)."""

    def generate_many(self, specs: Sequence[tuple[str, float, int]]) -> list[Problem]:
        """One problem per (module, difficulty, seed), in order."""
        ...


@runtime_checkable
class ChecksMany(Protocol):
    """Optional: many responses checked in one batch (an LLM judge checks them concurrently)."""

    def check_many(self, problems: Sequence[Problem], responses: Sequence[str]) -> list[bool]:
        """`check` for each (problem, response) pair, in order."""
        ...


@runtime_checkable
class WorksSteps(Protocol):
    """Optional domain capability: the worked lines of one step of a composite problem, in the form
    that step's own module is taught in (the Adapter's `expand_steps` writes them out where the student
    has not mastered that module)."""

    def worked_step(self, step: Step) -> list[str] | None:
        """The step's solving lines, ending on a line that states its result; None when this domain
        has no worked form for it."""
        ...


@runtime_checkable
class PosesSteps(Protocol):
    """Optional domain capability: one step of a composite problem posed as a problem of its own module, so the
    Adapter's `expand_steps` writes the step in the form that module is trained in (explicit digits, carry and
    borrow steps), not only in the teacher's lines for it."""

    def step_problem(self, step: Step) -> Problem | None:
        """The step as a problem of `step.module` (its question, answer, worked lines and whatever the domain's
        forms read); None when the domain cannot pose it."""
        ...


@runtime_checkable
class WritesExplicitDigits(Protocol):
    """Optional domain capability: a problem's solution with every digit a line uses named by its place
    before use and a running result, where its module works digit by digit (the Adapter's
    `explicit_digits` trains on these instead of the teacher's lines)."""

    def explicit_lines(self, problem: Problem) -> list[str] | None:
        """The solving lines, ending on a line that states the result; None for modules without
        digit-by-digit work."""
        ...


@runtime_checkable
class WritesCarrySteps(Protocol):
    """Optional domain capability: solving lines in which a sum of three terms with a carry is taken as two
    sums of two, the carry first (the Adapter's `carry_steps` rewrites any of the domain's forms with it)."""

    def carry_step_lines(self, lines: list[str]) -> list[str]:
        """The same lines with each column sum that adds a carry as a third term written as two sums; the
        other lines unchanged."""
        ...


@runtime_checkable
class WritesBorrowSteps(Protocol):
    """Optional domain capability: solving lines in which a borrowed difference with a teen minuend is taken
    through ten, a complement of ten and an addition fact (the Adapter's `borrow_steps` rewrites any of the
    domain's forms with it)."""

    def borrow_step_lines(self, lines: list[str]) -> list[str]:
        """The same lines with each borrowed column difference (`17 - 8 = 9`) written through ten
        (`10 - 8 = 2, 2 + 7 = 9`); the other lines unchanged."""
        ...


@runtime_checkable
class WritesPeeledColumns(Protocol):
    """Optional domain capability: a digit-by-digit solution in which each column line is followed by
    the numbers without the digits used so far, so every column takes last digits (the Adapter's
    `peel_columns` trains on these instead of the teacher's lines)."""

    def peeled_lines(self, problem: Problem) -> list[str] | None:
        """The solving lines, ending on a line that states the result; None for modules without
        digit-by-digit work."""
        ...


@runtime_checkable
class WritesAtomicSteps(Protocol):
    """Optional domain capability: a problem's solution in steps a student who knows the lower modules
    can each take in one line (the Adapter's `atomic_steps` trains on these instead of the teacher's
    lines)."""

    def atomic_lines(self, problem: Problem) -> list[str] | None:
        """The solving lines, ending on a line that states the result; None when the teacher's own
        lines already are such steps."""
        ...


@runtime_checkable
class WritesTableSteps(Protocol):
    """Optional domain capability: a problem's solution that writes out a whole table of results the
    student can build one from the last (a times table written as divisions), so that the result asked
    for is read off a line the table already holds (the Adapter's `table_steps` trains on these)."""

    def table_lines(self, problem: Problem) -> list[str] | None:
        """The solving lines, ending on a line that states the result; None for modules without such
        a form."""
        ...


@runtime_checkable
class WritesStoppedTable(Protocol):
    """Optional domain capability: a table of results built one from the last, written only up to the line
    that holds the result asked for, which the answer line then repeats (the Adapter's `table_stop`)."""

    def stopped_table_lines(self, problem: Problem) -> list[str] | None:
        """The solving lines, ending on a line that states the result; None for modules without such
        a form."""
        ...


@runtime_checkable
class WritesLongDivision(Protocol):
    """Optional domain capability: a division whose quotient the teacher states in one line, found instead one
    quotient digit at a time, each digit a times-table fact and a small subtraction (the Adapter's
    `long_division` trains on these)."""

    def long_division_lines(self, problem: Problem) -> list[str] | None:
        """The solving lines, ending on a line that states the result; None for modules without such a form."""
        ...


@runtime_checkable
class WritesCheckedSteps(Protocol):
    """Optional domain capability: a problem's solution in which a result the student would have to
    recall in one shot is found by steps it can check with what it knows (the Adapter's `checked_steps`
    trains on these instead of the teacher's lines)."""

    def checked_lines(self, problem: Problem) -> list[str] | None:
        """The solving lines, ending on a line that states the result; None for modules without such
        a form."""
        ...
