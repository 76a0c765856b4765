"""Two indexes in one SQLite store: each sees only its own pages, root list, search and core
metadata; blob records and file digests are shared. And a store from before indexes
existed opens with everything under root/pypi."""

import sqlite3
from contextlib import closing
from pathlib import Path

from bodega.storage.metadata import FIRST_INDEX, SearchDetails, StoredPage, StoredRoot
from bodega.storage.sqlite import _MIGRATIONS, SqliteIndexStore, SqliteMetadataStore

PAGE = StoredPage("demo", {"name": "demo", "files": []}, '"v1"', None, 100.0)
ROOT = StoredRoot("a" * 64, "b" * 64, 3, 100.0)


async def sync_names(store: SqliteIndexStore, names: list[tuple[str, str]]) -> None:
    sync = await store.start_search_sync()
    await sync.stage(names)
    after = await sync.merge(None, 2)
    while after is not None:
        after = await sync.merge(after, 2)
    await sync.finish(f"root-of-{len(names)}")


async def test_an_index_never_sees_another_ones_pages(database: SqliteMetadataStore) -> None:
    pypi, torch = database.index(FIRST_INDEX), database.index("team/torch")
    await pypi.put_page(PAGE)
    assert await torch.get_page("demo") is None
    assert not await torch.has_page("demo")
    assert await torch.page_count() == 0
    assert not await torch.forget_page("demo")
    await torch.mark_page_fresh("demo", 500.0)
    assert await pypi.get_page("demo") == PAGE
    other = StoredPage("demo", {"name": "demo", "files": ["x"]}, None, None, 200.0)
    await torch.put_page(other)
    assert await pypi.get_page("demo") == PAGE
    assert await torch.get_page("demo") == other
    assert await pypi.forget_page("demo")
    assert await torch.get_page("demo") == other


async def test_each_index_has_its_own_root_list(database: SqliteMetadataStore) -> None:
    pypi, torch = database.index(FIRST_INDEX), database.index("team/torch")
    await pypi.put_root(ROOT)
    assert await torch.get_root() is None
    assert not await torch.add_root_gzip(StoredRoot("a" * 64, "b" * 64, 3, 1.0, "c" * 64, "d" * 64))
    assert await pypi.get_root() == ROOT
    other = StoredRoot("e" * 64, "f" * 64, 1, 200.0)
    assert await torch.put_root(other) == other
    assert await pypi.get_root() == ROOT


async def test_eviction_never_offers_a_blob_any_index_serves_its_root_list_from(
    database: SqliteMetadataStore,
) -> None:
    await database.index(FIRST_INDEX).put_root(ROOT)
    other = StoredRoot("e" * 64, "f" * 64, 1, 200.0)
    await database.index("team/torch").put_root(other)
    for key in [*ROOT.blob_keys, *other.blob_keys, "9" * 64]:
        await database.record_blob(key, 10, 1.0)
    assert [blob.key for blob in await database.blobs_by_access()] == ["9" * 64]


async def test_search_names_details_and_downloads_are_each_indexs_own(
    database: SqliteMetadataStore,
) -> None:
    pypi, torch = database.index(FIRST_INDEX), database.index("team/torch")
    await sync_names(pypi, [("requests", "requests"), ("torch", "torch")])
    assert await torch.search_root_key() is None
    await sync_names(torch, [("torch", "Torch"), ("torchvision", "torchvision")])
    assert set(await pypi.match_names("torch", 10)) == {("torch", "torch")}
    assert set(await torch.match_names("torch", 10)) == {
        ("torch", "Torch"),
        ("torchvision", "torchvision"),
    }
    assert await torch.match_names("requests", 10) == []
    await torch.put_search_details(SearchDetails("torch", "Torch", "2.5", "Tensors", "2.5"))
    assert await pypi.get_search_details(["torch"]) == {}
    assert await pypi.match_summaries(("tensors",), 10) == []
    assert await torch.match_summaries(("tensors",), 10) == [("torch", "Torch")]
    await torch.add_downloads({"torch": 3})
    assert await pypi.get_downloads(["torch"]) == {}
    assert await torch.get_downloads(["torch"]) == {"torch": 3}
    assert await pypi.search_counts() == (2, 0)
    assert await torch.search_counts() == (2, 1)
    await sync_names(pypi, [])  # upstream emptied: only pypi's names go
    assert await pypi.match_names("torch", 10) == []
    assert ("torchvision", "torchvision") in await torch.match_names("torch", 10)


async def test_two_indexes_sync_their_names_at_the_same_time(
    database: SqliteMetadataStore,
) -> None:
    pypi, torch = database.index(FIRST_INDEX), database.index("team/torch")
    pypi_sync, torch_sync = await pypi.start_search_sync(), await torch.start_search_sync()
    await pypi_sync.stage([("a", "a"), ("b", "b")])
    await torch_sync.stage([("c", "c")])
    for sync in (pypi_sync, torch_sync):
        after = await sync.merge(None, 1)
        while after is not None:
            after = await sync.merge(after, 1)
        await sync.finish("root")
    assert {key for k in "abc" for key, _ in await pypi.match_names(k, 5)} == {"a", "b"}
    assert {key for k in "abc" for key, _ in await torch.match_names(k, 5)} == {"c"}


async def test_core_metadata_is_each_indexs_own_and_blob_records_are_shared(
    database: SqliteMetadataStore,
) -> None:
    pypi, torch = database.index(FIRST_INDEX), database.index("team/torch")
    await pypi.put_core_metadata("demo", "demo-1.0-py3-none-any.whl", "1" * 64)
    assert await torch.core_metadata_of("demo") == {}
    assert await pypi.core_metadata_of("demo") == {"demo-1.0-py3-none-any.whl": "1" * 64}
    await pypi.record_blob("1" * 64, 10, 1.0)
    assert await torch.cached_keys(["1" * 64]) == {"1" * 64}


async def test_a_store_from_before_indexes_opens_with_its_rows_under_root_pypi(
    tmp_path: Path,
) -> None:
    path = tmp_path / "db.sqlite3"
    with closing(sqlite3.connect(path)) as db:
        for number, script in enumerate(_MIGRATIONS[:7], start=1):
            db.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")
        with db:
            db.execute(
                "INSERT INTO pages VALUES ('demo', ?, '\"v1\"', NULL, 100.0)",
                ('{"name":"demo","files":[]}',),
            )
            db.execute(
                "INSERT INTO root VALUES (1, ?, ?, 3, 100.0, NULL, NULL)", ("a" * 64, "b" * 64)
            )
            db.execute("INSERT INTO search_names VALUES (1, 'demo', 'Demo')")
            db.execute("INSERT INTO search_trigrams (rowid, text) VALUES ((4 << 32) | 1, '-demo-')")
            db.execute("INSERT INTO search_details VALUES ('demo', '1.0', 'A demo', '1.0')")
            db.execute("INSERT INTO search_text (rowid, summary) VALUES (1, 'A demo')")
            db.execute("INSERT INTO search_downloads VALUES ('demo', 7)")
            db.execute("INSERT INTO search_state VALUES (1, 'root-blob')")
            db.execute("INSERT INTO core_metadata VALUES ('demo', 'demo-1.0.whl', ?)", ("1" * 64,))
    database = await SqliteMetadataStore.open(path)
    pypi, torch = database.index(FIRST_INDEX), database.index("team/torch")
    try:
        assert await pypi.get_page("demo") == PAGE
        assert await pypi.get_root() == ROOT
        # Equal, as a word, inside, and served: found four ways.
        assert await pypi.match_names("demo", 5) == [("demo", "Demo")] * 4
        assert await pypi.match_summaries(("demo",), 5) == [("demo", "Demo")]
        assert await pypi.get_search_details(["demo"]) == {
            "demo": SearchDetails("demo", "Demo", "1.0", "A demo", "1.0")
        }
        assert await pypi.get_downloads(["demo"]) == {"demo": 7}
        assert await pypi.search_root_key() == "root-blob"
        assert await pypi.search_counts() == (1, 1)
        assert await pypi.core_metadata_of("demo") == {"demo-1.0.whl": "1" * 64}
        assert await torch.get_page("demo") is None
        assert await torch.get_root() is None
        assert await torch.match_names("demo", 5) == []
        # A name added to root/pypi after the upgrade follows the ones it had.
        await pypi.put_search_details(SearchDetails("new", "new", "1.0", "fresh", "1.0"))
        assert await pypi.search_counts() == (2, 2)
    finally:
        await database.close()
