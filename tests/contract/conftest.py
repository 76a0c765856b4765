"""Every metadata store implementation, for the contract suites: each test runs on SQLite (a
real file in the test's folder), on PostgreSQL (a fresh database on the session's throwaway
server) and on the in-memory fake."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bodega.storage.memory_metadata import MemoryMetadataStore
from bodega.storage.metadata import FIRST_INDEX, MetadataStore, SharedMetadataStore
from bodega.storage.postgres import PostgresMetadataStore
from bodega.storage.sqlite import SqliteMetadataStore


@pytest.fixture(params=["sqlite", "postgres", "memory"])
async def database(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[SharedMetadataStore]:
    opened: SharedMetadataStore
    if request.param == "sqlite":
        opened = await SqliteMetadataStore.open(tmp_path / "db.sqlite3")
    elif request.param == "postgres":
        # Asked for here, not as an argument: only the PostgreSQL runs start the server.
        opened = await PostgresMetadataStore.open(request.getfixturevalue("postgres_dsn"))
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
