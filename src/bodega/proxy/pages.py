"""Project pages: served fresh from memory or the store, revalidated upstream when stale,
served stale when upstream fails (stale-if-error)."""

import asyncio
import contextlib
import dataclasses
import enum
import gzip
import hashlib
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from packaging.utils import NormalizedName

from bodega.core.model import DistributionFile, ProjectPage
from bodega.core.parsing import JSON_V1, parse_project_page
from bodega.core.rendering import render_project_html, render_project_json
from bodega.errors import NotFound, StorageError, UpstreamError
from bodega.proxy.coordination import Flights
from bodega.proxy.core_metadata import CoreMetadataExtractor
from bodega.proxy.crashpoints import CrashPoints
from bodega.proxy.singleflight import SingleFlight
from bodega.proxy.telemetry import CacheOutcome, IndexTelemetry
from bodega.storage.metadata import CoreMetadataRecords, PageStore, StoredPage
from bodega.upstream import Upstream


class PageRecords(PageStore, CoreMetadataRecords, Protocol):
    """What project pages keep: the pages, and the METADATA extracted for their files."""


log = logging.getLogger(__name__)

# Rendering and compressing a large page (thousands of files) takes milliseconds: off the loop.
_IN_THREAD_FILES = 200
_MIN_GZIP_BYTES = 1024


class ClientRefresh(enum.Enum):
    """What a client's request headers ask of a page bodega holds (RFC 9111 5.2.1)."""

    NONE = "none"  # a page within the TTL will do
    MAX_AGE_0 = "max-age=0"  # pip < 26.2 sends it on every request; pip --refresh-package
    NO_CACHE = "no-cache"  # an explicit refresh: uv --refresh, Pragma: no-cache


@dataclass(frozen=True, slots=True)
class RenderedPage:
    body: bytes
    etag: str  # strong, per variant (PEP 691: HTML and JSON share a URL)
    gzipped: bytes | None  # None: not worth compressing


@dataclass(slots=True)
class CachedPage:
    """A project page as bodega holds it, with its renderings kept per media type."""

    page: ProjectPage
    etag: str | None
    last_modified: str | None
    fetched_at: float
    is_stale: bool = False  # served although upstream could not confirm it
    origin: CacheOutcome = CacheOutcome.MISS  # how this copy came to be: MISS, REVALIDATED, STALE
    renderings: dict[str, RenderedPage] = field(default_factory=dict)

    def age(self, now: float) -> float:
        # A clock that stepped back (NTP, a restored VM) would make the page look younger
        # than it is, fresh for as long as the step: count it as expired instead (threat 36).
        return now - self.fetched_at if now >= self.fetched_at else math.inf


class ProjectPages:
    """Project pages from memory, the metadata store or upstream, in that order."""

    def __init__(
        self,
        upstream: Upstream,
        store: PageRecords,
        *,
        ttl: float,
        telemetry: IndexTelemetry,
        revalidate_after: float = 0.0,
        clock: Callable[[], float] = time.time,
        memory_entries: int = 1024,
        on_page: Callable[[ProjectPage], None] | None = None,
        core_metadata: CoreMetadataExtractor | None = None,
        crash: CrashPoints = CrashPoints.DISARMED,
        flights: Flights[CachedPage] | None = None,
        on_upstream_change: Callable[[ProjectPage, ProjectPage], None] | None = None,
    ) -> None:
        self.telemetry = telemetry  # the web edge counts each request's outcome here
        self._on_page = on_page  # told of every page fetched from upstream (search listens)
        self._core_metadata = core_metadata
        if core_metadata is not None:
            core_metadata.on_found = self._add_core_metadata
        self._upstream = upstream
        self._store = store
        self.ttl = ttl
        self._revalidate_after = revalidate_after
        self._clock = clock
        self._memory: OrderedDict[str, CachedPage] = OrderedDict()
        self._memory_entries = memory_entries
        self._refreshes: Flights[CachedPage] = (
            flights if flights is not None else SingleFlight[CachedPage]()
        )
        # Stores not yet done (write-behind), and the project each is for.
        self._writes: dict[asyncio.Task[None], str] = {}
        # METADATA extracted while its page was being refreshed, after the refresh read
        # the store: laid over the refreshed page too, or it would show only after the next.
        self._landed: dict[str, dict[str, str]] = {}
        self._crash = crash
        # Told of each page upstream replaced (old, new): yanks and removals propagate.
        self._on_upstream_change = on_upstream_change

    async def get(self, project: str) -> CachedPage:
        """The page of a validated, normalized project name; NotFound when there is none."""
        return (await self.lookup(project))[0]

    async def lookup(
        self, project: str, refresh: ClientRefresh = ClientRefresh.NONE
    ) -> tuple[CachedPage, CacheOutcome]:
        """Like get(), and how this request was answered. A client's refresh asks upstream
        even within the TTL, so a release published a minute ago shows up."""
        cached = await self._cached(project)
        if self._upstream.is_offline:
            if cached is None:
                raise NotFound(f"{project} is not cached and bodega is offline")
            outcome = CacheOutcome.HIT
        elif cached is not None and cached.age(self._clock()) < self._fresh_for(refresh):
            outcome = CacheOutcome.HIT
        else:
            # Every caller that joined this refresh was answered the way the refresh went.
            cached = await self._refreshes.call(project, lambda: self._refresh(project, cached))
            outcome = cached.origin
        return cached, outcome

    async def held(self, project: str) -> CachedPage | None:
        """The page as bodega holds it (memory, else the store), upstream not asked."""
        return await self._cached(project)

    async def find_file(self, project: str, filename: str) -> DistributionFile:
        """A file listed on the project's page, as cached; asks upstream only for an unknown page
        or a file the cached page does not list yet."""
        cached = await self._cached(project)
        if cached is None or (file := cached.page.file_named(filename)) is None:
            if self._upstream.is_offline:
                raise NotFound(f"{project}/{filename} is not cached and bodega is offline")
            cached = await self._refreshes.call(project, lambda: self._refresh(project, cached))
            file = cached.page.file_named(filename)
        if cached.page.status is not None and cached.page.status.status == "quarantined":
            # PEP 792: nothing of a quarantined project is offered, cached or not.
            raise NotFound(f"{project} is quarantined")
        if file is None:
            raise NotFound(f"{project} has no file {filename}")
        return file

    def _fresh_for(self, refresh: ClientRefresh) -> float:
        """How old a held page may be and still answer this request. `max-age=0` is what
        pip before 26.2 sends on every request, not only on a refresh: taken at its word it
        made every warm install revalidate every page, so it revalidates at most once per
        --revalidate-after seconds (0: every time)."""
        if refresh is ClientRefresh.NO_CACHE:
            return 0.0
        if refresh is ClientRefresh.MAX_AGE_0:
            return min(self.ttl, self._revalidate_after)
        return self.ttl

    def max_age(self, cached: CachedPage) -> int:
        """What a client may cache the page for: never more than is left of the TTL, since a
        client's cache adds to bodega's."""
        left = self.ttl - cached.age(self._clock())
        return int(left) if left > 0 else 0

    async def render(self, cached: CachedPage, media_type: str) -> RenderedPage:
        rendered = cached.renderings.get(media_type)
        if rendered is None:
            page = cached.page
            if len(page.files) > _IN_THREAD_FILES:
                rendered = await asyncio.to_thread(_render, page, media_type)
            else:
                rendered = _render(page, media_type)
            if cached.page is page:  # else metadata landed meanwhile: this one is outdated
                cached.renderings[media_type] = rendered
        return rendered

    async def close(self) -> None:
        await self._refreshes.close()
        await asyncio.gather(*self._writes)  # each catches its own storage errors

    async def _cached(self, project: str) -> CachedPage | None:
        cached = self._memory.get(project)
        if cached is not None:
            self._memory.move_to_end(project)
            return cached
        try:
            stored = await self._store.get_page(project)
        except StorageError as error:
            # The store is away (a database restarting): upstream can answer meanwhile.
            log.warning("could not read the stored page of %s: %s", project, error)
            stored = None
        # A refresh may have finished while the store was read: its page is the newest (and
        # may not be stored yet: pages are written behind their responses).
        if (cached := self._memory.get(project)) is not None:
            return cached
        if stored is None:
            return None
        extracted = await self._store.core_metadata_of(project)
        # Thousands of files take milliseconds to rebuild: off the loop for large pages.
        if len(stored.record["files"]) > _IN_THREAD_FILES:
            page = await asyncio.to_thread(ProjectPage.from_record, stored.record)
        else:
            page = ProjectPage.from_record(stored.record)
        cached = CachedPage(
            page=page.with_core_metadata(extracted),
            etag=stored.etag,
            last_modified=stored.last_modified,
            fetched_at=stored.fetched_at,
        )
        if (newer := self._memory.get(project)) is not None:
            return newer  # refreshed while this was read: never overwrite it with the store's
        self._remember(project, cached)
        return cached

    async def _refresh(self, project: str, cached: CachedPage | None) -> CachedPage:
        try:
            return await self._ask_upstream(project, cached)
        finally:
            self._landed.pop(project, None)  # in memory already, whichever way it went

    async def _still_stored(self, project: str) -> bool:
        """Whether the store still has the page; a store that cannot tell (away, as a
        database restarting is) keeps it: a forgotten page is rare, an outage is not. A
        page whose write is still in flight is not in the store yet, but is no less kept."""
        if project in self._writes.values():
            return True
        try:
            return await self._store.has_page(project)
        except StorageError as error:
            log.warning("could not check the stored page of %s: %s", project, error)
            return True

    async def _ask_upstream(self, project: str, cached: CachedPage | None) -> CachedPage:
        if cached is not None and not await self._still_stored(project):
            cached = None  # `bodega cache forget` dropped it: fetch in full, without validators
        # What bodega extracted itself is read while upstream answers, not after.
        extracted = asyncio.ensure_future(self._store.core_metadata_of(project))
        extracted.add_done_callback(_observe)  # a refresh cancelled meanwhile leaves it behind
        try:
            with self.telemetry.upstream_call("page"):
                response = await self._upstream.fetch_project_page(
                    project,
                    etag=cached.etag if cached else None,
                    last_modified=cached.last_modified if cached else None,
                )
        except UpstreamError as error:
            await _settle(extracted)
            return self._stale_or_raise(project, cached, error)
        except NotFound:
            await _settle(extracted)
            if cached is not None:
                self._gone(project, cached)
            raise
        now = self._clock()
        if response.status == 304 and cached is not None:
            await _settle(extracted)
            self._store_behind(project, self._store.mark_page_fresh(project, now))
            fresh = CachedPage(
                cached.page,
                cached.etag,
                cached.last_modified,
                now,
                origin=CacheOutcome.REVALIDATED,
                renderings=cached.renderings,
            )
            self._remember(project, fresh)
            self._extract_core_metadata(project, fresh)
            return fresh
        self.telemetry.received("page", len(response.body))
        try:
            page = await _parse_off_loop(response.body, response.media_type, response.url, project)
        except UpstreamError as error:
            # A page bodega cannot read (a captive portal, a page over the link cap) is an
            # upstream failure like any other: stale-if-error applies (threats 17, 20).
            await _settle(extracted)
            return self._stale_or_raise(project, cached, error)
        if cached is not None and _is_rollback(cached.page, page):
            # An upstream mirror behind the one we saw before (devpi#958): keep what we have.
            await _settle(extracted)
            log.warning("upstream page of %s is older than the cached one", project)
            return self._stale(project, cached)
        if cached is not None:
            page = _pin_known_hashes(cached.page, page)
            if self._on_upstream_change is not None:
                self._on_upstream_change(cached.page, page)
        self._crash.reached("page_fetched")
        # The store keeps upstream's word; what bodega extracted itself is laid over it.
        record = StoredPage(project, page.to_record(), response.etag, response.last_modified, now)
        self._store_behind(project, self._store.put_page(record))
        try:
            page = page.with_core_metadata(await extracted)
        except StorageError as error:
            log.warning("could not read extracted metadata of %s: %s", project, error)
        page = page.with_core_metadata(self._landed.pop(project, {}))
        fresh = CachedPage(page, response.etag, response.last_modified, now)
        self._remember(project, fresh)
        if self._on_page is not None:
            self._on_page(page)
        self._extract_core_metadata(project, fresh)
        return fresh

    def _gone(self, project: str, cached: CachedPage) -> None:
        """Upstream answered that it has no such project (an answer, not an outage): the
        held page goes, so its files are no longer found through it, and the listener
        learns that every file of it was removed upstream."""
        self._memory.pop(project, None)
        self._store_behind(project, self._forget(project))
        if self._on_upstream_change is not None:
            empty = dataclasses.replace(cached.page, files=(), versions=(), status=None)
            self._on_upstream_change(cached.page, empty)

    async def _forget(self, project: str) -> None:
        await self._store.forget_page(project)

    def _extract_core_metadata(self, project: str, cached: CachedPage) -> None:
        """Queues extraction of METADATA for wheels upstream offers none for. The page is
        answered without it (no client waits for bodega's own work); what lands changes
        later renderings, and their ETags."""
        if self._core_metadata is not None:
            self._core_metadata.extract_for_page(project, cached.page)

    def _add_core_metadata(self, project: str, filename: str, sha256: str) -> None:
        """Lays newly extracted METADATA over the page in memory (the store has it already)."""
        if self._refreshes.running(project) is not None:
            self._landed.setdefault(project, {})[filename] = sha256
        cached = self._memory.get(project)
        if cached is not None:
            cached.page = cached.page.with_core_metadata({filename: sha256})
            cached.renderings.clear()  # a new rendering, so a new ETag

    def _store_behind(self, project: str, store_operation: Awaitable[None]) -> None:
        """Stores in the background: the page is right and in memory already, so its client
        need not wait for the write; a crash before it lands only means a fetch again.
        Writes run in order (one store connection) and close() waits for them."""

        async def store() -> None:
            await self._try_storing(store_operation, project)
            self._crash.reached("page_stored")

        task = asyncio.ensure_future(store())
        self._writes[task] = project
        task.add_done_callback(self._writes.pop)

    async def _try_storing(self, store_operation: Awaitable[None], project: str) -> None:
        """Storing a page that upstream just confirmed may fail (disk full, the database
        locked past busy_timeout: threats 32, 33); the page is still right, so it is served
        from memory and stored on a later refresh."""
        try:
            await store_operation
        except StorageError as error:
            log.warning("could not store the page of %s: %s", project, error)

    def _stale_or_raise(
        self, project: str, cached: CachedPage | None, error: UpstreamError
    ) -> CachedPage:
        if cached is None:
            raise error
        log.warning("serving %s stale: %s", project, error)
        return self._stale(project, cached)

    def _stale(self, project: str, cached: CachedPage) -> CachedPage:
        stale = CachedPage(
            cached.page,
            cached.etag,
            cached.last_modified,
            cached.fetched_at,
            is_stale=True,
            origin=CacheOutcome.STALE,
            renderings=cached.renderings,
        )
        self._remember(project, stale)
        return stale

    def _remember(self, project: str, cached: CachedPage) -> None:
        self._memory[project] = cached
        self._memory.move_to_end(project)
        while len(self._memory) > self._memory_entries:
            self._memory.popitem(last=False)


def _observe(done: "asyncio.Future[dict[str, str]]") -> None:
    if not done.cancelled():
        done.exception()  # retrieved: no "exception was never retrieved" warning


async def _settle(pending: "asyncio.Future[dict[str, str]]") -> None:
    """Waits out a read whose result is no longer wanted (so it never runs unobserved)."""
    with contextlib.suppress(StorageError):
        await pending


def _pin_known_hashes(cached: ProjectPage, page: ProjectPage) -> ProjectPage:
    """Invariant 3: a filename's sha256, once seen, never changes. The public index never
    reuses a filename, so a different hash for a known one means a tampered or broken
    upstream: keep the entry first seen, and say so loudly."""
    files = []
    for file in page.files:
        known = cached.file_named(file.filename)
        if known is not None and known.sha256 is not None and file.sha256 != known.sha256:
            log.error(
                "upstream changed the sha256 of %s/%s from %s to %s; keeping the first",
                page.name,
                file.filename,
                known.sha256,
                file.sha256,
            )
            files.append(known)
        else:
            files.append(file)
    return dataclasses.replace(page, files=tuple(files))


def _is_rollback(cached: ProjectPage, page: ProjectPage) -> bool:
    if cached.files and not page.files and page.status is None:
        # Every file gone at once: a captive portal's or a proxy's page sent with status
        # 200, or a broken mirror, far more likely than a project emptied (threats 17, 22).
        # A page that says why (PEP 792: quarantined) is taken at its word.
        return True
    if cached.last_serial is None or page.last_serial is None:
        return False
    return page.last_serial < cached.last_serial


async def _parse_off_loop(body: bytes, media_type: str, url: str, project: str) -> ProjectPage:
    name = NormalizedName(project)
    if len(body) < 64 * 1024:
        return parse_project_page(body, media_type, url, name)
    return await asyncio.to_thread(parse_project_page, body, media_type, url, name)


def _render(page: ProjectPage, media_type: str) -> RenderedPage:
    body = render_project_json(page) if media_type == JSON_V1 else render_project_html(page)
    etag = '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'
    gzipped = gzip.compress(body, 6, mtime=0) if len(body) >= _MIN_GZIP_BYTES else None
    return RenderedPage(body, etag, gzipped)


def render_page(page: ProjectPage, media_type: str) -> RenderedPage:
    """A page rendered as a mirror's are, for pages that are not upstream's (hosted)."""
    return _render(page, media_type)
