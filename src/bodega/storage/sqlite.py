"""The metadata store on SQLite (WAL), all of its work on one dedicated thread.

One thread owns the connection, so the event loop never waits on SQLite and writes never
contend with each other inside the process (datasette's pattern). busy_timeout covers
another process holding the lock for a while (threat 33).
"""

import asyncio
import itertools
import json
import math
import sqlite3
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from bodega.core.search import MIN_SUBSTRING
from bodega.errors import StorageError
from bodega.storage.index_views import SharedConcerns
from bodega.storage.metadata import (
    FileDigests,
    SearchDetails,
    StoredBlob,
    StoredPage,
    StoredRoot,
)
from bodega.storage.sqlite_accounts import SqliteAccountStore
from bodega.storage.sqlite_export import SqliteExport
from bodega.storage.sqlite_hosted import SqliteHostedStore
from bodega.storage.sqlite_policy import SqlitePolicyStore
from bodega.storage.sqlite_schema import MIGRATIONS

T = TypeVar("T")

# The root list's blobs (two renderings, their gzip copies, of every index) have no row;
# eviction and pruning must skip them all the same. NOT EXISTS, not NOT IN: a NULL gzip key
# in a NOT IN list would make it match no key at all.
_BLOBS_BY_ACCESS = """
SELECT key, size, accessed_at FROM blobs
WHERE accessed_at < ?
  AND NOT EXISTS (
    SELECT 1 FROM root WHERE blobs.key IN (html_key, json_key, html_gzip_key, json_gzip_key)
  )
  AND NOT EXISTS (SELECT 1 FROM hosted_files WHERE blobs.key = sha256)
  AND NOT EXISTS (SELECT 1 FROM hosted_files WHERE blobs.key = metadata_sha256)
ORDER BY accessed_at LIMIT ?
"""
_ROOT_COLUMNS = "html_key, json_key, project_count, fetched_at, html_gzip_key, json_gzip_key"
# The gzip copies stay while the renderings they were made from do (a refresh that found
# the same list); a root with other renderings brings its own, or none yet.
_PUT_ROOT = f"""
INSERT INTO root (index_id, {_ROOT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (index_id) DO UPDATE SET
  html_gzip_key = CASE WHEN (html_key, json_key) = (excluded.html_key, excluded.json_key)
    THEN coalesce(excluded.html_gzip_key, html_gzip_key) ELSE excluded.html_gzip_key END,
  json_gzip_key = CASE WHEN (html_key, json_key) = (excluded.html_key, excluded.json_key)
    THEN coalesce(excluded.json_gzip_key, json_gzip_key) ELSE excluded.json_gzip_key END,
  html_key = excluded.html_key,
  json_key = excluded.json_key,
  project_count = excluded.project_count,
  fetched_at = excluded.fetched_at
RETURNING {_ROOT_COLUMNS}
"""  # noqa: S608 (constant column names)


class SqliteMetadataStore:
    """The metadata of every index in one SQLite file: blob records and file digests,
    which all indexes share, here; each index's pages, root list, search and core metadata
    through `index(name)`.

    Bulk background work (syncing 800k project names for search) has a connection and a
    thread of its own: in WAL mode the request path's reads never queue behind it, and its
    writes wait at most one short bulk transaction. The names are staged in a TEMP table of
    that connection (on disk, sorted by SQLite), then merged a chunk per transaction.
    """

    def __init__(self, main: "_Worker", bulk: "_Worker") -> None:
        self._main = main
        self._bulk = bulk
        self._index_ids: dict[str, int] = {}

    @classmethod
    async def open(cls, path: Path) -> "SqliteMetadataStore":
        main = await _Worker.start(path, "bodega-sqlite")
        bulk = await _Worker.start(path, "bodega-sqlite-bulk")
        return cls(main, bulk)

    def index(self, name: str) -> "SqliteIndexStore":
        """The metadata of the index `name` (`<user>/<index>`), created on first use."""
        return SqliteIndexStore(self, name)

    def policy(self) -> SqlitePolicyStore:
        """Supply-chain policy's records (exemptions, files removed upstream)."""
        return SqlitePolicyStore(self._main)

    def hosted(self, name: str) -> SqliteHostedStore:
        """The projects and files of the hosted index `name`."""
        return SqliteHostedStore(self, name)

    async def run_for_index(self, name: str, work: Callable[[sqlite3.Connection, int], T]) -> T:
        """Run `work` on the main worker with the number of the index `name` (for the
        concerns kept in modules of their own)."""
        return await self._run_in(self._main, name, work)

    def export(self) -> SqliteExport:
        """Everything the store holds, listed whole (for `bodega migrate`)."""
        return SqliteExport(self._main)

    def accounts(self) -> SqliteAccountStore:
        """Accounts and API tokens, on the main worker (few, short statements)."""
        return SqliteAccountStore(self._main)

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return await self._main.run(work)

    async def _run_in(
        self, worker: "_Worker", name: str, work: Callable[[sqlite3.Connection, int], T]
    ) -> T:
        """Run `work` with the number of the index `name`, looked up once per process."""

        def scoped(db: sqlite3.Connection) -> T:
            index_id = self._index_ids.get(name)
            if index_id is None:
                index_id = self._index_ids.setdefault(name, _index_id(db, name))
            return work(db, index_id)

        return await worker.run(scoped)

    async def record_blob(self, key: str, size: int, stored_at: float) -> None:
        def work(db: sqlite3.Connection) -> None:
            with db:
                db.execute(
                    "INSERT OR REPLACE INTO blobs (key, size, stored_at, accessed_at)"
                    " VALUES (?, ?, ?, ?)",
                    (key, size, stored_at, stored_at),
                )

        await self._run(work)

    async def blob_keys(self) -> set[str]:
        def work(db: sqlite3.Connection) -> set[str]:
            return {row[0] for row in db.execute("SELECT key FROM blobs")}

        return await self._run(work)

    async def forget_blob(self, key: str) -> None:
        def work(db: sqlite3.Connection) -> None:
            with db:
                db.execute("DELETE FROM blobs WHERE key = ?", (key,))

        await self._run(work)

    async def is_writable(self) -> bool:
        def work(db: sqlite3.Connection) -> bool:
            try:
                db.execute("BEGIN IMMEDIATE")  # takes the write lock, writes nothing
                db.execute("ROLLBACK")
            except sqlite3.Error:
                return False
            return True

        return await self._run(work)

    async def touch_blobs(self, accessed: Mapping[str, float]) -> None:
        rows = [(at, key, at) for key, at in accessed.items()]

        def work(db: sqlite3.Connection) -> None:
            with db:
                db.executemany(
                    "UPDATE blobs SET accessed_at = ? WHERE key = ? AND accessed_at < ?", rows
                )

        await self._run(work)

    async def blob_usage(self) -> tuple[int, int]:
        def work(db: sqlite3.Connection) -> tuple[int, int]:
            count, total = db.execute(
                "SELECT count(*), coalesce(sum(size), 0) FROM blobs"
            ).fetchone()
            return int(count), int(total)

        return await self._run(work)

    async def blobs_by_access(
        self, *, unused_since: float | None = None, limit: int | None = None
    ) -> list[StoredBlob]:
        # LIMIT -1 is no limit in SQLite.
        parameters = (math.inf if unused_since is None else unused_since, limit or -1)

        def work(db: sqlite3.Connection) -> list[StoredBlob]:
            rows = db.execute(_BLOBS_BY_ACCESS, parameters)
            return [StoredBlob(*row) for row in rows]

        return await self._run(work)

    async def cached_keys(self, keys: Collection[str]) -> set[str]:
        wanted = list(keys)

        def work(db: sqlite3.Connection) -> set[str]:
            return {row[0] for row in _rows_in(db, "SELECT key FROM blobs WHERE key", wanted)}

        return await self._run(work)

    async def put_file_digests(self, digests: FileDigests) -> None:
        def work(db: sqlite3.Connection) -> None:
            with db:
                db.execute(
                    "INSERT OR REPLACE INTO file_digests VALUES (?, ?, ?)",
                    (digests.sha256, digests.md5, digests.blake2b_256),
                )

        await self._run(work)

    async def file_digests(self, keys: Collection[str]) -> dict[str, FileDigests]:
        wanted = list(keys)

        def work(db: sqlite3.Connection) -> dict[str, FileDigests]:
            query = "SELECT sha256, md5, blake2b_256 FROM file_digests WHERE sha256"
            return {row[0]: FileDigests(*row) for row in _rows_in(db, query, wanted)}

        return await self._run(work)

    async def root_blob_keys(self) -> frozenset[str]:
        def work(db: sqlite3.Connection) -> frozenset[str]:
            rows = db.execute(f"SELECT {_ROOT_COLUMNS} FROM root")  # noqa: S608
            return frozenset(key for row in rows for key in StoredRoot(*row).blob_keys)

        return await self._run(work)

    async def close(self) -> None:
        await self._bulk.close()
        await self._main.close()


class SqliteIndexStore(SharedConcerns):
    """One index's pages, root list, search and core metadata in the store; its blob
    records and file digests are the store's, shared by every index."""

    def __init__(self, store: SqliteMetadataStore, name: str) -> None:
        super().__init__(store)
        self._store = store
        self.name = name

    async def _run(self, work: Callable[[sqlite3.Connection, int], T]) -> T:
        return await self._store._run_in(self._store._main, self.name, work)

    async def _run_bulk(self, work: Callable[[sqlite3.Connection, int], T]) -> T:
        return await self._store._run_in(self._store._bulk, self.name, work)

    async def get_page(self, project: str) -> StoredPage | None:
        def work(db: sqlite3.Connection, index_id: int) -> StoredPage | None:
            row = db.execute(
                "SELECT record, etag, last_modified, fetched_at FROM pages"
                " WHERE index_id = ? AND project = ?",
                (index_id, project),
            ).fetchone()
            if row is None:
                return None
            return StoredPage(project, json.loads(row[0]), row[1], row[2], row[3])

        return await self._run(work)

    async def put_page(self, page: StoredPage) -> None:
        def work(db: sqlite3.Connection, index_id: int) -> None:
            with db:
                db.execute(
                    "INSERT OR REPLACE INTO pages VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        index_id,
                        page.project,
                        json.dumps(page.record, separators=(",", ":")),
                        page.etag,
                        page.last_modified,
                        page.fetched_at,
                    ),
                )

        await self._run(work)

    async def mark_page_fresh(self, project: str, fetched_at: float) -> None:
        def work(db: sqlite3.Connection, index_id: int) -> None:
            with db:
                db.execute(
                    "UPDATE pages SET fetched_at = ? WHERE index_id = ? AND project = ?",
                    (fetched_at, index_id, project),
                )

        await self._run(work)

    async def has_page(self, project: str) -> bool:
        def work(db: sqlite3.Connection, index_id: int) -> bool:
            row = db.execute(
                "SELECT 1 FROM pages WHERE index_id = ? AND project = ?", (index_id, project)
            ).fetchone()
            return row is not None

        return await self._run(work)

    async def forget_page(self, project: str) -> bool:
        def work(db: sqlite3.Connection, index_id: int) -> bool:
            with db:
                cursor = db.execute(
                    "DELETE FROM pages WHERE index_id = ? AND project = ?", (index_id, project)
                )
                return cursor.rowcount > 0

        return await self._run(work)

    async def page_count(self) -> int:
        def work(db: sqlite3.Connection, index_id: int) -> int:
            row = db.execute("SELECT count(*) FROM pages WHERE index_id = ?", (index_id,))
            return int(row.fetchone()[0])

        return await self._run(work)

    async def get_root(self) -> StoredRoot | None:
        def work(db: sqlite3.Connection, index_id: int) -> StoredRoot | None:
            row = db.execute(
                f"SELECT {_ROOT_COLUMNS} FROM root WHERE index_id = ?",  # noqa: S608
                (index_id,),
            ).fetchone()
            return None if row is None else StoredRoot(*row)

        return await self._run(work)

    async def put_root(self, root: StoredRoot) -> StoredRoot:
        def work(db: sqlite3.Connection, index_id: int) -> StoredRoot:
            values = (
                index_id,
                root.html_key,
                root.json_key,
                root.project_count,
                root.fetched_at,
                root.html_gzip_key,
                root.json_gzip_key,
            )
            with db:
                (row,) = db.execute(_PUT_ROOT, values).fetchall()
                return StoredRoot(*row)

        return await self._run(work)

    async def add_root_gzip(self, root: StoredRoot) -> bool:
        def work(db: sqlite3.Connection, index_id: int) -> bool:
            with db:
                cursor = db.execute(
                    "UPDATE root SET html_gzip_key = ?, json_gzip_key = ?"
                    " WHERE index_id = ? AND html_key = ? AND json_key = ?",
                    (
                        root.html_gzip_key,
                        root.json_gzip_key,
                        index_id,
                        root.html_key,
                        root.json_key,
                    ),
                )
                return cursor.rowcount > 0

        return await self._run(work)

    async def start_search_sync(self) -> "SqliteSearchSync":
        table = f"search_staging_{next(_STAGINGS)}"

        def work(db: sqlite3.Connection, index_id: int) -> int:
            db.execute(
                f"CREATE TEMP TABLE {table} (key TEXT PRIMARY KEY, name TEXT NOT NULL)"
                " WITHOUT ROWID"
            )
            return index_id

        index_id = await self._run_bulk(work)
        return SqliteSearchSync(self._store._bulk, index_id, f"temp.{table}")

    async def search_root_key(self) -> str | None:
        def work(db: sqlite3.Connection, index_id: int) -> str | None:
            row = db.execute(
                "SELECT root_key FROM search_state WHERE index_id = ?", (index_id,)
            ).fetchone()
            return None if row is None else str(row[0])

        return await self._run(work)

    async def get_search_details(self, keys: Collection[str]) -> dict[str, SearchDetails]:
        wanted = list(keys)

        def work(db: sqlite3.Connection, index_id: int) -> dict[str, SearchDetails]:
            rows = _rows_in(db, _DETAILS_QUERY, wanted, (index_id,))
            return {row[0]: SearchDetails(*row) for row in rows}

        return await self._run(work)

    async def put_search_details(self, details: SearchDetails) -> None:
        def work(db: sqlite3.Connection, index_id: int) -> None:
            # IMMEDIATE: the read of the name's row and the insert are one step that the
            # bulk connection's merge cannot come between.
            with _immediate(db):
                row = db.execute(
                    "SELECT id FROM search_names WHERE index_id = ? AND key = ?",
                    (index_id, details.key),
                ).fetchone()
                if row is None:
                    row_id = _insert_name(db, index_id, details.key, details.name)
                else:
                    row_id = row[0]
                db.execute(
                    "INSERT OR REPLACE INTO search_details VALUES (?, ?, ?, ?, ?)",
                    (
                        index_id,
                        details.key,
                        details.version,
                        details.summary,
                        details.summary_version,
                    ),
                )
                db.execute("DELETE FROM search_text WHERE rowid = ?", (row_id,))
                db.execute(
                    "INSERT INTO search_text (rowid, summary) VALUES (?, ?)",
                    (row_id, details.summary),
                )

        await self._run(work)

    async def match_names(self, key: str, limit: int) -> list[tuple[str, str]]:
        def work(db: sqlite3.Connection, index_id: int) -> list[tuple[str, str]]:
            first, end = _id_range(index_id)
            found = db.execute(
                "SELECT key, name FROM search_names WHERE index_id = ? AND key = ?",
                (index_id, key),
            ).fetchall()
            # Shortest names first (the rowid's order), read no further than `limit`: a
            # common word's tens of thousands of matches are never all visited.
            found += db.execute(_SHORTEST_MATCHES, (f"%-{key}-%", first, end, limit)).fetchall()
            if len(key) >= MIN_SUBSTRING:
                found += db.execute(_SHORTEST_MATCHES, (f"%{key}%", first, end, limit)).fetchall()
            # The projects this bodega served, however long their names: few, so scanned.
            found += db.execute(_SERVED_MATCHES, (index_id, key, limit)).fetchall()
            return found

        return await self._run(work)

    async def match_summaries(self, words: Sequence[str], limit: int) -> list[tuple[str, str]]:
        if not words:
            return []

        def work(db: sqlite3.Connection, index_id: int) -> list[tuple[str, str]]:
            first, end = _id_range(index_id)
            parameters = ("summary : " + _phrase(words), first, end, limit)
            return db.execute(_FIRST_MATCHES, parameters).fetchall()

        return await self._run(work)

    async def add_downloads(self, counts: Mapping[str, int]) -> None:
        def work(db: sqlite3.Connection, index_id: int) -> None:
            with db:
                db.executemany(
                    "INSERT INTO search_downloads VALUES (?, ?, ?)"
                    " ON CONFLICT (index_id, key) DO UPDATE SET count = count + excluded.count",
                    [(index_id, key, count) for key, count in counts.items()],
                )

        await self._run(work)

    async def get_downloads(self, keys: Collection[str]) -> dict[str, int]:
        wanted = list(keys)

        def work(db: sqlite3.Connection, index_id: int) -> dict[str, int]:
            query = "SELECT key, count FROM search_downloads WHERE index_id = ? AND key"
            return {key: count for key, count in _rows_in(db, query, wanted, (index_id,))}

        return await self._run(work)

    async def search_counts(self) -> tuple[int, int]:
        def work(db: sqlite3.Connection, index_id: int) -> tuple[int, int]:
            # The last id instead of count(*): counting 800k rows costs tens of ms, and ids
            # only grow, so it is exact until names are removed and an upper bound after.
            first, end = _id_range(index_id)
            (names,) = db.execute(
                "SELECT coalesce(max(id), ?) - ? FROM search_names WHERE id >= ? AND id < ?",
                (first, first, first, end),
            ).fetchone()
            (details,) = db.execute(
                "SELECT count(*) FROM search_details WHERE index_id = ?", (index_id,)
            ).fetchone()
            return int(names), int(details)

        return await self._run(work)

    async def put_core_metadata(self, project: str, filename: str, sha256: str) -> None:
        def work(db: sqlite3.Connection, index_id: int) -> None:
            with db:
                db.execute(
                    "INSERT OR REPLACE INTO core_metadata VALUES (?, ?, ?, ?)",
                    (index_id, project, filename, sha256),
                )

        await self._run(work)

    async def core_metadata_of(self, project: str) -> dict[str, str]:
        def work(db: sqlite3.Connection, index_id: int) -> dict[str, str]:
            rows = db.execute(
                "SELECT filename, sha256 FROM core_metadata WHERE index_id = ? AND project = ?",
                (index_id, project),
            )
            return dict(rows.fetchall())

        return await self._run(work)


class SqliteSearchSync:
    """A sync's staging: a TEMP table of the bulk connection, the one connection that sees
    it (so every step runs there). The connection's own: staging takes no lock another
    connection waits on, and SQLite sorts and de-duplicates the names on disk."""

    def __init__(self, bulk: "_Worker", index_id: int, table: str) -> None:
        self._bulk = bulk
        self._index_id = index_id
        self._table = table

    async def stage(self, names: Sequence[tuple[str, str]]) -> None:
        def work(db: sqlite3.Connection) -> None:
            for start in range(0, len(names), _STAGE_BATCH):
                with db:
                    db.executemany(
                        f"INSERT OR REPLACE INTO {self._table} VALUES (?, ?)",  # noqa: S608
                        names[start : start + _STAGE_BATCH],
                    )

        await self._bulk.run(work)

    async def merge(self, after: str | None, limit: int) -> str | None:
        def work(db: sqlite3.Connection) -> str | None:
            with _immediate(db):
                return _merge_names(db, self._index_id, self._table, after or "", limit)

        return await self._bulk.run(work)

    async def finish(self, root_key: str) -> None:
        def work(db: sqlite3.Connection) -> None:
            with db:
                db.execute(
                    "INSERT OR REPLACE INTO search_state VALUES (?, ?)", (self._index_id, root_key)
                )
            db.execute(f"DROP TABLE IF EXISTS {self._table}")

        await self._bulk.run(work)

    async def abort(self) -> None:
        await self._bulk.run(lambda db: db.execute(f"DROP TABLE IF EXISTS {self._table}"))


class _Worker:
    """One connection, used only from its one thread."""

    def __init__(
        self, connection: sqlite3.Connection, executor: ThreadPoolExecutor, path: Path
    ) -> None:
        self._connection = connection
        self._executor = executor
        self._path = path

    @classmethod
    async def start(cls, path: Path, name: str) -> "_Worker":
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        loop = asyncio.get_running_loop()
        try:
            connection = await loop.run_in_executor(executor, _connect, path)
        except sqlite3.DatabaseError as error:
            executor.shutdown(wait=False)
            raise StorageError(_damaged(path, error)) from error
        return cls(connection, executor, path)

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, work, self._connection)
        except sqlite3.OperationalError as error:
            # "database is locked" past busy_timeout, "database or disk is full": the store
            # cannot write now, which callers may survive (threats 32, 33).
            raise StorageError(f"metadata store: {error}") from error
        except sqlite3.IntegrityError as error:
            # A constraint another writer's row broke: this write failed, the store is fine.
            raise StorageError(f"metadata store: {error}") from error
        except sqlite3.DatabaseError as error:
            # "database disk image is malformed", "file is not a database": corruption, met
            # by a query after the store opened. A clean error, never a 500 with a traceback.
            raise StorageError(_damaged(self._path, error)) from error

    async def close(self) -> None:
        await self.run(lambda db: db.close())
        self._executor.shutdown(wait=True)


# A search name's id is `index number << 48 | n`, and its trigram rowid adds `length << 32`
# (sqlite_schema.py, migrations 6 and 8): each index's rows are one rowid range, which FTS5
# reads alone.
_INDEX_SHIFT = 48
_LENGTH_SHIFT = 32
_MAX_LENGTH = (1 << (_INDEX_SHIFT - _LENGTH_SHIFT)) - 1
_MAX_INDEXES = 1 << (63 - _INDEX_SHIFT)  # rowids are signed 64-bit
_WITHOUT_LENGTH = ~(_MAX_LENGTH << _LENGTH_SHIFT)  # a trigram rowid & this: the name's id
# The first FTS matches, then their names by primary key. Ordering by bm25 or joining
# first makes SQLite score or visit every match: 50 ms for a common word (bench/search.py).
_FIRST_MATCHES = (
    "SELECT n.key, n.name FROM (SELECT rowid AS id FROM search_text WHERE search_text MATCH ?"
    " AND rowid >= ? AND rowid < ? LIMIT ?) AS m CROSS JOIN search_names n ON n.id = m.id"
)
# LIKE on the trigram table: the index finds the rows, and in rowid order (shortest names
# first) with LIMIT SQLite stops at the first `limit`. Keys are [a-z0-9-]: no LIKE wildcard.
_SHORTEST_MATCHES = (
    f"SELECT n.key, n.name FROM (SELECT rowid & {_WITHOUT_LENGTH} AS id FROM search_trigrams"  # noqa: S608
    " WHERE text LIKE ? AND rowid >= ? AND rowid < ? ORDER BY rowid LIMIT ?) AS m"
    " CROSS JOIN search_names n ON n.id = m.id"
)
# CROSS JOIN: the index's few served projects first, then each name by key (joined the
# other way, SQLite would walk all of the index's names: 100 ms on 200k).
_SERVED_MATCHES = (
    "SELECT n.key, n.name FROM search_downloads d CROSS JOIN search_names n"
    " ON n.index_id = d.index_id AND n.key = d.key"
    " WHERE d.index_id = ? AND instr(d.key, ?) > 0 ORDER BY d.count DESC LIMIT ?"
)
_DETAILS_QUERY = (
    "SELECT d.key, n.name, d.version, d.summary, d.summary_version"
    " FROM search_details d JOIN search_names n USING (index_id, key)"
    " WHERE d.index_id = ? AND d.key"
)
_IN_BATCH = 500  # bound parameters per IN (...) query, well under SQLite's limit
_STAGE_BATCH = 5_000  # staged names per transaction: bounds the temp journal, not the lock
_STAGINGS = itertools.count()  # a name for each sync's staging table


def _rows_in(
    db: sqlite3.Connection, query: str, keys: list[str], leading: tuple[Any, ...] = ()
) -> Iterator[tuple[Any, ...]]:
    """The rows of `query` (ending in the column to match) `IN` keys, in bounded batches;
    `leading` binds the query's parameters before the list."""
    for start in range(0, len(keys), _IN_BATCH):
        batch = keys[start : start + _IN_BATCH]
        marks = ",".join("?" * len(batch))
        yield from db.execute(f"{query} IN ({marks})", (*leading, *batch))  # only ? marks


def _index_id(db: sqlite3.Connection, name: str) -> int:
    """The number of the index `name`, given it on first use."""
    row = db.execute("SELECT id FROM indexes WHERE name = ?", (name,)).fetchone()
    if row is None:
        with db:
            db.execute("INSERT OR IGNORE INTO indexes (name) VALUES (?)", (name,))
        row = db.execute("SELECT id FROM indexes WHERE name = ?", (name,)).fetchone()
    if row[0] >= _MAX_INDEXES:
        raise StorageError(f"metadata store: more than {_MAX_INDEXES} indexes, {name} too")
    return int(row[0])


def _id_range(index_id: int) -> tuple[int, int]:
    """The first id of the index's search names (and full-text rows), and the end."""
    return index_id << _INDEX_SHIFT, (index_id + 1) << _INDEX_SHIFT


def _next_id(db: sqlite3.Connection, index_id: int) -> int:
    """The last search name id of the index; the next ids follow it. Under the write lock."""
    first, end = _id_range(index_id)
    (last,) = db.execute(
        "SELECT coalesce(max(id), ?) FROM search_names WHERE id >= ? AND id < ?",
        (first, first, end),
    ).fetchone()
    return int(last)


def _insert_name(db: sqlite3.Connection, index_id: int, key: str, name: str) -> int:
    row_id = _next_id(db, index_id) + 1
    db.execute("INSERT INTO search_names VALUES (?, ?, ?, ?)", (row_id, index_id, key, name))
    db.execute("INSERT INTO search_trigrams (rowid, text) VALUES (?, ?)", _trigram_row(row_id, key))
    return row_id


def _trigram_row(row_id: int, key: str) -> tuple[int, str]:
    """The row of search_trigrams for a name (see migrations 6 and 8)."""
    return row_id | (min(len(key), _MAX_LENGTH) << _LENGTH_SHIFT), f"-{key}-"


@contextmanager
def _immediate(db: sqlite3.Connection) -> Iterator[None]:
    """One write transaction that holds the write lock from its first read."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.rollback()
        raise
    db.commit()


def _phrase(words: Sequence[str]) -> str:
    """The words as an FTS5 phrase; a last word of three characters or more matches as a
    prefix too ("reque" finds "requests"). Words are letters and digits: no FTS5 syntax."""
    phrase = '"' + " ".join(words) + '"'
    return phrase + "*" if len(words[-1]) >= 3 else phrase


def _merge_names(
    db: sqlite3.Connection, index_id: int, staging: str, after: str, limit: int
) -> str | None:
    """Reconcile the next keys after `after` of the index's search names with the staging
    table: at most `limit` of each, up to the last key both sides have read past. Returns
    that key, or None when both are exhausted."""
    staged = db.execute(
        f"SELECT key, name FROM {staging} WHERE key > ? ORDER BY key LIMIT ?",  # noqa: S608
        (after, limit),
    ).fetchall()
    existing = db.execute(
        "SELECT key, id, name FROM search_names WHERE index_id = ? AND key > ?"
        " ORDER BY key LIMIT ?",
        (index_id, after, limit),
    ).fetchall()
    # A side that returned fewer than `limit` rows has nothing more: it does not bound.
    bounds = [rows[-1][0] for rows in (staged, existing) if len(rows) == limit]
    upper = min(bounds) if bounds else None
    if upper is not None:
        staged = [row for row in staged if row[0] <= upper]
        existing = [row for row in existing if row[0] <= upper]
    incoming = dict(staged)
    for key, row_id, name in existing:
        if key not in incoming:
            if db.execute(
                "SELECT 1 FROM search_details WHERE index_id = ? AND key = ?", (index_id, key)
            ).fetchone():
                continue  # seen by bodega: still searchable while its page is cached
            db.execute("DELETE FROM search_names WHERE id = ?", (row_id,))
            db.execute(
                "DELETE FROM search_trigrams WHERE rowid = ?", (_trigram_row(row_id, key)[0],)
            )
        elif incoming[key] != name:
            db.execute("UPDATE search_names SET name = ? WHERE id = ?", (incoming[key], row_id))
    known = {key for key, _, _ in existing}
    added = [(key, name) for key, name in staged if key not in known]
    if added:
        # Ids chosen here, under the write lock this transaction holds, so the full-text
        # rows get exactly the ids of the names it inserted.
        last_id = _next_id(db, index_id)
        rows = [(last_id + n, index_id, key, name) for n, (key, name) in enumerate(added, start=1)]
        db.executemany("INSERT INTO search_names VALUES (?, ?, ?, ?)", rows)
        # In rowid order: FTS5 writes a chunk's segment with far less work (a third of the
        # time of a sync, and of its longest chunk, measured on 300k names).
        db.executemany(
            "INSERT INTO search_trigrams (rowid, text) VALUES (?, ?)",
            sorted(_trigram_row(row_id, key) for row_id, _, key, _ in rows),
        )
    return upper


def _damaged(path: Path, error: sqlite3.DatabaseError) -> str:
    return (
        f"the metadata store {path} is damaged ({error}); stop bodega, move that file aside"
        " (with its -wal and -shm files) and start again: bodega then starts an empty store"
    )


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, check_same_thread=False)
    try:
        _prepare(connection)
    except BaseException:
        connection.close()
        raise
    return connection


def _prepare(connection: sqlite3.Connection) -> None:
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("PRAGMA busy_timeout=10000")
    # Staged names for search (800k) spill to a temp file, never to memory, on every build.
    connection.execute("PRAGMA temp_store=FILE")
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        connection.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")
