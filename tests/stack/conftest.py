"""Fixtures every file of the stack test shares."""

from __future__ import annotations

import pytest

import memory as mem
from backends import COMPOSE


@pytest.fixture(scope="session", autouse=True)
def memory():
    """Samples the native stack's memory from before the first test's first request to the end
    of the session (test_memory_peaks_of_every_native_component reports it); None against
    compose."""
    if COMPOSE:
        yield None
        return
    sampler = mem.MemorySampler().start()
    yield sampler
    sampler.stop()
