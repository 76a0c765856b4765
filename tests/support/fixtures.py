"""Pytest fixtures for the test support code; import them into conftest.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .fake_index import FakeIndex


@pytest.fixture
def fake_index() -> Iterator[FakeIndex]:
    """A started FakeIndex, stopped (thread joined, sockets closed) after the test.

    It runs on its own thread and loop, so it suits sync tests (subprocess pip) and async ones.
    """
    with FakeIndex() as index:
        yield index
