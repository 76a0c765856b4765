"""What the unit tests of more than one layer build on: a fresh SQLite store in the test's own
folder, closed after it."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bodega.storage.sqlite import SqliteMetadataStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteMetadataStore]:
    opened = await SqliteMetadataStore.open(tmp_path / "db.sqlite3")
    try:
        yield opened
    finally:
        await opened.close()
