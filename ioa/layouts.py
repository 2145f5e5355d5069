"""Layout bleed: how often an answer to one module's item is written in another module's layout.

A small student trained on one layout for every module answered multiplication facts with the
addition layout. To measure that without a hand-written rule per domain, a line's *shape* is its
first three tokens with every number replaced by `#` ("Ones: 8 + 5 = 13." -> "ones: # +"), and a
module's layout is the set of shapes in the worked solutions the run trained it on (raw and adapted).
An answer to module A bleeds when it has a line whose shape belongs to another module's layout and
never to A's. Lines from the `Answer:` line on are ignored. Pure functions.
"""
from __future__ import annotations

import re
from typing import Iterable, Mapping

NUMBER = re.compile(r"\d+(?:[.,/]\d+)*")


def line_shape(line: str) -> str:
    return " ".join(NUMBER.sub("#", line.strip().lower()).split()[:3])


def shapes(text: str) -> set[str]:
    """The shapes of a text's lines before its answer line (blank lines and the answer line left out)."""
    out = set()
    for line in text.splitlines():
        if line.strip().lower().startswith("answer:"):
            break
        if line.strip():
            out.add(line_shape(line))
    return out


def module_layouts(examples: Iterable[Mapping[str, str]]) -> dict[str, set[str]]:
    """module -> the shapes of the solutions it was trained on (each example's completion and raw text)."""
    out: dict[str, set[str]] = {}
    for e in examples:
        layout = out.setdefault(e["module"], set())
        layout |= shapes(e.get("completion", "")) | shapes(e.get("raw", ""))
    return out


def bleeds(module: str, response: str, layouts: Mapping[str, set[str]]) -> bool:
    """Whether `response` to an item of `module` carries a line shaped like another module's only."""
    own = layouts.get(module, set())
    foreign = set().union(*(v for k, v in layouts.items() if k != module)) - own
    return bool(shapes(response) & foreign)


def bleed_share(items: Iterable[Mapping[str, str]], layouts: Mapping[str, set[str]]) -> dict[str, float]:
    """module -> share of its answered items (`module`, `response`) that bleed; modules without a layout skipped."""
    counts: dict[str, list[int]] = {}
    for it in items:
        if it["module"] not in layouts:
            continue
        c = counts.setdefault(it["module"], [0, 0])
        c[0] += bleeds(it["module"], it.get("response") or "", layouts)
        c[1] += 1
    return {m: round(k / n, 6) for m, (k, n) in sorted(counts.items())}
