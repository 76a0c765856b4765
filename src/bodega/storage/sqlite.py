"""The metadata store on SQLite (WAL), all of its work on one dedicated thread.

One thread owns the connection, so the event loop never waits on SQLite and writes never
contend with each other inside the process (datasette's pattern). busy_timeout covers
another process holding the lock for a while (threat 33).
"""

import asyncio
import json
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from bodega.errors import StorageError
from bodega.storage.metadata import StoredPage, StoredRoot

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
)


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
        try:
            return await loop.run_in_executor(self._executor, work, self._connection)
        except sqlite3.OperationalError as error:
            # "database is locked" past busy_timeout, "database or disk is full": the store
            # cannot write now, which callers may survive (threats 32, 33).
            raise StorageError(f"metadata store: {error}") from error

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
                db.execute("INSERT OR REPLACE INTO blobs VALUES (?, ?, ?)", (key, size, stored_at))

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
