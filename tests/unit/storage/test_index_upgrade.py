"""A SQLite store from before indexes existed (schema 7) opens with everything it held
under root/pypi; the scoping itself is in tests/contract/."""

import sqlite3
from contextlib import closing
from pathlib import Path

from bodega.storage.metadata import FIRST_INDEX, SearchDetails, StoredPage, StoredRoot
from bodega.storage.sqlite import SqliteMetadataStore
from bodega.storage.sqlite_schema import MIGRATIONS

PAGE = StoredPage("demo", {"name": "demo", "files": []}, '"v1"', None, 100.0)
ROOT = StoredRoot("a" * 64, "b" * 64, 3, 100.0)


async def test_a_store_from_before_indexes_opens_with_its_rows_under_root_pypi(
    tmp_path: Path,
) -> None:
    path = tmp_path / "db.sqlite3"
    with closing(sqlite3.connect(path)) as db:
        for number, script in enumerate(MIGRATIONS[:7], start=1):
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
