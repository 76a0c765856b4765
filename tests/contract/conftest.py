"""Every metadata store implementation, for the contract suites: each test runs on SQLite (a
real file in the test's folder) and on the in-memory fake."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bodega.storage.memory_metadata import MemoryMetadataStore
from bodega.storage.metadata import FIRST_INDEX, MetadataStore, SharedMetadataStore
from bodega.storage.sqlite import SqliteMetadataStore


@pytest.fixture(params=["sqlite", "memory"])
async def database(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[SharedMetadataStore]:
    opened: SharedMetadataStore
    if request.param == "sqlite":
        opened = await SqliteMetadataStore.open(tmp_path / "db.sqlite3")
    else:
        opened = MemoryMetadataStore()
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def store(database: SharedMetadataStore) -> MetadataStore:
    """The metadata of the index root/pypi."""
    return database.index(FIRST_INDEX)
