"""Every teacher: the Teacher protocol (`base.py`), the procedural teacher of built-in domains, the
budget meter (`metered.py`), and the LLM teacher (`llm.py`, over the chat transport in `ioa.llm`) with
the cost estimate of an LLM-taught run (`estimate.py`, `ioa run --dry-run`).

Below, the registry of teachers: config `teacher.kind` -> factory(domain)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from ioa.domains.base import Domain
from ioa.teachers.base import Teacher
from ioa.teachers.procedural import ProceduralTeacher

TEACHERS: dict[str, Callable[[Domain], Teacher]] = {
    "procedural": ProceduralTeacher,
}


def load_domain_and_teacher(cfg, cache_dir: Path, ledger_path: Path | None, run_dir: Path | None = None):
    """(domain, teacher, client) for a run. The procedural teacher serves built-in domains; an LLM teacher
    (`teacher.kind` openai or hf, through the cached, metered TeacherClient) serves built-in domains and
    YAML-described ones (`domain:` a shipped spec name such as gsm8k, or a path to a .yaml file)."""
    from ioa.domains import DOMAINS, load_domain

    if cfg.teacher.kind == "procedural":
        if cfg.domain not in DOMAINS:
            from ioa.domains.spec import builtin_specs

            described = cfg.domain in builtin_specs() or Path(cfg.domain).suffix in (".yaml", ".yml")
            if not described:
                raise ValueError(f"unknown domain {cfg.domain!r}; built in: {', '.join(sorted(DOMAINS))}; "
                                 f"described in YAML (with an LLM teacher): {', '.join(builtin_specs())}, "
                                 "or a path to a .yaml file")
            raise ValueError(f"domain {cfg.domain!r} is described in YAML and needs an LLM teacher: set teacher.kind "
                             "to openai or hf (the procedural teacher only knows the built-in domains)")
        domain = load_domain(cfg.domain)
        return domain, load_teacher("procedural", domain), None
    from ioa.llm.client import build_client
    from ioa.teachers.llm import LLMTeacher

    client = build_client(cfg, cache_dir, ledger_path, run_dir=run_dir)
    if cfg.domain in DOMAINS:
        from ioa.domains.builtin_view import BuiltinDomainView

        domain = load_domain(cfg.domain)
        return domain, LLMTeacher(BuiltinDomainView(domain), client, cfg.teacher), client
    from ioa.domains.llm import LLMDomain
    from ioa.domains.spec import load_domain_spec

    domain = LLMDomain(load_domain_spec(cfg.domain), client, cfg.teacher)
    return domain, LLMTeacher(domain, client, cfg.teacher), client


def load_teacher(kind: str, domain: Domain) -> Teacher:
    try:
        return TEACHERS[kind](domain)
    except KeyError:
        raise ValueError(f"unknown teacher kind {kind!r}; known: {', '.join(sorted(TEACHERS))}") from None
