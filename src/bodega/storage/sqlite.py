"""The metadata store on SQLite (WAL), all of its work on one dedicated thread.

One thread owns the connection, so the event loop never waits on SQLite and writes never
contend with each other inside the process (datasette's pattern). busy_timeout covers
another process holding the lock for a while (threat 33).
"""

import asyncio
import json
import math
import sqlite3
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from bodega.storage.metadata import StoredBlob, StoredPage, StoredRoot

T = TypeVar("T")

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
    # 2: last access per blob, for least-recently-used eviction and `bodega cache prune`.
    """
ALTER TABLE blobs ADD COLUMN accessed_at REAL NOT NULL DEFAULT 0;
UPDATE blobs SET accessed_at = stored_at;
CREATE INDEX blobs_by_access ON blobs (accessed_at);
""",
)

# The root list's two renderings are blobs without a row; eviction and pruning must skip them.
_BLOBS_BY_ACCESS = """
SELECT key, size, accessed_at FROM blobs
WHERE accessed_at < ?
  AND key NOT IN (SELECT html_key FROM root UNION ALL SELECT json_key FROM root)
ORDER BY accessed_at LIMIT ?
"""


class SqliteMetadataStore:
    """A MetadataStore in one SQLite file."""

    def __init__(self, connection: sqlite3.Connection, executor: ThreadPoolExecutor) -> None:
        self._connection = connection
        self._executor = executor

    @classmethod
    async def open(cls, path: Path) -> "SqliteMetadataStore":
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bodega-sqlite")
        loop = asyncio.get_running_loop()
        connection = await loop.run_in_executor(executor, _connect, path)
        return cls(connection, executor)

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, work, self._connection)

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
            row = db.execute(
                "SELECT html_key, json_key, project_count, fetched_at FROM root"
            ).fetchone()
            return None if row is None else StoredRoot(*row)

        return await self._run(work)

    async def put_root(self, root: StoredRoot) -> None:
        def work(db: sqlite3.Connection) -> None:
            with db:
                db.execute(
                    "INSERT OR REPLACE INTO root VALUES (1, ?, ?, ?, ?)",
                    (root.html_key, root.json_key, root.project_count, root.fetched_at),
                )

        await self._run(work)

    async def close(self) -> None:
        await self._run(lambda db: db.close())
        self._executor.shutdown(wait=True)


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("PRAGMA busy_timeout=10000")
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    for number, script in enumerate(_MIGRATIONS[version:], start=version + 1):
        connection.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")
    return connection
