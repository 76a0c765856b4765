"""The composition root: builds every part from Settings. The only module that picks
concrete backends."""

import asyncio
import functools
import logging
import os
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field, replace

from bodega.config import Settings
from bodega.core.indexes import (
    HostedIndex,
    MirrorIndex,
    VirtualIndex,
    hosted_names,
    listing_filter,
    mirror_names,
)
from bodega.core.urls import shown_url
from bodega.errors import ConfigError, StorageError
from bodega.proxy.access import AccessControl
from bodega.proxy.accounts import Accounts
from bodega.proxy.activity import ClientActivity
from bodega.proxy.catalog import Catalog
from bodega.proxy.coordination import (
    Duties,
    FetchLocks,
    LocalBlobLeases,
    LocalDuties,
    LocalFetchLocks,
)
from bodega.proxy.core_metadata import CoreMetadataExtractor
from bodega.proxy.crashpoints import CrashPoints
from bodega.proxy.eviction import Eviction
from bodega.proxy.file_digests import FileDigester
from bodega.proxy.file_requests import FileRequests, Presign
from bodega.proxy.files import FileCache
from bodega.proxy.hosted import HostedProjects, HostedRootSource
from bodega.proxy.indexes import Indexes, Mirror
from bodega.proxy.maintenance import CacheMaintenance
from bodega.proxy.migration import Migration
from bodega.proxy.page_requests import PageRequests
from bodega.proxy.pages import ProjectPages
from bodega.proxy.policy import Policies
from bodega.proxy.project_json import ProjectJson
from bodega.proxy.readiness import Readiness
from bodega.proxy.release_metadata import ReleaseMetadata
from bodega.proxy.root import RootList
from bodega.proxy.search import ProjectSearch
from bodega.proxy.search_details import DetailsFiller
from bodega.proxy.telemetry import Telemetry
from bodega.proxy.union_root import UnionRootSource
from bodega.storage.audit import JsonLinesAudit
from bodega.storage.blobs import BlobStore, RemoteBlobs
from bodega.storage.datadir import open_data_dir, remove_entries
from bodega.storage.file_coordination import FileDuties, FileFetchLocks
from bodega.storage.filesystem import FilesystemBlobStore
from bodega.storage.metadata import SharedMetadataStore
from bodega.storage.sqlite import SqliteMetadataStore
from bodega.upstream import Upstream
from bodega.upstream.http import HttpUpstream
from bodega.upstream.offline import OfflineUpstream

log = logging.getLogger(__name__)

# How long a --redirect-files URL works: long enough for a client to follow the redirect
# and a slow download to start, short enough that a leaked URL is soon worthless.
REDIRECT_SECONDS = 300


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    instance_id: str  # marks this process's upstream requests, to detect request loops
    indexes: Indexes  # which mirror serves what, per index: pages, search, the root list
    pages: PageRequests  # the use case behind the simple API
    file_requests: FileRequests  # the use case behind every file URL
    project_json: ProjectJson  # the use case behind the JSON API
    files: FileCache  # shared by every index: a blob is stored once
    telemetry: Telemetry  # what /-/metrics and the web UI's cache page show
    eviction: Eviction
    readiness: Readiness
    file_digests: FileDigester  # md5 and blake2b_256 of cached files, for the JSON API
    policies: Policies  # what each index hides, break-glass, the audit trail (issue 15)
    access: AccessControl  # who may read, upload to and manage each index
    # Made at this start, when the server takes uploads and has no account: shown once.
    first_admin_token: str | None = None
    worker: int = 0  # which of --workers this process is (1, 2, ...); 0: the only one
    # The client requests in flight, counted by the web app: background work waits for quiet.
    activity: ClientActivity = field(default_factory=ClientActivity)


async def initialize(settings: Settings) -> None:
    """Create and check the data dir and the database, as the first start would."""
    lock = await asyncio.to_thread(open_data_dir, settings.data_dir, settings.spool_dir)
    try:
        store = await open_metadata(settings)
        await store.close()
    finally:
        await asyncio.to_thread(lock.close)


async def open_metadata(settings: Settings) -> SharedMetadataStore:
    """The metadata store --database names: PostgreSQL, shared by replicas, or by default
    SQLite in the data dir. Either brings its schema up to date as it opens."""
    if settings.database:
        # Imported when asked for: asyncpg adds 20 ms to every start, SQLite's included.
        from bodega.storage.postgres import PostgresMetadataStore

        return await PostgresMetadataStore.open(settings.database)
    return await SqliteMetadataStore.open(settings.database_path)


@asynccontextmanager
async def open_maintenance(settings: Settings) -> AsyncIterator[CacheMaintenance]:
    """The cache's stores for the `bodega cache` commands, without the serving lock: they
    work beside a running server (SQLite WAL; busy_timeout waits out its writes)."""
    if not settings.database and not settings.database_path.is_file():
        raise ConfigError(f"no bodega cache in {settings.data_dir}")
    database = await open_metadata(settings)
    try:
        async with _open_blobs(settings) as blobs:
            indexes = {spec.name: database.index(spec.name) for spec in settings.indexes}
            # Hosted files' blobs are pinned: verified, never adopted into the cache's records.
            hosted = [spec.name for spec in settings.indexes if isinstance(spec, HostedIndex)]
            pinned = database.hosted(hosted[0]).hosted_blob_keys if hosted else None
            quarantine = settings.data_dir / "quarantine"
            yield CacheMaintenance(blobs, indexes, quarantine, pinned=pinned)
    finally:
        await database.close()


_COPIES = "blob-copies"  # --local-cache-size's copies: blobs' layout, or a folder per worker
_WORKER_COPIES = "worker-"


def _worker_copies(worker: int) -> str:
    return f"{_WORKER_COPIES}{worker}"


def clear_unused_copies(settings: Settings, workers: int) -> None:
    """Remove the local copies that a start with `workers` processes will not use: those of
    an earlier start with another --workers, or all of them with the local cache off.

    Left, they would fill the disk outside --local-cache-size, as nothing counts them; they
    are only copies of the object store's blobs, so nothing is lost. Called by the process
    that holds the data dir's lock, before any process serves.
    """
    if settings.blob_store == "file://" or not settings.local_cache_size:
        remove_entries(settings.data_dir / _COPIES, keep=lambda _: False)
    elif workers > 1:
        used = {_worker_copies(n) for n in range(1, workers + 1)}
        remove_entries(settings.data_dir / _COPIES, keep=used.__contains__)
    else:
        remove_entries(
            settings.data_dir / _COPIES, keep=lambda name: not name.startswith(_WORKER_COPIES)
        )


@asynccontextmanager
async def _open_blobs(settings: Settings, worker: int = 0) -> AsyncIterator[BlobStore]:
    """The blob store --blob-store names: the data dir's (file://) or an object store's.
    Each of --workers keeps local copies of its own, in its share of --local-cache-size:
    their bookkeeping is in memory."""
    if settings.blob_store == "file://":
        yield FilesystemBlobStore(settings.blobs_dir, settings.spool_dir)
        return
    # Imported here: botocore takes a good part of a second to load, which a bodega on its
    # data dir never pays (tests/unit/test_startup_imports.py).
    from bodega.storage.readthrough import ReadThroughBlobStore
    from bodega.storage.s3blobs import open_s3_blobs

    async with open_s3_blobs(settings.blob_store) as remote:
        if not settings.local_cache_size:
            yield remote
            return
        copies_dir = settings.data_dir / _COPIES
        size = settings.local_cache_size
        if worker:
            copies_dir, size = copies_dir / _worker_copies(worker), size // settings.workers
        copies = FilesystemBlobStore(copies_dir, settings.spool_dir)
        yield await ReadThroughBlobStore.open(remote, copies, size)


def _presign(settings: Settings, blobs: BlobStore) -> Presign | None:
    """With --redirect-files, how a hit becomes a URL of the object store's."""
    if not settings.redirect_files or not isinstance(blobs, RemoteBlobs):
        return None
    store = blobs

    async def presign(key: str) -> str:
        return await store.presigned_url(key, REDIRECT_SECONDS)

    return presign


@asynccontextmanager
async def open_migration(
    settings: Settings,
    to_database: str,
    to_blob_store: str,
    *,
    say: Callable[[str], None],
    progress_every: int = 1000,
) -> AsyncIterator[Migration]:
    """`bodega migrate`: the embedded cache of the data dir (blobs/ and SQLite) as the
    source, PostgreSQL and an object store as the target. No serving lock: the source is
    only read, so a server may serve it meanwhile (SQLite WAL); what it adds after a run
    is copied by the next one."""
    if not to_database.startswith(("postgresql://", "postgres://")):
        try:
            shown = shown_url(to_database)  # a URL may carry a password: never echoed
        except ValueError:
            shown = "(a value with credentials, not shown)"
        raise ConfigError(f"--to-database: {shown} is not a postgresql:// URL")
    if not to_blob_store.startswith("s3://") or to_blob_store == "s3://":
        raise ConfigError(f"--to-blob-store: {to_blob_store} is not an s3://BUCKET/PREFIX URL")
    if not settings.database_path.is_file():
        raise ConfigError(f"no bodega cache in {settings.data_dir} (nothing to migrate)")
    source_settings = replace(settings, database="", blob_store="file://", local_cache_size=0)
    target_settings = replace(
        settings, database=to_database, blob_store=to_blob_store, local_cache_size=0
    )
    async with AsyncExitStack() as stack:
        source = await SqliteMetadataStore.open(source_settings.database_path)
        stack.push_async_callback(source.close)
        target = await open_metadata(target_settings)
        stack.push_async_callback(target.close)
        source_blobs = await stack.enter_async_context(_open_blobs(source_settings))
        target_blobs = await stack.enter_async_context(_open_blobs(target_settings))
        if isinstance(target_blobs, RemoteBlobs):
            try:  # a wrong bucket or endpoint said now, once, not per blob
                await target_blobs.probe()
            except StorageError as error:
                raise StorageError(f"--to-blob-store {to_blob_store}: {error}") from None
        yield Migration(
            source,
            source_blobs,
            target,
            target_blobs,
            say=say,
            progress_every=progress_every,
            crash=CrashPoints.from_environment(os.environ),  # test-only; disarmed when unset
        )


@asynccontextmanager
async def open_hosted_admin(settings: Settings, name: str) -> AsyncIterator[HostedProjects]:
    """A hosted index's projects for the CLI (yank, delete, status, reserve), beside a
    running server as `bodega cache` works: the server reads hosted pages from the store
    per request, so changes show at once (its root list within a minute)."""
    spec = settings.index(name)
    if not isinstance(spec, HostedIndex):
        raise ConfigError(f"{name} is not a hosted index")
    if not settings.database and not settings.database_path.is_file():
        raise ConfigError(f"no bodega data in {settings.data_dir}")
    database = await open_metadata(settings)
    try:
        async with _open_blobs(settings) as blobs:
            yield HostedProjects(spec, database.hosted(name), blobs, settings.spool_dir)
    finally:
        await database.close()


@asynccontextmanager
async def open_accounts(settings: Settings) -> AsyncIterator[Accounts]:
    """Accounts and tokens for the `bodega user` and `bodega token` commands, beside a
    running server as `bodega cache` is (the data dir is made on first use)."""
    if not settings.database and not settings.database_path.is_file():
        await initialize(settings)
    database = await open_metadata(settings)
    try:
        yield Accounts(database.accounts(), [spec.name for spec in settings.indexes])
    finally:
        await database.close()


def takes_uploads(settings: Settings) -> bool:
    """Whether any index takes uploads: the one test for "this server needs an admin"."""
    return any(rule.upload for rule in settings.access_table) or any(
        isinstance(spec, HostedIndex) for spec in settings.indexes
    )


async def _access_control(settings: Settings, database: SharedMetadataStore) -> AccessControl:
    bases = {
        spec.name: spec.bases if isinstance(spec, VirtualIndex) else () for spec in settings.indexes
    }
    access = AccessControl(database.accounts(), settings.access_table, bases)
    unknown = await access.unknown_accounts()
    if unknown:
        log.warning(
            "the access rules name %s, which no account has (yet): `bodega user add NAME`",
            ", ".join(unknown),
        )
    return access


@dataclass(frozen=True, slots=True)
class DataDirHold:
    """What the supervisor of --workers holds and tells before any worker starts."""

    lock_fd: int  # the data dir's lock: inherited by every worker, so held until all end
    first_admin_token: str | None
    is_open_to_everyone: bool


@asynccontextmanager
async def hold_data_dir(settings: Settings) -> AsyncIterator[DataDirHold]:
    """For --workers: what one process does once for all of them: take the data dir's lock
    and clear its spools (a worker never may: another's downloads are there), bring the
    database's schema up to date, and make the first admin."""
    lock = await asyncio.to_thread(open_data_dir, settings.data_dir, settings.spool_dir)
    try:
        await asyncio.to_thread(clear_unused_copies, settings, settings.workers)
        database = await open_metadata(settings)
        try:
            token = await _first_admin(settings, database)
            access = await _access_control(settings, database)
        finally:
            await database.close()
        yield DataDirHold(lock.fileno(), token, access.is_open_to_everyone)
    finally:
        await asyncio.to_thread(lock.close)


async def _first_admin(settings: Settings, database: SharedMetadataStore) -> str | None:
    if not takes_uploads(settings):
        return None
    names = [spec.name for spec in settings.indexes]
    return await Accounts(database.accounts(), names).create_first_admin()


@asynccontextmanager
async def open_services(settings: Settings, *, worker: int = 0) -> AsyncIterator[Services]:
    """Every part of a serving bodega. `worker` numbers this process among --workers
    (1, 2, ...): hold_data_dir, in the supervisor, has done the once-only work then."""
    async with AsyncExitStack() as stack:
        if not worker:
            lock = await asyncio.to_thread(open_data_dir, settings.data_dir, settings.spool_dir)
            stack.push_async_callback(asyncio.to_thread, lock.close)
            await asyncio.to_thread(clear_unused_copies, settings, 1)
        instance_id = secrets.token_hex(8)
        database = await open_metadata(settings)
        stack.push_async_callback(database.close)
        first_admin_token = await _first_admin(settings, database)
        # The shared concerns (blob records, file digests) through the first mirror's view.
        store = database.index(_first_mirror(settings))
        telemetry = Telemetry()
        policies = await _open_policies(settings, database, telemetry, stack)
        shared = _Shared(
            settings,
            instance_id,
            database,
            await stack.enter_async_context(_open_blobs(settings, worker)),
            CrashPoints.from_environment(os.environ),  # test-only; disarmed when unset
            telemetry,
            policies,
            await _open_duties(settings, stack),
        )
        specs = [spec for spec in settings.indexes if isinstance(spec, MirrorIndex)]
        upstreams = {spec.name: await _open_upstream(spec, instance_id) for spec in specs}
        for upstream in upstreams.values():
            stack.push_async_callback(upstream.close)
        first = upstreams[_first_mirror(settings)]
        files = FileCache(
            shared.blobs,
            store,
            first,
            settings.spool_dir,
            telemetry=shared.telemetry.index(_first_mirror(settings)),
            crash=shared.crash,
            leases=LocalBlobLeases(),  # in process: this file cache is the only reader
            fetch_locks=await _open_fetch_locks(settings, stack),
        )
        stack.push_async_callback(files.close)
        mirrors: dict[str, Mirror] = {}
        for spec in specs:
            upstream = upstreams[spec.name]
            mirrors[spec.name] = await _open_mirror(spec, upstream, files, shared, stack)
        unions: dict[str, RootList] = {}
        hosted: dict[str, HostedProjects] = {}
        for index in settings.indexes:
            if isinstance(index, HostedIndex):
                hosted[index.name], unions[index.name] = _open_hosted(index, shared, stack)
        for virtual in settings.indexes:
            if isinstance(virtual, VirtualIndex):
                unions[virtual.name] = _open_union_root(virtual, mirrors, unions, shared, stack)
        eviction = Eviction(
            shared.blobs,
            store,
            files,
            shared.telemetry,
            max_bytes=settings.max_cache_size,
            duties=shared.duties,
        )
        await eviction.start()
        stack.push_async_callback(eviction.close)
        readiness = Readiness(store, first, settings.spool_dir, blobs=shared.blobs)
        file_digests = FileDigester(store, files)
        stack.push_async_callback(file_digests.close)
        indexes = Indexes(
            settings.indexes,
            mirrors,
            unions,
            settings.default_index,
            policies=policies,
            hosted=hosted,
        )
        yield Services(
            settings,
            instance_id,
            indexes,
            PageRequests(indexes, files, shared.telemetry),
            FileRequests(
                indexes, files, shared.telemetry, presign=_presign(settings, shared.blobs)
            ),
            ProjectJson(indexes, file_digests),
            files,
            shared.telemetry,
            eviction,
            readiness,
            file_digests,
            policies,
            await _access_control(settings, database),
            first_admin_token,
            worker,
            shared.activity,
        )


AUDIT_FILE = "policy-audit.jsonl"


async def _open_duties(settings: Settings, stack: AsyncExitStack) -> Duties:
    """Who runs the background duties: this process alone; or with --database, the one
    replica that holds the lease in the shared database; or the one of --workers that holds
    the data dir's duties lock."""
    if not settings.database and settings.workers > 1:
        file_duties = FileDuties(settings.data_dir)
        stack.push_async_callback(file_duties.close)
        return file_duties
    if not settings.database:
        return LocalDuties()
    from bodega.storage.postgres_duties import PostgresDuties  # as open_metadata's import

    duties = PostgresDuties(settings.database)
    stack.push_async_callback(duties.close)
    return duties


async def _open_fetch_locks(settings: Settings, stack: AsyncExitStack) -> FetchLocks:
    """Who may fetch a blob from upstream: this process's flights alone, or with --database,
    the one replica that holds the blob's lock in the shared database. Pushed before the
    file cache, so its downloads let go before the locks close. --workers on the embedded
    cache share their locks through a file of the data dir."""
    if not settings.database and settings.workers > 1:
        file_locks = FileFetchLocks(settings.data_dir)
        stack.push_async_callback(file_locks.close)
        return file_locks
    if not settings.database:
        return LocalFetchLocks()
    from bodega.storage.postgres_fetches import PostgresFetchLocks  # as open_metadata's import

    locks = PostgresFetchLocks(settings.database)
    stack.push_async_callback(locks.close)
    return locks


async def _open_policies(
    settings: Settings, database: SharedMetadataStore, telemetry: Telemetry, stack: AsyncExitStack
) -> Policies:
    audit = await asyncio.to_thread(JsonLinesAudit, settings.data_dir / AUDIT_FILE)
    stack.push_async_callback(asyncio.to_thread, audit.close)
    names = [spec.name for spec in settings.indexes]
    policies = Policies(
        {name: settings.policy(name) for name in names}, database.policy(), audit, telemetry
    )
    stack.push_async_callback(policies.close)
    return policies


@asynccontextmanager
async def open_policies(settings: Settings) -> AsyncIterator[Policies]:
    """Policy's records and audit trail for `bodega allow`, beside a running server (as
    open_maintenance): an exemption made here shows in the server within a second."""
    if not settings.database and not settings.database_path.is_file():
        raise ConfigError(f"no bodega cache in {settings.data_dir}")
    async with AsyncExitStack() as stack:
        database = await open_metadata(settings)
        stack.push_async_callback(database.close)
        yield await _open_policies(settings, database, Telemetry(), stack)


@dataclass(frozen=True, slots=True)
class _Shared:
    """What every index's parts share."""

    settings: Settings
    instance_id: str
    store: SharedMetadataStore
    blobs: BlobStore
    crash: CrashPoints
    telemetry: Telemetry
    policies: Policies
    # Every background duty here (one process is the whole cache), or where the lease is.
    duties: Duties = field(default_factory=LocalDuties)
    activity: ClientActivity = field(default_factory=ClientActivity)


def _first_mirror(settings: Settings) -> str:
    """The mirror that readiness probes and the file cache falls back on: the default
    index's first."""
    return _mirror_names(settings, settings.default_index)[0]


def _mirror_names(settings: Settings, name: str) -> tuple[str, ...]:
    return mirror_names({spec.name: spec for spec in settings.indexes}, name)


def _open_union_root(
    spec: VirtualIndex,
    mirrors: dict[str, Mirror],
    hosted_roots: dict[str, RootList],
    shared: _Shared,
    stack: AsyncExitStack,
) -> RootList:
    """A virtual index's root list: its hosted indexes' and mirrors' lists as one, kept in
    its own rows."""
    specs = {index.name: index for index in shared.settings.indexes}
    bases = [mirrors[name] for name in _mirror_names(shared.settings, spec.name)]
    roots = [(name, hosted_roots[name]) for name in hosted_names(specs, spec.name)]
    roots += [(mirror.spec.name, mirror.root) for mirror in bases]
    sources = [(root, listing_filter(specs, spec.name, name)) for name, root in roots]
    root = RootList(
        UnionRootSource(sources, shared.blobs),
        shared.store.index(spec.name),
        shared.blobs,
        shared.settings.spool_dir,
        ttl=min((mirror.spec.index_ttl for mirror in bases), default=_HOSTED_ROOT_TTL),
    )
    stack.push_async_callback(root.close)
    return root


# A hosted index's root list is rebuilt after each change; this bounds what a change made
# by another process (the CLI) takes to show.
_HOSTED_ROOT_TTL = 60.0


def _open_hosted(
    spec: HostedIndex, shared: _Shared, stack: AsyncExitStack
) -> tuple[HostedProjects, RootList]:
    """A hosted index's projects and root list, over its own rows of the store."""
    store = shared.store.hosted(spec.name)
    root = RootList(
        HostedRootSource(store),
        shared.store.index(spec.name),
        shared.blobs,
        shared.settings.spool_dir,
        ttl=_HOSTED_ROOT_TTL,
    )
    stack.push_async_callback(root.close)

    async def refresh_root() -> None:
        await root.get(revalidate=True)

    hosted = HostedProjects(
        spec, store, shared.blobs, shared.settings.spool_dir, on_change=refresh_root
    )
    return hosted, root


async def _open_upstream(spec: MirrorIndex, instance_id: str) -> Upstream:
    """The one place that decides whether bodega contacts a mirror's upstream at all."""
    if spec.offline:
        return OfflineUpstream(spec.upstream)
    return await HttpUpstream.open(
        spec.upstream,
        spec.upstream_timeout,
        instance_id,
        download_deadline=spec.download_deadline,
    )


async def _open_mirror(
    spec: MirrorIndex,
    upstream: Upstream,
    files: FileCache,
    shared: _Shared,
    stack: AsyncExitStack,
) -> Mirror:
    """One mirror index's parts, over its own upstream and its own rows of the store."""
    settings = shared.settings
    store = shared.store.index(spec.name)
    ttl = spec.index_ttl
    root = RootList(upstream, store, shared.blobs, settings.spool_dir, ttl=ttl)
    stack.push_async_callback(root.close)
    search = ProjectSearch(
        store,
        shared.blobs,
        root,
        refresh_interval=settings.search_refresh,
        first_refresh_delay=settings.search_first_refresh,
        duties=shared.duties,
        activity=shared.activity,
    )
    core_metadata = CoreMetadataExtractor(
        upstream, shared.blobs, store, files, activity=shared.activity
    )
    stack.push_async_callback(core_metadata.close)
    pages = ProjectPages(
        upstream,
        store,
        ttl=ttl,
        telemetry=shared.telemetry.index(spec.name),
        revalidate_after=spec.revalidate_after,
        on_page=search.saw_page,
        core_metadata=core_metadata,
        crash=shared.crash,
        on_upstream_change=functools.partial(shared.policies.upstream_changed, spec.name),
    )
    stack.push_async_callback(pages.close)
    details = DetailsFiller(pages, files, search)
    search.start(details.fill)
    stack.push_async_callback(search.close)
    stack.push_async_callback(details.close)
    catalog = Catalog(
        pages,
        store,
        shared.blobs,
        search,
        shared.telemetry,
        data_dir=settings.data_dir,
        upstream=upstream,
    )
    release_metadata = ReleaseMetadata(files, core_metadata)
    return Mirror(spec, upstream, pages, root, search, catalog, core_metadata, release_metadata)
