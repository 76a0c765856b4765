"""The metadata store on SQLite (WAL), all of its work on one dedicated thread.

One thread owns the connection, so the event loop never waits on SQLite and writes never
contend with each other inside the process (datasette's pattern). busy_timeout covers
another process holding the lock for a while (threat 33).
"""

import asyncio
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
from bodega.storage.metadata import (
    FileDigests,
    SearchDetails,
    StoredBlob,
    StoredPage,
    StoredRoot,
)

T = TypeVar("T")

# SQLite 3.34 brought FTS5's trigram tokenizer, which finds a substring of 800k names in a
# millisecond (LIKE '%term%' uses it). Older SQLite gets a plain table with the same
# columns: the same queries work, scanning instead of looking up.
_HAS_TRIGRAMS = sqlite3.sqlite_version_info >= (3, 34, 0)
# automerge 8 (default 4): a sync of 800k names adds a segment per chunk, and merging them
# less eagerly halves its writes and its longest chunk; lookups stay in milliseconds.
_TRIGRAM_TABLE = (
    "CREATE VIRTUAL TABLE search_trigrams USING fts5("
    "text, tokenize='trigram', detail='none', columnsize=0);"
    " INSERT INTO search_trigrams (search_trigrams, rank) VALUES ('automerge', 8)"
    if _HAS_TRIGRAMS
    else "CREATE TABLE search_trigrams (text TEXT NOT NULL)"
)
_TRIGRAM_ROWID = "(length(key) << 32) | id"

# Each entry upgrades the schema by one version; append, never edit a released one.
_MIGRATIONS: tuple[str, ...] = (
    """
CREATE TABLE IF NOT EXISTS pages (
    project TEXT PRIMARY KEY,
    record TEXT NOT NULL,
    etag TEXT,
    last_modified TEXT,
    fetched_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS blobs (
    key TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    stored_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS root (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    html_key TEXT NOT NULL,
    json_key TEXT NOT NULL,
    project_count INTEGER NOT NULL,
    fetched_at REAL NOT NULL
);
""",
    # 2: search. Names from the root list and the projects bodega has seen; FTS5 over the
    # words of each name and its summary (rowid = search_names.id).
    """
CREATE TABLE IF NOT EXISTS search_names (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS search_details (
    key TEXT PRIMARY KEY,
    version TEXT,
    summary TEXT NOT NULL,
    summary_version TEXT
);
CREATE VIRTUAL TABLE IF NOT EXISTS search_text USING fts5(words, summary);
CREATE TABLE IF NOT EXISTS search_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    root_key TEXT NOT NULL
);
""",
    # 3: core metadata bodega extracted from wheels whose upstream page offered none (PEP 658).
    """
CREATE TABLE IF NOT EXISTS core_metadata (
    project TEXT NOT NULL,
    filename TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    PRIMARY KEY (project, filename)
);
""",
    # 4: last access per blob, for least-recently-used eviction and `bodega cache prune`.
    """
ALTER TABLE blobs ADD COLUMN accessed_at REAL NOT NULL DEFAULT 0;
UPDATE blobs SET accessed_at = stored_at;
CREATE INDEX blobs_by_access ON blobs (accessed_at);
""",
    # 5: the gzip copies of the root list's renderings, NULL until they are made (issue 6).
    """
ALTER TABLE root ADD COLUMN html_gzip_key TEXT;
ALTER TABLE root ADD COLUMN json_gzip_key TEXT;
""",
    # 6: search inside names (issue 16). Each name as "-key-", so "-term-" finds whole
    # words and "term" any substring; rowid = length << 32 | search_names.id, so the first
    # matches in rowid order are the shortest names. And how often bodega served each
    # project, its own popularity signal. The full-text index keeps only summaries, one row
    # per project with details: names are matched by trigrams now, and a sync no longer
    # writes 800k rows of words. Only the names bodega has details of are kept
    # (tables rebuilt, not 800k rows deleted: seconds, not tens of seconds, at start-up);
    # the next sync, due at once, adds the others back with their trigrams.
    f"""
CREATE TABLE search_names_kept (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL
);
INSERT INTO search_names_kept SELECT id, key, name FROM search_names
  WHERE key IN (SELECT key FROM search_details);
DROP TABLE search_names;
ALTER TABLE search_names_kept RENAME TO search_names;
DROP TABLE search_text;
CREATE VIRTUAL TABLE search_text USING fts5(summary);
INSERT INTO search_text (rowid, summary)
  SELECT n.id, d.summary FROM search_names n JOIN search_details d USING (key);
{_TRIGRAM_TABLE};
INSERT INTO search_trigrams (rowid, text) SELECT {_TRIGRAM_ROWID}, '-' || key || '-'
  FROM search_names;
CREATE TABLE search_downloads (key TEXT PRIMARY KEY, count INTEGER NOT NULL);
DELETE FROM search_state;
""",  # noqa: S608 (constant SQL)
    # 7: the other digests of files bodega hashed itself, by their sha256, for the JSON API's
    # `digests` (issue 16). Facts about the bytes: they outlive the blob's eviction.
    """
CREATE TABLE IF NOT EXISTS file_digests (
    sha256 TEXT PRIMARY KEY,
    md5 TEXT NOT NULL,
    blake2b_256 TEXT NOT NULL
) WITHOUT ROWID;
""",
)

# The root list's blobs (two renderings, their gzip copies) have no row; eviction and
# pruning must skip them all the same. NOT EXISTS, not NOT IN: a NULL gzip key in a NOT IN
# list would make it match no key at all.
_BLOBS_BY_ACCESS = """
SELECT key, size, accessed_at FROM blobs
WHERE accessed_at < ?
  AND NOT EXISTS (
    SELECT 1 FROM root WHERE blobs.key IN (html_key, json_key, html_gzip_key, json_gzip_key)
  )
ORDER BY accessed_at LIMIT ?
"""
_ROOT_COLUMNS = "html_key, json_key, project_count, fetched_at, html_gzip_key, json_gzip_key"
# The gzip copies stay while the renderings they were made from do (a refresh that found
# the same list); a root with other renderings brings its own, or none yet.
_PUT_ROOT = f"""
INSERT INTO root (id, {_ROOT_COLUMNS}) VALUES (1, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
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
    """A MetadataStore in one SQLite file.

    Bulk background work (syncing 800k project names for search) has a connection and a
    thread of its own: in WAL mode the request path's reads never queue behind it, and its
    writes wait at most one short bulk transaction. The names are staged in a TEMP table of
    that connection (on disk, sorted by SQLite), then merged a chunk per transaction.
    """

    def __init__(self, main: "_Worker", bulk: "_Worker") -> None:
        self._main = main
        self._bulk = bulk

    @classmethod
    async def open(cls, path: Path) -> "SqliteMetadataStore":
        main = await _Worker.start(path, "bodega-sqlite")
        bulk = await _Worker.start(path, "bodega-sqlite-bulk")
        return cls(main, bulk)

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return await self._main.run(work)

    async def get_page(self, project: str) -> StoredPage | None:
        def work(db: sqlite3.Connection) -> StoredPage | None:
            row = db.execute(
                "SELECT record, etag, last_modified, fetched_at FROM pages WHERE project = ?",
                (project,),
            ).fetchone()
            if row is None:
                return None
            return StoredPage(project, json.loads(row[0]), row[1], row[2], row[3])

        return await self._run(work)

    async def put_page(self, page: StoredPage) -> None:
        def work(db: sqlite3.Connection) -> None:
            with db:
                db.execute(
                    "INSERT OR REPLACE INTO pages VALUES (?, ?, ?, ?, ?)",
                    (
                        page.project,
                        json.dumps(page.record, separators=(",", ":")),
                        page.etag,
                        page.last_modified,
                        page.fetched_at,
                    ),
                )

        await self._run(work)

    async def mark_page_fresh(self, project: str, fetched_at: float) -> None:
        def work(db: sqlite3.Connection) -> None:
            with db:
                db.execute(
                    "UPDATE pages SET fetched_at = ? WHERE project = ?", (fetched_at, project)
                )

        await self._run(work)

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

    async def has_page(self, project: str) -> bool:
        def work(db: sqlite3.Connection) -> bool:
            return (
                db.execute("SELECT 1 FROM pages WHERE project = ?", (project,)).fetchone()
                is not None
            )

        return await self._run(work)

    async def forget_page(self, project: str) -> bool:
        def work(db: sqlite3.Connection) -> bool:
            with db:
                return db.execute("DELETE FROM pages WHERE project = ?", (project,)).rowcount > 0

        return await self._run(work)

    async def page_count(self) -> int:
        def work(db: sqlite3.Connection) -> int:
            return int(db.execute("SELECT count(*) FROM pages").fetchone()[0])

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

    async def get_root(self) -> StoredRoot | None:
        def work(db: sqlite3.Connection) -> StoredRoot | None:
            row = db.execute(f"SELECT {_ROOT_COLUMNS} FROM root").fetchone()  # noqa: S608
            return None if row is None else StoredRoot(*row)

        return await self._run(work)

    async def put_root(self, root: StoredRoot) -> StoredRoot:
        values = (
            root.html_key,
            root.json_key,
            root.project_count,
            root.fetched_at,
            root.html_gzip_key,
            root.json_gzip_key,
        )

        def work(db: sqlite3.Connection) -> StoredRoot:
            with db:
                (row,) = db.execute(_PUT_ROOT, values).fetchall()
                return StoredRoot(*row)

        return await self._run(work)

    async def add_root_gzip(self, root: StoredRoot) -> bool:
        values = (root.html_gzip_key, root.json_gzip_key, root.html_key, root.json_key)

        def work(db: sqlite3.Connection) -> bool:
            with db:
                cursor = db.execute(
                    "UPDATE root SET html_gzip_key = ?, json_gzip_key = ?"
                    " WHERE html_key = ? AND json_key = ?",
                    values,
                )
                return cursor.rowcount > 0

        return await self._run(work)

    async def cached_keys(self, keys: Collection[str]) -> set[str]:
        wanted = list(keys)

        def work(db: sqlite3.Connection) -> set[str]:
            return {row[0] for row in _rows_in(db, "SELECT key FROM blobs WHERE key", wanted)}

        return await self._run(work)

    async def start_search_sync(self) -> None:
        await self._bulk.run(_start_staging)

    async def stage_search_names(self, names: Sequence[tuple[str, str]]) -> None:
        def work(db: sqlite3.Connection) -> None:
            # The TEMP table is the bulk connection's own: these transactions take no lock
            # another connection waits on, and SQLite sorts and de-duplicates on disk.
            for start in range(0, len(names), _STAGE_BATCH):
                with db:
                    db.executemany(
                        "INSERT OR REPLACE INTO temp.search_staging VALUES (?, ?)",
                        names[start : start + _STAGE_BATCH],
                    )

        await self._bulk.run(work)

    async def merge_search_names(self, after: str | None, limit: int) -> str | None:
        def work(db: sqlite3.Connection) -> str | None:
            with _immediate(db):
                upper = _merge_names(db, after or "", limit)
            if upper is None:
                db.execute("DROP TABLE temp.search_staging")
            return upper

        return await self._bulk.run(work)

    async def search_root_key(self) -> str | None:
        def work(db: sqlite3.Connection) -> str | None:
            row = db.execute("SELECT root_key FROM search_state").fetchone()
            return None if row is None else str(row[0])

        return await self._run(work)

    async def set_search_root_key(self, key: str) -> None:
        def work(db: sqlite3.Connection) -> None:
            with db:
                db.execute("INSERT OR REPLACE INTO search_state VALUES (1, ?)", (key,))

        await self._run(work)

    async def get_search_details(self, keys: Collection[str]) -> dict[str, SearchDetails]:
        wanted = list(keys)

        def work(db: sqlite3.Connection) -> dict[str, SearchDetails]:
            rows = _rows_in(db, _DETAILS_QUERY + " WHERE d.key", wanted)
            return {row[0]: SearchDetails(*row) for row in rows}

        return await self._run(work)

    async def put_search_details(self, details: SearchDetails) -> None:
        def work(db: sqlite3.Connection) -> None:
            # IMMEDIATE: the read of the name's row and the insert are one step that the
            # bulk connection's merge cannot come between.
            with _immediate(db):
                row = db.execute(
                    "SELECT id FROM search_names WHERE key = ?", (details.key,)
                ).fetchone()
                row_id = _insert_name(db, details.key, details.name) if row is None else row[0]
                db.execute(
                    "INSERT OR REPLACE INTO search_details VALUES (?, ?, ?, ?)",
                    (details.key, details.version, details.summary, details.summary_version),
                )
                db.execute("DELETE FROM search_text WHERE rowid = ?", (row_id,))
                db.execute(
                    "INSERT INTO search_text (rowid, summary) VALUES (?, ?)",
                    (row_id, details.summary),
                )

        await self._run(work)

    async def match_names(self, key: str, limit: int) -> list[tuple[str, str]]:
        def work(db: sqlite3.Connection) -> list[tuple[str, str]]:
            found = db.execute(
                "SELECT key, name FROM search_names WHERE key = ?", (key,)
            ).fetchall()
            # Shortest names first (the rowid's order), read no further than `limit`: a
            # common word's tens of thousands of matches are never all visited.
            found += db.execute(_SHORTEST_MATCHES, (f"%-{key}-%", limit)).fetchall()
            if len(key) >= MIN_SUBSTRING:
                found += db.execute(_SHORTEST_MATCHES, (f"%{key}%", limit)).fetchall()
            # The projects this bodega served, however long their names: few, so scanned.
            found += db.execute(_SERVED_MATCHES, (key, limit)).fetchall()
            return found

        return await self._run(work)

    async def match_summaries(self, phrase: str, limit: int) -> list[tuple[str, str]]:
        def work(db: sqlite3.Connection) -> list[tuple[str, str]]:
            return db.execute(_FIRST_MATCHES, ("summary : " + phrase, limit)).fetchall()

        return await self._run(work)

    async def add_downloads(self, counts: Mapping[str, int]) -> None:
        rows = list(counts.items())

        def work(db: sqlite3.Connection) -> None:
            with db:
                db.executemany(
                    "INSERT INTO search_downloads VALUES (?, ?)"
                    " ON CONFLICT (key) DO UPDATE SET count = count + excluded.count",
                    rows,
                )

        await self._run(work)

    async def get_downloads(self, keys: Collection[str]) -> dict[str, int]:
        wanted = list(keys)

        def work(db: sqlite3.Connection) -> dict[str, int]:
            query = "SELECT key, count FROM search_downloads WHERE key"
            return {key: count for key, count in _rows_in(db, query, wanted)}

        return await self._run(work)

    async def search_counts(self) -> tuple[int, int]:
        def work(db: sqlite3.Connection) -> tuple[int, int]:
            # max(id) instead of count(*): counting 800k rows costs tens of ms, and ids
            # only grow, so it is exact until names are removed and an upper bound after.
            names = db.execute("SELECT coalesce(max(id), 0) FROM search_names").fetchone()[0]
            details = db.execute("SELECT count(*) FROM search_details").fetchone()[0]
            return int(names), int(details)

        return await self._run(work)

    async def put_core_metadata(self, project: str, filename: str, sha256: str) -> None:
        def work(db: sqlite3.Connection) -> None:
            with db:
                db.execute(
                    "INSERT OR REPLACE INTO core_metadata VALUES (?, ?, ?)",
                    (project, filename, sha256),
                )

        await self._run(work)

    async def core_metadata_of(self, project: str) -> dict[str, str]:
        def work(db: sqlite3.Connection) -> dict[str, str]:
            rows = db.execute(
                "SELECT filename, sha256 FROM core_metadata WHERE project = ?", (project,)
            )
            return dict(rows.fetchall())

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

    def index(self, name: str) -> "SqliteMetadataStore":  # STUB until seam-metadata lands
        return self

    async def close(self) -> None:
        await self._bulk.close()
        await self._main.close()


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


# The first FTS matches, then their names by primary key. Ordering by bm25 or joining
# first makes SQLite score or visit every match: 50 ms for a common word (bench/search.py).
_FIRST_MATCHES = (
    "SELECT n.key, n.name FROM (SELECT rowid AS id FROM search_text WHERE search_text MATCH ?"
    " LIMIT ?) AS m CROSS JOIN search_names n ON n.id = m.id"
)
# LIKE on the trigram table: the index finds the rows, and in rowid order (shortest names
# first) with LIMIT SQLite stops at the first `limit`. Keys are [a-z0-9-]: no LIKE wildcard.
_SHORTEST_MATCHES = (
    "SELECT n.key, n.name FROM (SELECT rowid & 4294967295 AS id FROM search_trigrams"
    " WHERE text LIKE ? ORDER BY rowid LIMIT ?) AS m CROSS JOIN search_names n ON n.id = m.id"
)
_SERVED_MATCHES = (
    "SELECT n.key, n.name FROM search_downloads d JOIN search_names n USING (key)"
    " WHERE instr(d.key, ?) > 0 ORDER BY d.count DESC LIMIT ?"
)
_DETAILS_QUERY = (
    "SELECT d.key, n.name, d.version, d.summary, d.summary_version"
    " FROM search_details d JOIN search_names n USING (key)"
)
_IN_BATCH = 500  # bound parameters per IN (...) query, well under SQLite's limit
_STAGE_BATCH = 5_000  # staged names per transaction: bounds the temp journal, not the lock


def _rows_in(db: sqlite3.Connection, query: str, keys: list[str]) -> Iterator[tuple[Any, ...]]:
    """The rows of `query` (ending in the column to match) `IN` keys, in bounded batches."""
    for start in range(0, len(keys), _IN_BATCH):
        batch = keys[start : start + _IN_BATCH]
        marks = ",".join("?" * len(batch))
        yield from db.execute(f"{query} IN ({marks})", batch)  # only ? placeholders


def _insert_name(db: sqlite3.Connection, key: str, name: str) -> int:
    cursor = db.execute("INSERT INTO search_names (key, name) VALUES (?, ?)", (key, name))
    row_id = int(cursor.lastrowid or 0)
    db.execute("INSERT INTO search_trigrams (rowid, text) VALUES (?, ?)", _trigram_row(row_id, key))
    return row_id


def _trigram_row(row_id: int, key: str) -> tuple[int, str]:
    """The row of search_trigrams for a name (see migration 6)."""
    return (len(key) << 32) | row_id, f"-{key}-"


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


def _start_staging(db: sqlite3.Connection) -> None:
    db.execute("DROP TABLE IF EXISTS temp.search_staging")
    db.execute(
        "CREATE TEMP TABLE search_staging (key TEXT PRIMARY KEY, name TEXT NOT NULL) WITHOUT ROWID"
    )


def _merge_names(db: sqlite3.Connection, after: str, limit: int) -> str | None:
    """Reconcile the next keys after `after` of search_names with the staging: at most
    `limit` of each, up to the last key both sides have read past. Returns that key, or None
    when both are exhausted."""
    staged = db.execute(
        "SELECT key, name FROM temp.search_staging WHERE key > ? ORDER BY key LIMIT ?",
        (after, limit),
    ).fetchall()
    existing = db.execute(
        "SELECT key, id, name FROM search_names WHERE key > ? ORDER BY key LIMIT ?",
        (after, limit),
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
            if db.execute("SELECT 1 FROM search_details WHERE key = ?", (key,)).fetchone():
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
        (last_id,) = db.execute("SELECT coalesce(max(id), 0) FROM search_names").fetchone()
        rows = [(last_id + n, key, name) for n, (key, name) in enumerate(added, start=1)]
        db.executemany("INSERT INTO search_names (id, key, name) VALUES (?, ?, ?)", rows)
        # In rowid order: FTS5 writes a chunk's segment with far less work (a third of the
        # time of a sync, and of its longest chunk, measured on 300k names).
        db.executemany(
            "INSERT INTO search_trigrams (rowid, text) VALUES (?, ?)",
            sorted(_trigram_row(row_id, key) for row_id, key, _ in rows),
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
    for number, script in enumerate(_MIGRATIONS[version:], start=version + 1):
        connection.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")
