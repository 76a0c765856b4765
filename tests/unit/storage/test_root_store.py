"""The root list's record in the real SQLite store: its renderings, their gzip copies, and
the blobs eviction must never take."""

import sqlite3
from contextlib import closing
from dataclasses import replace
from pathlib import Path

from bodega.storage.metadata import FIRST_INDEX, StoredRoot
from bodega.storage.sqlite import SqliteMetadataStore
from bodega.storage.sqlite_schema import MIGRATIONS

ROOT = StoredRoot("a" * 64, "b" * 64, 3, 100.0)
COMPRESSED = replace(ROOT, html_gzip_key="c" * 64, json_gzip_key="d" * 64)


async def test_a_root_stored_before_gzip_copies_existed_opens_without_them(
    tmp_path: Path,
) -> None:
    path = tmp_path / "db.sqlite3"
    with closing(sqlite3.connect(path)) as db:
        for number, script in enumerate(MIGRATIONS[:4], start=1):
            db.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")
        with db:
            db.execute(
                "INSERT INTO root VALUES (1, ?, ?, 3, 100.0)", (ROOT.html_key, ROOT.json_key)
            )
    database = await SqliteMetadataStore.open(path)
    store = database.index(FIRST_INDEX)
    try:
        assert await store.get_root() == ROOT
        assert await store.add_root_gzip(COMPRESSED)
        assert await store.get_root() == COMPRESSED
    finally:
        await database.close()
