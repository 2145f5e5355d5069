"""Fixtures shared across test files: the killed-and-resumed smoke run (one per session; it takes
minutes with the real student)."""
from __future__ import annotations

import pytest
from cli_runs import killed_and_resumed_smoke_run


@pytest.fixture(scope="session")
def killed_and_resumed():
    yield from killed_and_resumed_smoke_run()
