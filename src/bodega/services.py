"""The composition root: builds every part from Settings. The only module that picks
concrete backends."""

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from bodega.config import Settings
from bodega.errors import ConfigError
from bodega.proxy.catalog import Catalog
from bodega.proxy.core_metadata import CoreMetadataExtractor
from bodega.proxy.crashpoints import CrashPoints
from bodega.proxy.eviction import Eviction
from bodega.proxy.file_digests import FileDigester
from bodega.proxy.files import FileCache
from bodega.proxy.maintenance import CacheMaintenance
from bodega.proxy.pages import ProjectPages
from bodega.proxy.readiness import Readiness
from bodega.proxy.release_metadata import ReleaseMetadata
from bodega.proxy.root import RootList
from bodega.proxy.search import ProjectSearch
from bodega.proxy.search_details import DetailsFiller
from bodega.proxy.telemetry import Telemetry
from bodega.storage.datadir import open_data_dir
from bodega.storage.filesystem import FilesystemBlobStore
from bodega.storage.sqlite import SqliteMetadataStore
from bodega.upstream import UpstreamClient


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    instance_id: str  # marks this process's upstream requests, to detect request loops
    pages: ProjectPages
    root: RootList
    files: FileCache
    telemetry: Telemetry  # what /-/metrics and the web UI's cache page show
    search: ProjectSearch
    catalog: Catalog
    core_metadata: CoreMetadataExtractor
    eviction: Eviction
    readiness: Readiness
    release_metadata: ReleaseMetadata  # the JSON API's view of a release's core metadata
    file_digests: FileDigester  # md5 and blake2b_256 of cached files, for the JSON API


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
    store = await SqliteMetadataStore.open(settings.database_path)
    try:
        blobs = FilesystemBlobStore(settings.blobs_dir, settings.spool_dir)
        yield CacheMaintenance(blobs, store, settings.data_dir / "quarantine")
    finally:
        await store.close()


@asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[Services]:
    async with AsyncExitStack() as stack:
        lock = await asyncio.to_thread(open_data_dir, settings.data_dir, settings.spool_dir)
        stack.push_async_callback(asyncio.to_thread, lock.close)
        instance_id = secrets.token_hex(8)
        store = await SqliteMetadataStore.open(settings.database_path)
        stack.push_async_callback(store.close)
        blobs = FilesystemBlobStore(settings.blobs_dir, settings.spool_dir)
        upstream = await UpstreamClient.open(
            settings.upstream,
            settings.upstream_timeout,
            instance_id,
            download_deadline=settings.download_deadline,
        )
        stack.push_async_callback(upstream.close)
        offline, ttl = settings.offline, settings.index_ttl
        crash = CrashPoints.from_environment(os.environ)  # test-only; disarmed when unset
        telemetry = Telemetry()
        mirror_telemetry = telemetry.index("root/pypi")
        root = RootList(upstream, store, blobs, settings.spool_dir, ttl=ttl, offline=offline)
        stack.push_async_callback(root.close)
        search = ProjectSearch(
            store,
            blobs,
            root,
            refresh_interval=settings.search_refresh,
            offline=offline,
            first_refresh_delay=settings.search_first_refresh,
        )
        files = FileCache(
            blobs,
            store,
            upstream,
            settings.spool_dir,
            offline=offline,
            telemetry=mirror_telemetry,
            crash=crash,
        )
        stack.push_async_callback(files.close)
        core_metadata = CoreMetadataExtractor(upstream, blobs, store, files, offline=offline)
        stack.push_async_callback(core_metadata.close)
        pages = ProjectPages(
            upstream,
            store,
            ttl=ttl,
            offline=offline,
            telemetry=mirror_telemetry,
            revalidate_after=settings.revalidate_after,
            on_page=search.saw_page,
            core_metadata=core_metadata,
            crash=crash,
        )
        stack.push_async_callback(pages.close)
        details = DetailsFiller(pages, files, search)
        search.start(details.fill)
        stack.push_async_callback(search.close)
        stack.push_async_callback(details.close)
        eviction = Eviction(blobs, store, files, telemetry, max_bytes=settings.max_cache_size)
        await eviction.start()
        stack.push_async_callback(eviction.close)
        readiness = Readiness(store, upstream, settings.spool_dir, offline=offline)
        file_digests = FileDigester(store, files)
        stack.push_async_callback(file_digests.close)
        catalog = Catalog(
            pages,
            store,
            blobs,
            search,
            telemetry,
            data_dir=settings.data_dir,
            upstream=settings.upstream,
            offline=offline,
        )
        yield Services(
            settings,
            instance_id,
            pages,
            root,
            files,
            telemetry,
            search,
            catalog,
            core_metadata,
            eviction,
            readiness,
            ReleaseMetadata(files, core_metadata),
            file_digests,
        )
