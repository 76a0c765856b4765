"""Project search: every name upstream lists, plus the summary and latest version of each
project bodega has seen a page or core metadata for.

The names come from the root list, synced into the metadata store by a background task: the
JSON rendering is scanned a batch at a time and staged in the store, which merges it in
chunks, so no request ever waits for 800k names, other store work interleaves and memory
stays at one batch. The task's first pass waits `first_refresh_delay` (a setting), so a
new bodega's start-up and its first clients never compete with it, unless a search asks
first: then the sync starts at once, and search answers from the projects bodega already
knows meanwhile. Pages and core metadata are noted by a second background task fed through
a bounded queue: a request only enqueues, and the task waits for the server to be quiet
(proxy/activity.py) before each note, so an installer's burst does not share the CPU with
it. So are downloads, counted for ranking. The sync
runs as the SEARCH_SYNC duty, the root list's refresh for it as ROOT_REFRESH
(proxy/coordination.py): in a cluster, on one replica only.
"""

import asyncio
import contextlib
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from bodega.core.model import ProjectPage
from bodega.core.parsing import JSON_V1
from bodega.core.releases import latest_version, releases_of
from bodega.core.root_list import Entry, ProjectListScanner, project_list_scanner
from bodega.core.search import (
    MAX_METADATA_BYTES,
    CoreMetadata,
    Criterion,
    Match,
    Query,
    Tier,
    best_matches,
    combine,
    is_newer,
    name_key,
    name_tier,
    read_core_metadata,
    summary_words,
)
from bodega.errors import BodegaError
from bodega.proxy.activity import LONGEST_WAIT, ClientActivity
from bodega.proxy.coordination import ROOT_REFRESH, SEARCH_SYNC, Duties, LocalDuties
from bodega.proxy.files import Download
from bodega.proxy.root import RootList, batches
from bodega.storage.blobs import BlobStore
from bodega.storage.metadata import (
    RootListStore,
    SearchDetails,
    SearchIndex,
    SearchSync,
    StoredRoot,
)


class SearchRecords(SearchIndex, RootListStore, Protocol):
    """What search reads and writes: its own index, and the root list it syncs from."""


log = logging.getLogger(__name__)

SYNC_CHUNK = 1_000  # names per bulk transaction, so a page write waits little behind one
FILL_TOP_RESULTS = 10  # of each search's results, those looked up when they lack details
CANDIDATES = 500  # matches per criterion before ranking; bounds the work of one search
_QUEUE_SIZE = 1024
# Of the JSON rendering per thread hop: ~10k names, whose staged pairs are a few MiB.
_SCAN_BYTES = 256 * 1024
_SEEN_METADATA = 10_000  # metadata blobs already read, so repeated hits cost nothing

Job = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Hit:
    key: str  # PEP 503 normalized
    name: str
    summary: str
    version: str | None


@dataclass(frozen=True, slots=True)
class SearchStatus:
    names: int
    projects_with_details: int
    root_key: str | None
    is_syncing: bool
    is_loading: bool  # the full list of names is not searchable yet, but will be


class ProjectSearch:
    def __init__(
        self,
        store: SearchRecords,
        blobs: BlobStore,
        root: RootList,
        *,
        refresh_interval: float,
        first_refresh_delay: float,
        clock: Callable[[], float] = time.time,
        duties: Duties | None = None,
        activity: ClientActivity | None = None,
    ) -> None:
        self._store = store
        self._blobs = blobs
        self._root = root
        self._interval = refresh_interval
        self._first_refresh_delay = first_refresh_delay
        self._clock = clock
        self._duties = duties or LocalDuties()
        self._sync_lock = asyncio.Lock()  # one sync of the index's names at a time
        self._activity = activity if activity is not None else ClientActivity()
        # (when queued, the note): each waits for quiet, at most LONGEST_WAIT from then.
        self._jobs: asyncio.Queue[tuple[float, Job]] = asyncio.Queue(_QUEUE_SIZE)
        self._seen_metadata: OrderedDict[str, None] = OrderedDict()
        self._tasks: list[asyncio.Task[None]] = []
        self._fill_details: Callable[[Sequence[str]], None] = lambda keys: None
        self._downloads: Counter[str] = Counter()
        self._is_flush_queued = False
        self._sync_now = asyncio.Event()  # set: the first pass waits no longer
        self._checked_first_sync = False
        self.is_syncing = False

    def start(self, fill_details: Callable[[Sequence[str]], None] | None = None) -> None:
        """Start the background tasks; `fill_details` is given the top results that lack a
        version or summary, to look them up behind the answer."""
        self._fill_details = fill_details or (lambda keys: None)
        self._tasks = [
            asyncio.create_task(self._work(), name="search-notes"),
            asyncio.create_task(self._keep_names_fresh(), name="search-names"),
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def search(self, query: Query) -> list[Hit]:
        await self._sync_if_never_synced()
        per_criterion = [
            best_matches(await self._matches(criterion)) for criterion in query.criteria
        ]
        keys = {key for matches in per_criterion for key in matches}
        downloads = await self._store.get_downloads(keys)
        ranked = combine(per_criterion, match_all=query.match_all, downloads=downloads)
        details = await self._store.get_search_details([m.key for m in ranked])
        hits = []
        for match in ranked:
            known = details.get(match.key)
            if known is None:
                hits.append(Hit(match.key, match.name, "", None))
            else:
                hits.append(Hit(match.key, match.name, known.summary, known.version))
        top = hits[:FILL_TOP_RESULTS]
        self._fill_details([h.key for h in top if not h.summary or h.version is None])
        return hits

    async def _matches(self, criterion: Criterion) -> list[Match]:
        if criterion.field == "name":
            key = name_key(criterion.term)
            if key is None:
                return []
            found = await self._store.match_names(key, CANDIDATES)
            return [
                Match(k, name, tier) for k, name in found if (tier := name_tier(key, k)) is not None
            ]
        found = await self._store.match_summaries(summary_words(criterion.term), CANDIDATES)
        return [Match(k, name, Tier.SUMMARY) for k, name in found]

    async def _sync_if_never_synced(self) -> None:
        """The first search of a bodega whose names were never synced starts the sync now,
        instead of after `first_refresh_delay` (issue 16): meanwhile it answers from the
        projects bodega already knows."""
        if self._sync_now.is_set() or self._checked_first_sync:
            return
        self._checked_first_sync = True
        if await self._store.search_root_key() is None:
            self._sync_now.set()

    async def status(self) -> SearchStatus:
        names, details = await self._store.search_counts()
        root_key = await self._store.search_root_key()
        will_sync = self._interval > 0 and not self._root.is_offline
        is_loading = self.is_syncing or (root_key is None and will_sync)
        return SearchStatus(names, details, root_key, self.is_syncing, is_loading)

    def saw_page(self, page: ProjectPage) -> None:
        """A project page came from upstream: note its latest version."""
        self._enqueue(lambda: self._note_page(page))

    def saw_download(self, project: str) -> None:
        """A client was sent one of the project's files: a download to count for ranking.
        Counts gather in memory and reach the store one write per batch."""
        self._downloads[project] += 1
        if not self._is_flush_queued:
            self._is_flush_queued = self._enqueue(self._flush_downloads)

    async def _flush_downloads(self) -> None:
        counts, self._downloads = self._downloads, Counter()
        self._is_flush_queued = False
        await self._store.add_downloads(counts)

    def saw_metadata(self, project: str, key: str, download: Download | None) -> None:
        """A client asked for a file's core metadata (PEP 658): note its summary and version."""
        if key in self._seen_metadata:
            self._seen_metadata.move_to_end(key)
            return
        # Seen from now on, not from when the note is done: a burst of installs asks for the
        # same metadata again while the first note still waits in the queue.
        self._seen_metadata[key] = None
        while len(self._seen_metadata) > _SEEN_METADATA:
            self._seen_metadata.popitem(last=False)
        if not self._enqueue(lambda: self._note_metadata(project, key, download)):
            self._seen_metadata.pop(key, None)

    async def sync_names(self) -> None:
        """One pass: refresh the root list when it is older than the interval, then sync the
        names if it changed since the last sync."""
        stored = await self._store.get_root()
        is_due = stored is None or self._clock() - stored.fetched_at >= self._interval
        if self._interval > 0 and not self._root.is_offline and is_due:

            async def refresh() -> None:
                nonlocal stored
                stored, _ = await self._root.get(revalidate=True)

            try:
                await self._duties.run(ROOT_REFRESH, refresh)
            except BodegaError as error:
                log.warning("search: the root list could not be refreshed: %s", error)
        async with self._sync_lock:
            if stored is not None and stored.json_key != await self._store.search_root_key():
                self.is_syncing = True
                try:
                    await self._sync(stored)
                finally:
                    self.is_syncing = False

    async def _sync(self, root: StoredRoot) -> None:
        started = time.monotonic()
        sync = await self._store.start_search_sync()
        try:
            count = await self._stage(sync, root)
            after = await sync.merge(None, SYNC_CHUNK)
            while after is not None:
                after = await sync.merge(after, SYNC_CHUNK)
        except BaseException:
            await sync.abort()
            raise
        await sync.finish(root.json_key)
        log.info("search: %d names synced in %.1f s", count, time.monotonic() - started)

    async def _stage(self, sync: SearchSync, root: StoredRoot) -> int:
        """Stage the names of the root list's JSON rendering; how many there were."""
        scanner = project_list_scanner(JSON_V1)
        count = 0
        async with contextlib.aclosing(
            batches(self._blobs.read(root.json_key), _SCAN_BYTES)
        ) as batched:
            async for batch in batched:
                entries = await asyncio.to_thread(_scan, scanner, batch)
                await sync.stage(entries)
                count += len(entries)
        await sync.stage(await asyncio.to_thread(scanner.close))
        return count

    async def _keep_names_fresh(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._sync_now.wait(), self._first_refresh_delay)
        self._sync_now.set()
        while True:
            try:
                await self._duties.run(SEARCH_SYNC, self.sync_names)
            except BodegaError as error:
                log.warning("search: syncing names failed: %s", error)
            except Exception:
                # Whatever one pass hit, the next interval tries again: only cancellation
                # ends this task (a constraint error once ended search's freshness for good).
                log.exception("search: syncing names failed unexpectedly")
            if self._interval <= 0:
                return
            await asyncio.sleep(self._interval)

    def _enqueue(self, job: Job) -> bool:
        try:
            self._jobs.put_nowait((self._activity.now(), job))
        except asyncio.QueueFull:
            log.debug("search: queue full, a note is dropped")  # the next fetch notes it again
            return False
        return True

    async def _work(self) -> None:
        while True:
            queued_at, job = await self._jobs.get()
            await self._activity.until_quiet(queued_at + LONGEST_WAIT)
            try:
                await job()
            except BodegaError as error:
                log.warning("search: %s", error)
            except Exception:
                # A note is a nicety: whatever one hit, the worker goes on with the next
                # (only cancellation ends it), or search would stop learning for good.
                log.exception("search: noting a page or core metadata failed unexpectedly")

    async def _note_page(self, page: ProjectPage) -> None:
        version = latest_version(await asyncio.to_thread(releases_of, page))
        old = (await self._store.get_search_details([page.name])).get(page.name)
        if old is None:
            await self._store.put_search_details(
                SearchDetails(page.name, page.name, version, "", None)
            )
        elif version != old.version:
            await self._store.put_search_details(_with_version(old, version))

    async def _note_metadata(self, project: str, key: str, download: Download | None) -> None:
        try:
            if download is not None:
                await download.wait_until_done()
            # Just downloaded: the bytes are still in memory, verified and committed, so the
            # burst that asked for them pays no thread hops to read them back from the blob.
            fresh = download.whole() if download is not None and download.is_committed else None
            data = (
                fresh[:MAX_METADATA_BYTES]
                if fresh is not None
                else b"".join([c async for c in self._blobs.read(key, 0, MAX_METADATA_BYTES)])
            )
        except (BodegaError, FileNotFoundError):
            # Not cached, or evicted since it was asked for: the next request notes it.
            self._seen_metadata.pop(key, None)
            return
        metadata = await asyncio.to_thread(read_core_metadata, data)
        old = (await self._store.get_search_details([project])).get(project)
        await self._store.put_search_details(_merged(project, old, metadata))


def _scan(scanner: ProjectListScanner, batch: list[bytes]) -> list[Entry]:
    return [entry for chunk in batch for entry in scanner.feed(chunk)]


def _with_version(old: SearchDetails, version: str | None) -> SearchDetails:
    return SearchDetails(old.key, old.name, version, old.summary, old.summary_version)


def _merged(project: str, old: SearchDetails | None, metadata: CoreMetadata) -> SearchDetails:
    if old is None:
        return SearchDetails(project, project, metadata.version, metadata.summary, metadata.version)
    version = metadata.version if is_newer(metadata.version, old.version) else old.version
    # The summary of the newest release wins; an older release's metadata never overrides it.
    if old.summary_version is None or not is_newer(old.summary_version, metadata.version):
        return SearchDetails(old.key, old.name, version, metadata.summary, metadata.version)
    return _with_version(old, version)
