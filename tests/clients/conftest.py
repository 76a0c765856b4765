"""The client suite: real installers, pinned in venvs of their own, through a real bodega
(a subprocess) in front of the fake upstream index."""

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.clients import isolated_env, published_tree
from tests.support.distributions import BuiltFile
from tests.support.fake_index import FakeIndex
from tests.support.servers import BodegaProcess, bodega_process


@pytest.fixture
def published(fake_index: FakeIndex) -> dict[str, list[BuiltFile]]:
    files = published_tree()
    for project, built in files.items():
        for file in built:
            fake_index.add(project, file)
    return files


@pytest.fixture
def bodega(
    tmp_path: Path, fake_index: FakeIndex, published: dict[str, list[BuiltFile]]
) -> Iterator[BodegaProcess]:
    """bodega with a 600 s page TTL, so only a client's own revalidation can show a new
    release. It gets the dead proxies too: it may reach the fake index and nothing else."""
    proxies = {k: v for k, v in isolated_env().items() if k.upper().endswith("_PROXY")}
    with bodega_process(
        tmp_path / "data", fake_index.simple_url, "--index-ttl", "600", env=proxies
    ) as server:
        yield server


def served(server: BodegaProcess, request_line: str) -> bool:
    """Whether bodega's access log shows this request line answered 200. The log is read on
    another thread, so a line may land just after the client exits: wait a little for it."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if any(f'"{request_line} HTTP/1.1" 200' in line for line in list(server.log)):
            return True
        time.sleep(0.05)
    return False
