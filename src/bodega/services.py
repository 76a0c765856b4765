"""The composition root: builds every part from Settings. The only module that picks
concrete backends."""

import asyncio
import functools
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

from bodega.config import Settings
from bodega.core.indexes import MirrorIndex, VirtualIndex, mirror_names
from bodega.errors import ConfigError
from bodega.proxy.catalog import Catalog
from bodega.proxy.coordination import Duties, LocalBlobLeases, LocalDuties
from bodega.proxy.core_metadata import CoreMetadataExtractor
from bodega.proxy.crashpoints import CrashPoints
from bodega.proxy.eviction import Eviction
from bodega.proxy.file_digests import FileDigester
from bodega.proxy.file_requests import FileRequests, Presign
from bodega.proxy.files import FileCache
from bodega.proxy.indexes import Indexes, Mirror
from bodega.proxy.maintenance import CacheMaintenance
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
from bodega.storage.datadir import open_data_dir
from bodega.storage.filesystem import FilesystemBlobStore
from bodega.storage.sqlite import SqliteMetadataStore
from bodega.upstream import Upstream
from bodega.upstream.http import HttpUpstream
from bodega.upstream.offline import OfflineUpstream

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


async def initialize(settings: Settings) -> None:
    """Create and check the data dir and the database, as the first start would."""
    lock = await asyncio.to_thread(open_data_dir, settings.data_dir, settings.spool_dir)
    try:
        store = await SqliteMetadataStore.open(settings.database_path)
        await store.close()
    finally:
        await asyncio.to_thread(lock.close)


@asynccontextmanager
async def open_maintenance(settings: Settings) -> AsyncIterator[CacheMaintenance]:
    """The cache's stores for the `bodega cache` commands, without the serving lock: they
    work beside a running server (SQLite WAL; busy_timeout waits out its writes)."""
    if not settings.database_path.is_file():
        raise ConfigError(f"no bodega cache in {settings.data_dir}")
    database = await SqliteMetadataStore.open(settings.database_path)
    try:
        async with _open_blobs(settings) as blobs:
            indexes = {spec.name: database.index(spec.name) for spec in settings.indexes}
            yield CacheMaintenance(blobs, indexes, settings.data_dir / "quarantine")
    finally:
        await database.close()


@asynccontextmanager
async def _open_blobs(settings: Settings) -> AsyncIterator[BlobStore]:
    """The blob store --blob-store names: the data dir's (file://) or an object store's."""
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
        copies = FilesystemBlobStore(settings.data_dir / "blob-copies", settings.spool_dir)
        yield await ReadThroughBlobStore.open(remote, copies, settings.local_cache_size)


def _presign(settings: Settings, blobs: BlobStore) -> Presign | None:
    """With --redirect-files, how a hit becomes a URL of the object store's."""
    if not settings.redirect_files or not isinstance(blobs, RemoteBlobs):
        return None
    store = blobs

    async def presign(key: str) -> str:
        return await store.presigned_url(key, REDIRECT_SECONDS)

    return presign


@asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[Services]:
    async with AsyncExitStack() as stack:
        lock = await asyncio.to_thread(open_data_dir, settings.data_dir, settings.spool_dir)
        stack.push_async_callback(asyncio.to_thread, lock.close)
        instance_id = secrets.token_hex(8)
        database = await SqliteMetadataStore.open(settings.database_path)
        stack.push_async_callback(database.close)
        # The shared concerns (blob records, file digests) through the first mirror's view.
        store = database.index(_first_mirror(settings))
        telemetry = Telemetry()
        policies = await _open_policies(settings, database, telemetry, stack)
        shared = _Shared(
            settings,
            instance_id,
            database,
            await stack.enter_async_context(_open_blobs(settings)),
            CrashPoints.from_environment(os.environ),  # test-only; disarmed when unset
            telemetry,
            policies,
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
        )
        stack.push_async_callback(files.close)
        mirrors: dict[str, Mirror] = {}
        for spec in specs:
            upstream = upstreams[spec.name]
            mirrors[spec.name] = await _open_mirror(spec, upstream, files, shared, stack)
        unions: dict[str, RootList] = {}
        for virtual in settings.indexes:
            if isinstance(virtual, VirtualIndex):
                unions[virtual.name] = _open_union_root(virtual, mirrors, shared, stack)
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
            settings.indexes, mirrors, unions, settings.default_index, policies=policies
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
        )


AUDIT_FILE = "policy-audit.jsonl"


async def _open_policies(
    settings: Settings, database: SqliteMetadataStore, telemetry: Telemetry, stack: AsyncExitStack
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
    if not settings.database_path.is_file():
        raise ConfigError(f"no bodega cache in {settings.data_dir}")
    async with AsyncExitStack() as stack:
        database = await SqliteMetadataStore.open(settings.database_path)
        stack.push_async_callback(database.close)
        yield await _open_policies(settings, database, Telemetry(), stack)


@dataclass(frozen=True, slots=True)
class _Shared:
    """What every index's parts share."""

    settings: Settings
    instance_id: str
    store: SqliteMetadataStore
    blobs: BlobStore
    crash: CrashPoints
    telemetry: Telemetry
    policies: Policies
    # One process is the whole cache: it holds every background duty (issue 14: shared).
    duties: Duties = field(default_factory=LocalDuties)


def _first_mirror(settings: Settings) -> str:
    """The mirror that readiness probes and the file cache falls back on: the default
    index's first."""
    return _mirror_names(settings, settings.default_index)[0]


def _mirror_names(settings: Settings, name: str) -> tuple[str, ...]:
    return mirror_names({spec.name: spec for spec in settings.indexes}, name)


def _open_union_root(
    spec: VirtualIndex, mirrors: dict[str, Mirror], shared: _Shared, stack: AsyncExitStack
) -> RootList:
    """A virtual index's root list: its mirrors' lists as one, kept in its own rows."""
    bases = [mirrors[name] for name in _mirror_names(shared.settings, spec.name)]
    root = RootList(
        UnionRootSource([mirror.root for mirror in bases], shared.blobs),
        shared.store.index(spec.name),
        shared.blobs,
        shared.settings.spool_dir,
        ttl=min(mirror.spec.index_ttl for mirror in bases),
    )
    stack.push_async_callback(root.close)
    return root


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
    )
    core_metadata = CoreMetadataExtractor(upstream, shared.blobs, store, files)
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
