"""The metadata store on PostgreSQL (asyncpg, a bounded pool), for bodegas that share one
cache: the same records as SQLite's store, every replica reading and writing them.

Migrations (postgres_schema.py) are applied at open, in one transaction under an advisory
lock, so replicas starting together upgrade the schema once. A connection that breaks (the
server restarted, a failover) expires the pool's others and the work is tried again once
on fresh ones: a restart costs the requests made while the server is down, no more.
"""

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import TypeAlias, TypeVar

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from bodega.core.urls import shown_url
from bodega.errors import ConfigError, StorageError
from bodega.storage import postgres_search as search
from bodega.storage.index_views import SharedConcerns
from bodega.storage.metadata import (
    FileDigests,
    SearchDetails,
    StoredBlob,
    StoredPage,
    StoredRoot,
)
from bodega.storage.postgres_accounts import PostgresAccountStore
from bodega.storage.postgres_hosted import PostgresHostedStore
from bodega.storage.postgres_order import InOrder
from bodega.storage.postgres_policy import PostgresPolicyStore
from bodega.storage.postgres_schema import MIGRATION_LOCK, MIGRATIONS, SCHEMA_TABLE

T = TypeVar("T")
# asyncpg's classes are generic to the type checker only.
Db: TypeAlias = "PoolConnectionProxy[asyncpg.Record]"

logger = logging.getLogger(__name__)

# Connections per process: enough for the request path and the background duties at once,
# few enough that a handful of replicas stay far under PostgreSQL's max_connections (100).
POOL_SIZE = 10
CONNECT_TIMEOUT = 10.0  # seconds to open a connection (or wait for a free one in the pool)
COMMAND_TIMEOUT = 60.0  # seconds a statement may run; a search sync's chunk takes far less
CLOSE_TIMEOUT = 10.0

# What a broken or refused connection raises: the server went away, restarts, or refuses
# connections while it starts. Worth one more try on a fresh connection.
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # TimeoutError too, which _run takes apart
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
)
_OPEN_ERRORS: tuple[type[BaseException], ...] = (*_CONNECTION_ERRORS, asyncpg.PostgresError)

_ROOT_COLUMNS = "html_key, json_key, project_count, fetched_at, html_gzip_key, json_gzip_key"
# As SQLite's: the gzip copies stay while the renderings they were made from do.
_PUT_ROOT = f"""
INSERT INTO root (index_id, {_ROOT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (index_id) DO UPDATE SET
  html_gzip_key = CASE WHEN (root.html_key, root.json_key) = (excluded.html_key, excluded.json_key)
    THEN coalesce(excluded.html_gzip_key, root.html_gzip_key) ELSE excluded.html_gzip_key END,
  json_gzip_key = CASE WHEN (root.html_key, root.json_key) = (excluded.html_key, excluded.json_key)
    THEN coalesce(excluded.json_gzip_key, root.json_gzip_key) ELSE excluded.json_gzip_key END,
  html_key = excluded.html_key,
  json_key = excluded.json_key,
  project_count = excluded.project_count,
  fetched_at = excluded.fetched_at
RETURNING {_ROOT_COLUMNS}
"""  # noqa: S608 (constant column names)
# The root lists' blobs and hosted files' blobs have no row of their own (a hosted file's
# bytes may have one all the same, cached from a mirror); eviction must skip them all the same.
_BLOBS_BY_ACCESS = """
SELECT key, size, accessed_at FROM blobs
WHERE accessed_at < $1
  AND NOT EXISTS (
    SELECT 1 FROM root WHERE blobs.key IN (html_key, json_key, html_gzip_key, json_gzip_key)
  )
  AND NOT EXISTS (SELECT 1 FROM hosted_files WHERE blobs.key = sha256)
  AND NOT EXISTS (SELECT 1 FROM hosted_files WHERE blobs.key = metadata_sha256)
ORDER BY accessed_at LIMIT $2
"""


class PostgresMetadataStore:
    """The metadata of every index in one PostgreSQL database: blob records and file
    digests, which all indexes share, here; each index's through `index(name)`."""

    def __init__(self, pool: "asyncpg.Pool[asyncpg.Record]", dsn: str) -> None:
        self._pool = pool
        self._label = shown_url(dsn)
        self._index_ids: dict[str, int] = {}
        # Some records are written behind the response (a page, proxy/pages.py; a file
        # upstream removed, proxy/policy.py), and the next request must read them: the
        # operations on one such record keep their order.
        self._in_order = InOrder()

    @classmethod
    async def open(cls, dsn: str, *, pool_size: int = POOL_SIZE) -> "PostgresMetadataStore":
        """Connect and bring the schema up to date; StorageError if the server cannot be
        reached or refuses (naming the database, never its password)."""
        label = shown_url(dsn)
        try:
            pool = await asyncpg.create_pool(
                dsn,
                min_size=1,
                max_size=pool_size,
                timeout=CONNECT_TIMEOUT,
                command_timeout=COMMAND_TIMEOUT,
            )
        except ValueError as error:  # asyncpg's own: a DSN it cannot parse
            raise ConfigError(f"database {label}: {error}") from None
        except _OPEN_ERRORS as error:
            raise StorageError(f"cannot open the metadata database {label}: {error}") from None
        store = cls(pool, dsn)
        try:
            await store._run(_migrate)
        except BaseException:
            await store.close()
            raise
        return store

    def index(self, name: str) -> "PostgresIndexStore":
        """The metadata of the index `name` (`<user>/<index>`), created on first use."""
        return PostgresIndexStore(self, name)

    def hosted(self, name: str) -> PostgresHostedStore:
        """The projects and files of the hosted index `name`."""
        return PostgresHostedStore(self, name)

    def accounts(self) -> PostgresAccountStore:
        """Accounts and their API tokens, shared by every index."""
        return PostgresAccountStore(self._run)

    def policy(self) -> PostgresPolicyStore:
        """Supply-chain policy's records (exemptions, files removed upstream)."""
        return PostgresPolicyStore(self._run, self._in_order)

    async def _run(self, work: Callable[[Db], Awaitable[T]]) -> T:
        """Run `work` on a connection of the pool; once more on a fresh connection if that
        one broke. Errors are StorageError: the request path survives them.

        Trying again is safe for almost every write (one statement or transaction of
        upserts and deletes). When a connection is lost after a commit, before its answer,
        add_downloads counts twice (search's popularity signal: harmless) and a search sync
        is added twice (its leftover staging is dropped a day later); an exemption is not
        (add_exemption finds the first)."""
        for attempt in (1, 2):
            try:
                async with self._pool.acquire(timeout=CONNECT_TIMEOUT) as db:
                    return await work(db)
            except TimeoutError as error:
                # No free connection in time (a busy pool), or a statement past its time:
                # nothing broke, so no connection is replaced and nothing is tried again.
                raise StorageError(f"metadata database {self._label}: no answer in time") from error
            except _CONNECTION_ERRORS as error:
                if attempt == 2 or self._pool.is_closing():
                    raise StorageError(f"metadata database {self._label}: {error}") from error
                logger.warning("metadata database %s: %s; reconnecting", self._label, error)
                # The other idle connections broke too when the server went away.
                await self._pool.expire_connections()
            except asyncpg.PostgresError as error:
                raise StorageError(f"metadata database {self._label}: {error}") from error
        raise AssertionError("unreachable")

    async def _run_in(self, name: str, work: Callable[[Db, int], Awaitable[T]]) -> T:
        """Run `work` with the number of the index `name`, looked up once per process."""

        async def scoped(db: Db) -> T:
            index_id = self._index_ids.get(name)
            if index_id is None:
                index_id = self._index_ids.setdefault(name, await _index_id(db, name))
            return await work(db, index_id)

        return await self._run(scoped)

    async def record_blob(self, key: str, size: int, stored_at: float) -> None:
        async def work(db: Db) -> None:
            await db.execute(
                "INSERT INTO blobs (key, size, stored_at, accessed_at) VALUES ($1, $2, $3, $3)"
                " ON CONFLICT (key) DO UPDATE SET size = excluded.size,"
                " stored_at = excluded.stored_at, accessed_at = excluded.accessed_at",
                key,
                size,
                stored_at,
            )

        await self._run(work)

    async def blob_keys(self) -> set[str]:
        async def work(db: Db) -> set[str]:
            return {row[0] for row in await db.fetch("SELECT key FROM blobs")}

        return await self._run(work)

    async def forget_blob(self, key: str) -> None:
        async def work(db: Db) -> None:
            await db.execute("DELETE FROM blobs WHERE key = $1", key)

        await self._run(work)

    async def is_writable(self) -> bool:
        async def work(db: Db) -> bool:
            writable = await db.fetchval(
                "SELECT NOT pg_is_in_recovery()"
                " AND current_setting('default_transaction_read_only') = 'off'"
            )
            return bool(writable)

        try:
            return await self._run(work)
        except StorageError:
            return False

    async def touch_blobs(self, accessed: Mapping[str, float]) -> None:
        keys, times = list(accessed), list(accessed.values())

        async def work(db: Db) -> None:
            await db.execute(
                "UPDATE blobs SET accessed_at = v.at"
                " FROM unnest($1::text[], $2::float8[]) AS v(key, at)"
                " WHERE blobs.key = v.key AND blobs.accessed_at < v.at",
                keys,
                times,
            )

        await self._run(work)

    async def blob_usage(self) -> tuple[int, int]:
        async def work(db: Db) -> tuple[int, int]:
            row = await db.fetchrow("SELECT count(*), coalesce(sum(size), 0) FROM blobs")
            assert row is not None
            return int(row[0]), int(row[1])

        return await self._run(work)

    async def blobs_by_access(
        self, *, unused_since: float | None = None, limit: int | None = None
    ) -> list[StoredBlob]:
        since = float("inf") if unused_since is None else unused_since

        async def work(db: Db) -> list[StoredBlob]:
            rows = await db.fetch(_BLOBS_BY_ACCESS, since, limit)  # LIMIT NULL: no limit
            return [StoredBlob(row[0], row[1], row[2]) for row in rows]

        return await self._run(work)

    async def cached_keys(self, keys: Collection[str]) -> set[str]:
        wanted = list(keys)

        async def work(db: Db) -> set[str]:
            rows = await db.fetch("SELECT key FROM blobs WHERE key = ANY($1::text[])", wanted)
            return {row[0] for row in rows}

        return await self._run(work)

    async def put_file_digests(self, digests: FileDigests) -> None:
        async def work(db: Db) -> None:
            await db.execute(
                "INSERT INTO file_digests VALUES ($1, $2, $3) ON CONFLICT (sha256)"
                " DO UPDATE SET md5 = excluded.md5, blake2b_256 = excluded.blake2b_256",
                digests.sha256,
                digests.md5,
                digests.blake2b_256,
            )

        await self._run(work)

    async def file_digests(self, keys: Collection[str]) -> dict[str, FileDigests]:
        wanted = list(keys)

        async def work(db: Db) -> dict[str, FileDigests]:
            rows = await db.fetch(
                "SELECT sha256, md5, blake2b_256 FROM file_digests WHERE sha256 = ANY($1::text[])",
                wanted,
            )
            return {row[0]: FileDigests(row[0], row[1], row[2]) for row in rows}

        return await self._run(work)

    async def root_blob_keys(self) -> frozenset[str]:
        async def work(db: Db) -> frozenset[str]:
            rows = await db.fetch(f"SELECT {_ROOT_COLUMNS} FROM root")  # noqa: S608
            return frozenset(key for row in rows for key in StoredRoot(*row).blob_keys)

        return await self._run(work)

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self._pool.close(), CLOSE_TIMEOUT)
        except TimeoutError:
            self._pool.terminate()  # a connection still held: cut it rather than hang


class PostgresIndexStore(SharedConcerns):
    """One index's pages, root list, search and core metadata in the database; its blob
    records and file digests are the store's, shared by every index."""

    def __init__(self, store: PostgresMetadataStore, name: str) -> None:
        super().__init__(store)
        self._store = store
        self.name = name

    async def _run(self, work: Callable[[Db, int], Awaitable[T]]) -> T:
        return await self._store._run_in(self.name, work)

    async def _run_on_page(self, project: str, work: Callable[[Db, int], Awaitable[T]]) -> T:
        async with self._store._in_order.hold((self.name, project)):
            return await self._run(work)

    async def get_page(self, project: str) -> StoredPage | None:
        async def work(db: Db, index_id: int) -> StoredPage | None:
            row = await db.fetchrow(
                "SELECT record, etag, last_modified, fetched_at FROM pages"
                " WHERE index_id = $1 AND project = $2",
                index_id,
                project,
            )
            if row is None:
                return None
            return StoredPage(project, json.loads(row[0]), row[1], row[2], row[3])

        return await self._run_on_page(project, work)

    async def put_page(self, page: StoredPage) -> None:
        async def work(db: Db, index_id: int) -> None:
            await db.execute(
                "INSERT INTO pages VALUES ($1, $2, $3, $4, $5, $6)"
                " ON CONFLICT (index_id, project) DO UPDATE SET record = excluded.record,"
                " etag = excluded.etag, last_modified = excluded.last_modified,"
                " fetched_at = excluded.fetched_at",
                index_id,
                page.project,
                json.dumps(page.record, separators=(",", ":")),
                page.etag,
                page.last_modified,
                page.fetched_at,
            )

        await self._run_on_page(page.project, work)

    async def mark_page_fresh(self, project: str, fetched_at: float) -> None:
        async def work(db: Db, index_id: int) -> None:
            await db.execute(
                "UPDATE pages SET fetched_at = $1 WHERE index_id = $2 AND project = $3",
                fetched_at,
                index_id,
                project,
            )

        await self._run_on_page(project, work)

    async def has_page(self, project: str) -> bool:
        async def work(db: Db, index_id: int) -> bool:
            found = await db.fetchval(
                "SELECT 1 FROM pages WHERE index_id = $1 AND project = $2", index_id, project
            )
            return found is not None

        return await self._run_on_page(project, work)

    async def forget_page(self, project: str) -> bool:
        async def work(db: Db, index_id: int) -> bool:
            gone = await db.fetch(
                "DELETE FROM pages WHERE index_id = $1 AND project = $2 RETURNING 1",
                index_id,
                project,
            )
            return bool(gone)

        return await self._run_on_page(project, work)

    async def page_count(self) -> int:
        async def work(db: Db, index_id: int) -> int:
            count = await db.fetchval("SELECT count(*) FROM pages WHERE index_id = $1", index_id)
            return int(count)

        return await self._run(work)

    async def get_root(self) -> StoredRoot | None:
        async def work(db: Db, index_id: int) -> StoredRoot | None:
            row = await db.fetchrow(
                f"SELECT {_ROOT_COLUMNS} FROM root WHERE index_id = $1",  # noqa: S608
                index_id,
            )
            return None if row is None else StoredRoot(*row)

        return await self._run(work)

    async def put_root(self, root: StoredRoot) -> StoredRoot:
        async def work(db: Db, index_id: int) -> StoredRoot:
            row = await db.fetchrow(
                _PUT_ROOT,
                index_id,
                root.html_key,
                root.json_key,
                root.project_count,
                root.fetched_at,
                root.html_gzip_key,
                root.json_gzip_key,
            )
            assert row is not None
            return StoredRoot(*row)

        return await self._run(work)

    async def add_root_gzip(self, root: StoredRoot) -> bool:
        async def work(db: Db, index_id: int) -> bool:
            updated = await db.fetch(
                "UPDATE root SET html_gzip_key = $1, json_gzip_key = $2"
                " WHERE index_id = $3 AND html_key = $4 AND json_key = $5 RETURNING 1",
                root.html_gzip_key,
                root.json_gzip_key,
                index_id,
                root.html_key,
                root.json_key,
            )
            return bool(updated)

        return await self._run(work)

    async def start_search_sync(self) -> "search.PostgresSearchSync":
        sync_id = await self._run(search.start_sync)
        return search.PostgresSearchSync(self._store._run, self._run, sync_id)

    async def search_root_key(self) -> str | None:
        async def work(db: Db, index_id: int) -> str | None:
            key = await db.fetchval(
                "SELECT root_key FROM search_state WHERE index_id = $1", index_id
            )
            return None if key is None else str(key)

        return await self._run(work)

    async def get_search_details(self, keys: Collection[str]) -> dict[str, SearchDetails]:
        wanted = list(keys)

        async def work(db: Db, index_id: int) -> dict[str, SearchDetails]:
            return await search.get_details(db, index_id, wanted)

        return await self._run(work)

    async def put_search_details(self, details: SearchDetails) -> None:
        async def work(db: Db, index_id: int) -> None:
            await search.put_details(db, index_id, details)

        await self._run(work)

    async def match_names(self, key: str, limit: int) -> list[tuple[str, str]]:
        async def work(db: Db, index_id: int) -> list[tuple[str, str]]:
            return await search.match_names(db, index_id, key, limit)

        return await self._run(work)

    async def match_summaries(self, words: Sequence[str], limit: int) -> list[tuple[str, str]]:
        if not words:
            return []

        async def work(db: Db, index_id: int) -> list[tuple[str, str]]:
            return await search.match_summaries(db, index_id, words, limit)

        return await self._run(work)

    async def add_downloads(self, counts: Mapping[str, int]) -> None:
        keys, numbers = list(counts), list(counts.values())

        async def work(db: Db, index_id: int) -> None:
            await db.execute(
                "INSERT INTO search_downloads (index_id, key, count)"
                " SELECT $1, key, count FROM unnest($2::text[], $3::bigint[]) AS v(key, count)"
                " ON CONFLICT (index_id, key)"
                " DO UPDATE SET count = search_downloads.count + excluded.count",
                index_id,
                keys,
                numbers,
            )

        await self._run(work)

    async def get_downloads(self, keys: Collection[str]) -> dict[str, int]:
        wanted = list(keys)

        async def work(db: Db, index_id: int) -> dict[str, int]:
            rows = await db.fetch(
                "SELECT key, count FROM search_downloads"
                " WHERE index_id = $1 AND key = ANY($2::text[])",
                index_id,
                wanted,
            )
            return {row[0]: int(row[1]) for row in rows}

        return await self._run(work)

    async def search_counts(self) -> tuple[int, int]:
        async def work(db: Db, index_id: int) -> tuple[int, int]:
            row = await db.fetchrow(
                "SELECT (SELECT count(*) FROM search_names WHERE index_id = $1),"
                " (SELECT count(*) FROM search_details WHERE index_id = $1)",
                index_id,
            )
            assert row is not None
            return int(row[0]), int(row[1])

        return await self._run(work)

    async def put_core_metadata(self, project: str, filename: str, sha256: str) -> None:
        async def work(db: Db, index_id: int) -> None:
            await db.execute(
                "INSERT INTO core_metadata VALUES ($1, $2, $3, $4)"
                " ON CONFLICT (index_id, project, filename) DO UPDATE SET sha256 = excluded.sha256",
                index_id,
                project,
                filename,
                sha256,
            )

        await self._run(work)

    async def core_metadata_of(self, project: str) -> dict[str, str]:
        async def work(db: Db, index_id: int) -> dict[str, str]:
            rows = await db.fetch(
                "SELECT filename, sha256 FROM core_metadata WHERE index_id = $1 AND project = $2",
                index_id,
                project,
            )
            return {row[0]: row[1] for row in rows}

        return await self._run(work)


async def _index_id(db: Db, name: str) -> int:
    """The number of the index `name`, given it on first use (by whichever replica asks
    first: the insert waits for another's, then the select sees it)."""
    await db.execute("INSERT INTO indexes (name) VALUES ($1) ON CONFLICT (name) DO NOTHING", name)
    index_id = await db.fetchval("SELECT id FROM indexes WHERE name = $1", name)
    return int(index_id)


async def _migrate(db: Db) -> None:
    """Apply the migrations this database lacks, in one transaction that holds the lock:
    another replica starting meanwhile waits, then finds the schema current."""
    async with db.transaction():
        await db.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await db.execute(SCHEMA_TABLE)
        version = await db.fetchval("SELECT version FROM bodega_schema")
        if version is None:
            await db.execute("INSERT INTO bodega_schema VALUES (0)")
            version = 0
        if version > len(MIGRATIONS):
            raise StorageError(
                f"the metadata database has schema version {version}, newer than this"
                f" bodega's {len(MIGRATIONS)}: upgrade bodega (or point it at another database)"
            )
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            await db.execute(script)
            await db.execute("UPDATE bodega_schema SET version = $1", number)
