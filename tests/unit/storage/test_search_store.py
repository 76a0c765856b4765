"""The search index in the real SQLite store: staged name syncs, merged in chunks, and
matching."""

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path

from bodega.storage.metadata import FIRST_INDEX, SearchDetails
from bodega.storage.sqlite import SqliteIndexStore, SqliteMetadataStore
from bodega.storage.sqlite_schema import MIGRATIONS
from tests.support.search_sync import sync_names


async def test_a_list_that_shrank_is_merged_in_bounded_chunks(store: SqliteIndexStore) -> None:
    """Each merge reads at most `limit` rows of either side, however few names remain."""
    await sync_names(store, [(f"p{i:03}", f"p{i:03}") for i in range(300)], limit=50)
    sync = await store.start_search_sync()
    await sync.stage([("p150", "P150"), ("zz", "zz")])
    bounds = [await sync.merge(None, 50)]
    while bounds[-1] is not None:
        bounds.append(await sync.merge(bounds[-1], 50))
    assert len(bounds) == 7  # six chunks of 50 existing rows, then the end
    found = {key: name for k in ("p15", "zz") for key, name in await store.match_names(k, 9)}
    assert found == {"p150": "P150", "zz": "zz"}


def index_rows(path: Path) -> tuple[set[tuple[int, str]], ...]:
    with sqlite3.connect(path) as db:
        names = set(db.execute("SELECT id, key FROM search_names"))
        text = set(db.execute("SELECT rowid, summary FROM search_text"))
        trigrams = set(
            db.execute(
                "SELECT rowid & 4294967295, substr(text, 2, length(text) - 2) FROM search_trigrams"
            )
        )
    return names, text, trigrams


async def test_pages_noted_during_a_sync_leave_a_consistent_index(
    store: SqliteIndexStore, tmp_path: Path
) -> None:
    """The race once seen as `IntegrityError: constraint failed`: a page noted on the main
    connection between a merge chunk's read and its insert. Each chunk is one IMMEDIATE
    transaction now, so both orders work and every name has its full-text row."""
    staged = [(f"p{i:05}", f"p{i:05}") for i in range(0, 20_000, 2)]
    sync = await store.start_search_sync()
    await sync.stage(staged)
    # Some noted names are staged too, some are new; all land while chunks merge.
    noted = [f"p{i:05}" for i in range(0, 20_000, 97)]

    async def note_pages() -> None:
        for key in noted:
            await store.put_search_details(SearchDetails(key, key, "1.0", "noted", "1.0"))

    async def merge() -> None:
        after = await sync.merge(None, 100)
        while after is not None:
            after = await sync.merge(after, 100)

    await asyncio.gather(merge(), note_pages())
    names, text, trigrams = index_rows(tmp_path / "db.sqlite3")
    assert names == trigrams
    assert text == {(row_id, "noted") for row_id, key in names if key in noted}
    assert {key for _, key in names} == {k for k, _ in staged} | set(noted)
    summaries = await store.match_summaries(("noted",), 1000)
    assert sorted(key for key, _ in summaries) == sorted(noted)


async def test_upgrading_to_name_trigrams_keeps_seen_projects_and_syncs_the_rest_again(
    tmp_path: Path,
) -> None:
    path = tmp_path / "db.sqlite3"
    with closing(sqlite3.connect(path)) as db:  # the schema before migration 6
        for number, script in enumerate(MIGRATIONS[:5], start=1):
            db.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")
        with db:
            db.execute("INSERT INTO search_names VALUES (1, 'flask', 'Flask')")
            db.execute("INSERT INTO search_names VALUES (2, 'pyyaml', 'PyYAML')")
            db.execute("INSERT INTO search_details VALUES ('pyyaml', '6.0', 'YAML', '6.0')")
            db.execute(
                "INSERT INTO search_text (rowid, words, summary) VALUES (2, 'pyyaml', 'YAML')"
            )
            db.execute("INSERT INTO search_state VALUES (1, 'root-blob')")
    database = await SqliteMetadataStore.open(path)
    store = database.index(FIRST_INDEX)
    try:
        assert await store.match_names("yaml", 10) == [("pyyaml", "PyYAML")]
        assert await store.match_names("flask", 10) == []  # until the next sync
        assert await store.search_root_key() is None  # which is due at once
        assert await store.match_summaries(("yaml",), 10) == [("pyyaml", "PyYAML")]
    finally:
        await database.close()
