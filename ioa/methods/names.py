"""The names a run's `method:` can take, in the order comparisons list them.

One tuple that both the config (its `method` choices) and the registry (ioa.methods.registry, which
maps each name to its Method) read, so the config never imports the methods and the engine behind
them; tests/test_methods.py checks that the registry holds exactly these names.
"""
from __future__ import annotations

METHOD_NAMES = ("ioa", "vanilla", "easy-to-hard", "self-instruct", "error-targeted", "ioa-no-identifier",
                "ioa-no-organizer", "ioa-no-adapter")
