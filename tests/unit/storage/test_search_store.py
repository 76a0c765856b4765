"""The search index in the real SQLite store: chunked name syncs and matching."""

from pathlib import Path

from bodega.core.search import Tier
from bodega.storage.metadata import SearchDetails
from bodega.storage.sqlite import SqliteMetadataStore


async def test_chunked_sync_adds_renames_and_removes_but_keeps_seen_projects(
    tmp_path: Path,
) -> None:
    store = await SqliteMetadataStore.open(tmp_path / "db.sqlite3")
    try:
        await store.sync_search_names([("a", "a"), ("b", "b")], None, False)
        await store.sync_search_names([("c", "c"), ("d", "d")], "b", True)
        await store.put_search_details(SearchDetails("c", "c", "1.0", "see", "1.0"))
        # Upstream now lists a, B (renamed) and e; c and d are gone, but c was seen.
        await store.sync_search_names([("a", "a"), ("b", "B")], None, False)
        await store.sync_search_names([("e", "e")], "b", True)
        keys = {m.key: m.name for k in "abcde" for m in await store.match_names(k, None, 10)}
        assert keys == {"a": "a", "b": "B", "c": "c", "e": "e"}
        summary = await store.match_summaries('"see"', 10)
        assert [(m.key, m.tier) for m in summary] == [("c", Tier.SUMMARY)]
    finally:
        await store.close()


async def test_names_match_exactly_by_prefix_and_by_word(tmp_path: Path) -> None:
    store = await SqliteMetadataStore.open(tmp_path / "db.sqlite3")
    try:
        names = sorted(("requests", "requests-oauthlib", "django-requests", "grequests"))
        await store.sync_search_names([(n, n) for n in names], None, True)
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
