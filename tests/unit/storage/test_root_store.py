"""The root list's record in the real SQLite store: its renderings, their gzip copies, and
the blobs eviction must never take."""

import sqlite3
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import pytest

from bodega.storage.metadata import FIRST_INDEX, StoredRoot
from bodega.storage.sqlite import _MIGRATIONS, SqliteIndexStore, SqliteMetadataStore

ROOT = StoredRoot("a" * 64, "b" * 64, 3, 100.0)
COMPRESSED = replace(ROOT, html_gzip_key="c" * 64, json_gzip_key="d" * 64)


async def test_a_root_stored_before_gzip_copies_existed_opens_without_them(
    tmp_path: Path,
) -> None:
    path = tmp_path / "db.sqlite3"
    with closing(sqlite3.connect(path)) as db:
        for number, script in enumerate(_MIGRATIONS[:4], start=1):
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


async def test_gzip_copies_are_recorded_only_for_the_renderings_they_were_made_from(
    store: SqliteIndexStore,
) -> None:
    assert await store.put_root(ROOT) == ROOT
    newer = StoredRoot("e" * 64, "f" * 64, 4, 200.0)
    await store.put_root(newer)
    assert not await store.add_root_gzip(COMPRESSED)  # made from a list replaced meanwhile
    assert await store.get_root() == newer


async def test_a_refresh_with_the_same_renderings_keeps_their_gzip_copies(
    store: SqliteIndexStore,
) -> None:
    await store.put_root(ROOT)
    await store.add_root_gzip(COMPRESSED)
    refreshed = replace(ROOT, fetched_at=300.0)
    assert await store.put_root(refreshed) == replace(COMPRESSED, fetched_at=300.0)
    changed = StoredRoot("e" * 64, "f" * 64, 4, 400.0)
    assert await store.put_root(changed) == changed  # other renderings: no copies yet
    assert not (await store.get_root() or ROOT).is_compressed


@pytest.mark.parametrize("root", [ROOT, COMPRESSED])
async def test_eviction_never_offers_a_blob_the_root_list_is_served_from(
    store: SqliteIndexStore, root: StoredRoot
) -> None:
    await store.put_root(root)
    # Rows for them as `cache verify` could once have adopted; the other blob is a file.
    for key in [*root.blob_keys, "9" * 64]:
        await store.record_blob(key, 10, 1.0)
    offered = [blob.key for blob in await store.blobs_by_access()]
    assert offered == ["9" * 64]
