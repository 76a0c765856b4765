"""The search index in the real SQLite store: staged name syncs, merged in chunks, and
matching."""

import asyncio
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from bodega.core.search import Tier
from bodega.storage.metadata import SearchDetails
from bodega.storage.sqlite import SqliteMetadataStore


async def sync(
    store: SqliteMetadataStore, names: Sequence[tuple[str, str]], limit: int = 2
) -> None:
    """A whole sync as ProjectSearch runs it, staged in two parts and merged `limit` at a time."""
    await store.start_search_sync()
    await store.stage_search_names(names[: len(names) // 2])
    await store.stage_search_names(names[len(names) // 2 :])
    after = await store.merge_search_names(None, limit)
    while after is not None:
        after = await store.merge_search_names(after, limit)


async def test_chunked_sync_adds_renames_and_removes_but_keeps_seen_projects(
    tmp_path: Path,
) -> None:
    store = await SqliteMetadataStore.open(tmp_path / "db.sqlite3")
    try:
        await sync(store, [("a", "a"), ("b", "b"), ("c", "c"), ("d", "d")])
        await store.put_search_details(SearchDetails("c", "c", "1.0", "see", "1.0"))
        # Upstream now lists a, B (renamed) and e; c and d are gone, but c was seen.
        await sync(store, [("a", "a"), ("b", "B"), ("e", "e")])
        keys = {m.key: m.name for k in "abcde" for m in await store.match_names(k, None, 10)}
        assert keys == {"a": "a", "b": "B", "c": "c", "e": "e"}
        summary = await store.match_summaries('"see"', 10)
        assert [(m.key, m.tier) for m in summary] == [("c", Tier.SUMMARY)]
    finally:
        await store.close()


async def test_a_key_staged_twice_keeps_its_last_spelling(tmp_path: Path) -> None:
    store = await SqliteMetadataStore.open(tmp_path / "db.sqlite3")
    try:
        await sync(store, [("a-b", "a_b"), ("a-b", "A.b")])
        assert [m.name for m in await store.match_names("a-b", None, 10)] == ["A.b"]
    finally:
        await store.close()


async def test_a_list_that_shrank_is_merged_in_bounded_chunks(tmp_path: Path) -> None:
    """Each merge reads at most `limit` rows of either side, however few names remain."""
    store = await SqliteMetadataStore.open(tmp_path / "db.sqlite3")
    try:
        await sync(store, [(f"p{i:03}", f"p{i:03}") for i in range(300)], limit=50)
        await store.start_search_sync()
        await store.stage_search_names([("p150", "P150"), ("zz", "zz")])
        bounds = [await store.merge_search_names(None, 50)]
        while bounds[-1] is not None:
            bounds.append(await store.merge_search_names(bounds[-1], 50))
        assert len(bounds) == 7  # six chunks of 50 existing rows, then the end
        found = {m.key: m.name for k in ("p1", "zz") for m in await store.match_names(k, None, 9)}
        assert found == {"p150": "P150", "zz": "zz"}
    finally:
        await store.close()


def index_rows(path: Path) -> tuple[set[tuple[int, str]], set[tuple[int, str]]]:
    with sqlite3.connect(path) as db:
        names = set(db.execute("SELECT id, key FROM search_names"))
        text = set(db.execute("SELECT rowid, words FROM search_text"))
    return names, text


async def test_pages_noted_during_a_sync_leave_a_consistent_index(tmp_path: Path) -> None:
    """The race once seen as `IntegrityError: constraint failed`: a page noted on the main
    connection between a merge chunk's read and its insert. Each chunk is one IMMEDIATE
    transaction now, so both orders work and every name has its full-text row."""
    store = await SqliteMetadataStore.open(tmp_path / "db.sqlite3")
    try:
        staged = [(f"p{i:05}", f"p{i:05}") for i in range(0, 20_000, 2)]
        await store.start_search_sync()
        await store.stage_search_names(staged)
        # Some noted names are staged too, some are new; all land while chunks merge.
        noted = [f"p{i:05}" for i in range(0, 20_000, 97)]

        async def note_pages() -> None:
            for key in noted:
                await store.put_search_details(SearchDetails(key, key, "1.0", "noted", "1.0"))

        async def merge() -> None:
            after = await store.merge_search_names(None, 100)
            while after is not None:
                after = await store.merge_search_names(after, 100)

        await asyncio.gather(merge(), note_pages())
        names, text = index_rows(tmp_path / "db.sqlite3")
        assert names == text
        assert {key for _, key in names} == {k for k, _ in staged} | set(noted)
        summaries = await store.match_summaries('"noted"', 1000)
        assert sorted(m.key for m in summaries) == sorted(noted)
    finally:
        await store.close()


async def test_names_match_exactly_by_prefix_and_by_word(tmp_path: Path) -> None:
    store = await SqliteMetadataStore.open(tmp_path / "db.sqlite3")
    try:
        names = sorted(("requests", "requests-oauthlib", "django-requests", "grequests"))
        await sync(store, [(n, n) for n in names])
        found = await store.match_names("requests", '"requests"*', 10)
        assert sorted((m.tier, m.key) for m in found) == [
            (Tier.EXACT, "requests"),
            (Tier.PREFIX, "requests-oauthlib"),
            (Tier.WORD, "django-requests"),
            (Tier.WORD, "requests"),
            (Tier.WORD, "requests-oauthlib"),
        ]
    finally:
        await store.close()
