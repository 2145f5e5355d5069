"""Methods a run can use (`method:` in the config): IOA, its ablations, and the baselines it is compared with.

All share the teacher, student, domain, training recipe and budget. Ablations are IOA with one part
switched off, expressed as a config change here plus two hooks in the loop (the Identifier's targeting
and the Organizer's curriculum); baselines replace the staged loop (ioa.methods.baselines).
"""
from __future__ import annotations

from ioa.config import RunConfig

BASELINES = ("vanilla", "easy-to-hard", "self-instruct", "error-targeted")
ABLATIONS = ("ioa-no-identifier", "ioa-no-organizer", "ioa-no-adapter")


def is_baseline(method: str) -> bool:
    return method in BASELINES


def method_config(cfg: RunConfig) -> RunConfig:
    """The settings a method actually runs with.

    ioa-no-adapter: the teacher's raw solutions (decompose, template, simplify, analogies, expand_steps off); the load
    ramp stays, as it orders difficulty rather than rewriting text. ioa-no-organizer: no gates
    (no remedial rounds) and no difficulty ramp; its one stage takes the whole budget (loop.one_stage_takes_the_budget).
    Baselines train on raw solutions too.
    """
    if cfg.method in ("ioa-no-adapter", *BASELINES):
        adapter = cfg.adapter.model_copy(update={"decompose": False, "template": False, "simplify": False,
                                                 "analogies": False, "expand_steps": False})
        cfg = cfg.model_copy(update={"adapter": adapter})
    if cfg.method == "ioa-no-organizer":
        cfg = cfg.model_copy(update={
            "adapter": cfg.adapter.model_copy(update={"load_ramp": False}),
            "synthesis": cfg.synthesis.model_copy(update={"max_remedial_rounds": 0}),
        })
    return cfg
