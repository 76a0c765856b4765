"""The parts the proxy's unit tests build their use cases from, besides the SQLite store of
tests/unit/conftest.py: a blob store in the test's own folder (or in memory, a store shaped
like an object store, with no local files) and an offline upstream client, closed after the
test."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bodega.storage.filesystem import FilesystemBlobStore
from bodega.storage.memory_blobs import MemoryBlobStore
from bodega.upstream import UpstreamClient

# Nothing listens here: an offline use case never asks, and one that did would fail at once.
CLOSED_UPSTREAM = "http://127.0.0.1:9/simple/"


@pytest.fixture
def blobs(tmp_path: Path) -> FilesystemBlobStore:
    return FilesystemBlobStore(tmp_path / "blobs", tmp_path / "tmp")


@pytest.fixture
def memory_blobs() -> MemoryBlobStore:
    return MemoryBlobStore()


@pytest.fixture
async def offline_upstream() -> AsyncIterator[UpstreamClient]:
    client = await UpstreamClient.open(CLOSED_UPSTREAM, 5.0, "unit-test")
    try:
        yield client
    finally:
        await client.close()
