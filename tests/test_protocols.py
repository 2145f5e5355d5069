"""Every teacher, student, domain and chat backend, real or test fake, against the protocols it claims,
and none claiming an optional capability it lacks.

Light objects are built and checked with isinstance; the heavy ones (the Hugging Face student and
backend, which load a model, and the OpenAI backend, which starts a thread) are checked on their class:
every method the protocol declares is defined, every attribute it declares is set in `__init__`.
"""
from __future__ import annotations

import ast
import inspect
import textwrap
from typing import Protocol

import pytest
from fakes import LearningFake
from scripted_teacher import ScriptedBackend
from test_eval_run import BatchingModel, FixedJudge, ScriptedModel
from test_methods import BenchmarkAnsweringFake

from ioa.chat import ChatBackend, Closes, CountsTokens
from ioa.config import TeacherConfig
from ioa.domains.arithmetic import ArithmeticDomain
from ioa.domains.base import (
    ChecksMany,
    Domain,
    GeneratesMany,
    WorksSteps,
    WritesAtomicSteps,
    WritesCarrySteps,
    WritesExplicitDigits,
    WritesPeeledColumns,
)
from ioa.domains.builtin_view import BuiltinDomainView
from ioa.domains.llm import LLMDomain
from ioa.domains.spec import load_domain_spec
from ioa.evaluation.runner import LocalChatBackend
from ioa.llm.accounting import Ledger
from ioa.llm.cache import ResponseCache
from ioa.llm.client import TeacherClient
from ioa.llm.hf_backend import HFBackend
from ioa.llm.openai_backend import OpenAIBackend
from ioa.students.base import Generator, Learner, ReportsGeneration, ReportsPrecision, ReportsSource, Student
from ioa.students.hf import HFStudent
from ioa.students.simulated import SimulatedLearner
from ioa.teachers.base import AdaptsSolutions, MakesProblemsInBatches, Metered, Teacher, WritesTasks
from ioa.teachers.llm import LLMTeacher
from ioa.teachers.metered import MeteredTeacher, unmetered
from ioa.teachers.procedural import ProceduralTeacher

TEACHER_CAPABILITIES = (MakesProblemsInBatches, AdaptsSolutions, WritesTasks, Metered)
DOMAIN_CAPABILITIES = (GeneratesMany, ChecksMany, WorksSteps, WritesAtomicSteps, WritesExplicitDigits,
                       WritesPeeledColumns, WritesCarrySteps)
GENERATOR_CAPABILITIES = (ReportsSource, ReportsPrecision, ReportsGeneration)
BACKEND_CAPABILITIES = (CountsTokens, Closes)


def members(proto: type) -> tuple[set[str], set[str]]:
    """(methods, attributes) a protocol declares, its protocol bases' included."""
    methods: set[str] = set()
    attributes: set[str] = set()
    for base in proto.__mro__:
        if base is Protocol or not base.__dict__.get("_is_protocol"):
            continue
        attributes |= set(base.__dict__.get("__annotations__", {}))
        methods |= {n for n, v in vars(base).items() if callable(v) and not n.startswith("_")}
    return methods, attributes


def set_in_init(cls: type) -> set[str]:
    """Attributes `cls.__init__` assigns on self (`self.x = ...`, `self.x: T = ...`)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls.__init__)))
    names = set()
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) \
            else []
        for t in targets:
            for leaf in ast.walk(t):
                if isinstance(leaf, ast.Attribute) and isinstance(leaf.value, ast.Name) and leaf.value.id == "self":
                    names.add(leaf.attr)
    return names


def satisfies(obj, proto: type) -> bool:
    """isinstance, and every declared method callable (isinstance alone only asks that the names exist)."""
    methods, _ = members(proto)
    return isinstance(obj, proto) and all(callable(getattr(obj, m)) for m in methods)


def class_satisfies(cls: type, proto: type) -> bool:
    methods, attributes = members(proto)
    return (all(callable(getattr(cls, m, None)) for m in methods)
            and all(hasattr(cls, a) or a in set_in_init(cls) for a in attributes))


def check(obj_or_cls, protocols: tuple[type, ...], capabilities: tuple[type, ...], has: tuple[type, ...]) -> None:
    """`protocols` and the capabilities in `has` are met; the other `capabilities` are not."""
    test = class_satisfies if isinstance(obj_or_cls, type) else satisfies
    for proto in protocols + has:
        assert test(obj_or_cls, proto), f"{obj_or_cls!r} does not meet {proto.__name__}"
    for proto in set(capabilities) - set(has):
        assert not test(obj_or_cls, proto), f"{obj_or_cls!r} claims {proto.__name__}"


ARITHMETIC = ArithmeticDomain()


def llm_domain():
    backend = ScriptedBackend()
    return LLMDomain(load_domain_spec("gsm8k"), backend, TeacherConfig()), backend


def teachers():
    domain, backend = llm_domain()
    procedural = ProceduralTeacher(ARITHMETIC)
    llm = LLMTeacher(domain, backend)
    on_builtin = LLMTeacher(BuiltinDomainView(ARITHMETIC), backend)
    return [
        (procedural, (WritesTasks,)),
        (MeteredTeacher(procedural), (WritesTasks, Metered)),
        (llm, (MakesProblemsInBatches, AdaptsSolutions)),
        (on_builtin, (MakesProblemsInBatches, AdaptsSolutions)),
        # the meter writes tasks for any teacher (its new_task forwards); its other capabilities are the inner one's
        (MeteredTeacher(llm), (MakesProblemsInBatches, AdaptsSolutions, WritesTasks, Metered)),
    ]


@pytest.mark.parametrize("teacher, has", teachers(),
                         ids=["procedural", "metered-procedural", "llm", "llm-on-builtin", "metered-llm"])
def test_teachers_meet_the_teacher_protocol_and_only_their_capabilities(teacher, has):
    check(teacher, (Teacher, Learner), TEACHER_CAPABILITIES, has)


def test_whether_a_metered_teacher_writes_tasks_is_asked_of_the_teacher_it_wraps():
    domain, backend = llm_domain()
    assert isinstance(unmetered(MeteredTeacher(ProceduralTeacher(ARITHMETIC))), WritesTasks)
    assert not isinstance(unmetered(MeteredTeacher(LLMTeacher(domain, backend))), WritesTasks)


def test_domains_meet_the_domain_protocol_and_only_their_capabilities():
    domain, _ = llm_domain()
    check(ARITHMETIC, (Domain,), DOMAIN_CAPABILITIES, (WorksSteps, WritesAtomicSteps, WritesExplicitDigits,
                                                                  WritesPeeledColumns, WritesCarrySteps))
    check(domain, (Domain,), DOMAIN_CAPABILITIES, (GeneratesMany, ChecksMany))
    check(BuiltinDomainView(ARITHMETIC), (Domain,), DOMAIN_CAPABILITIES, (GeneratesMany, ChecksMany))


def test_students_learners_and_generators_meet_their_protocols():
    prerequisites = ARITHMETIC.declared_prerequisites()
    check(HFStudent, (Student, Learner, Generator), GENERATOR_CAPABILITIES, GENERATOR_CAPABILITIES)
    check(LearningFake({}, prerequisites), (Student, Learner), (Generator,), ())
    check(SimulatedLearner({}), (Learner,), (Student, Generator), ())
    fake = BenchmarkAnsweringFake({}, prerequisites)
    check(fake, (Student, Generator), GENERATOR_CAPABILITIES, ())
    fake.generate(["a prompt"])
    check(fake, (Student, Generator), GENERATOR_CAPABILITIES, (ReportsGeneration,))  # once it has generated
    for model in (ScriptedModel(lambda p: "x"), BatchingModel(lambda p: "x")):
        check(model, (Generator,), GENERATOR_CAPABILITIES, (ReportsSource, ReportsGeneration))


def test_chat_backends_meet_the_backend_protocol_and_only_their_capabilities(tmp_path):
    scripted = ScriptedBackend()
    check(scripted, (ChatBackend,), BACKEND_CAPABILITIES, ())
    check(FixedJudge(), (ChatBackend,), BACKEND_CAPABILITIES, ())
    check(HFBackend, (ChatBackend,), BACKEND_CAPABILITIES, (CountsTokens,))
    check(OpenAIBackend, (ChatBackend,), BACKEND_CAPABILITIES, (Closes,))
    check(LocalChatBackend, (ChatBackend,), BACKEND_CAPABILITIES, ())
    with TeacherClient(scripted, ResponseCache(tmp_path / "cache.sqlite"), Ledger(tmp_path / "calls.jsonl")) as client:
        check(client, (ChatBackend,), BACKEND_CAPABILITIES, (Closes,))
        assert isinstance(client.cache, Closes) and isinstance(client.ledger, Closes)
