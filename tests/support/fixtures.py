"""Pytest fixtures for the test support code; import them into conftest.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .clients import isolated_env, published_tree
from .distributions import BuiltFile
from .fake_index import FakeIndex
from .servers import BodegaProcess, bodega_process


@pytest.fixture
def fake_index() -> Iterator[FakeIndex]:
    """A started FakeIndex, stopped (thread joined, sockets closed) after the test.

    It runs on its own thread and loop, so it suits sync tests (subprocess pip) and async ones.
    """
    with FakeIndex() as index:
        yield index


@pytest.fixture
def published(fake_index: FakeIndex) -> dict[str, list[BuiltFile]]:
    """The dependency tree the installer tests resolve, put on the fake index."""
    files = published_tree()
    for project, built in files.items():
        for file in built:
            fake_index.add(project, file)
    return files


@pytest.fixture
def bodega(
    tmp_path: Path, fake_index: FakeIndex, published: dict[str, list[BuiltFile]]
) -> Iterator[BodegaProcess]:
    """bodega as a subprocess in front of the published tree, with a 600 s page TTL, so only
    a client's own revalidation can show a new release. It gets the dead proxies too: it may
    reach the fake index on 127.0.0.1 and nothing else."""
    proxies = {k: v for k, v in isolated_env().items() if k.upper().endswith("_PROXY")}
    with bodega_process(
        tmp_path / "data", fake_index.simple_url, "--index-ttl", "600", env=proxies
    ) as server:
        yield server
