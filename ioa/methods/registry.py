"""Every method a run can use, by its config name: adding a method is its file plus one line here (and
its name in ioa.methods.names, which the config reads)."""
from __future__ import annotations

from typing import Any

from ioa import loop
from ioa.context import Context
from ioa.methods.base import Method
from ioa.methods.easy_to_hard import EasyToHard
from ioa.methods.error_targeted import ErrorTargeted
from ioa.methods.ioa import IOA
from ioa.methods.self_instruct import SelfInstruct
from ioa.methods.vanilla import Vanilla

METHODS: dict[str, Method] = {m.name: m for m in (
    IOA(),
    Vanilla(),
    EasyToHard(),
    SelfInstruct(),
    ErrorTargeted(),
    IOA("ioa-no-identifier", identify=False),
    IOA("ioa-no-organizer", organize=False),
    IOA("ioa-no-adapter", adapt=False),
)}


def run(ctx: Context) -> dict[str, Any]:
    """The method the run's config names, on its run directory (ioa.loop.run); returns the summary."""
    return loop.run(ctx, METHODS[ctx.cfg.method])
