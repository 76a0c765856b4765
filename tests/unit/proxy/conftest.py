"""The parts the proxy's unit tests build their use cases from, besides the SQLite store of
tests/unit/conftest.py: a blob store in the test's own folder (or in memory, a store shaped
like an object store, with no local files) and an offline upstream."""

from pathlib import Path

import pytest

from bodega.storage.filesystem import FilesystemBlobStore
from bodega.storage.memory_blobs import MemoryBlobStore
from bodega.upstream.offline import OfflineUpstream

# Nothing is ever asked of it: an offline upstream contacts nothing.
UNREACHED_UPSTREAM = "http://127.0.0.1:9/simple/"


@pytest.fixture
def blobs(tmp_path: Path) -> FilesystemBlobStore:
    return FilesystemBlobStore(tmp_path / "blobs", tmp_path / "tmp")


@pytest.fixture
def offline_upstream() -> OfflineUpstream:
    return OfflineUpstream(UNREACHED_UPSTREAM)


@pytest.fixture
def memory_blobs() -> MemoryBlobStore:
    return MemoryBlobStore()
