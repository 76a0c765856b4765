"""What the unit tests of more than one layer build on: a fresh SQLite store in the test's own
folder, closed after it, and root/pypi's share of it."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bodega.storage.metadata import FIRST_INDEX
from bodega.storage.sqlite import SqliteIndexStore, SqliteMetadataStore


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[SqliteMetadataStore]:
    opened = await SqliteMetadataStore.open(tmp_path / "db.sqlite3")
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def store(database: SqliteMetadataStore) -> SqliteIndexStore:
    """The metadata of the index root/pypi: what the proxy's use cases are given."""
    return database.index(FIRST_INDEX)
