"""A damaged SQLite file (threat list: corruption) is a StorageError that says what to do,
never a traceback from sqlite3."""

import sqlite3
from pathlib import Path

import pytest

from bodega.errors import StorageError
from bodega.storage.metadata import FIRST_INDEX, StoredRoot
from bodega.storage.sqlite import SqliteMetadataStore


async def test_a_file_that_is_no_database_fails_to_open_with_a_clear_error(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bodega.sqlite3"
    path.write_bytes(b"this is no database, just what a bad disk left " * 200)
    with pytest.raises(StorageError, match=r"is damaged .*move that file aside") as raised:
        await SqliteMetadataStore.open(path)
    assert str(path) in str(raised.value)


async def test_corruption_met_by_a_query_is_a_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "bodega.sqlite3"
    database = await SqliteMetadataStore.open(path)
    await database.index(FIRST_INDEX).put_root(StoredRoot("a" * 64, "b" * 64, 3, 0.0))
    await database.close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'root'").fetchone()
    db.close()
    # Overwrite the table's page (after the header page) with garbage.
    page_size = 4096
    with path.open("r+b") as file:
        file.seek((pages[0] - 1) * page_size)
        file.write(b"\xff" * page_size)
    database = await SqliteMetadataStore.open(path)
    try:
        with pytest.raises(StorageError, match="is damaged"):
            await database.index(FIRST_INDEX).get_root()
    finally:
        await database.close()
