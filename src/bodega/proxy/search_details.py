"""Search results bodega knows only by name get their version and summary filled in behind
the answer (issue 16): the project page (cached, or fetched once), then the core metadata of
its latest release (PEP 658, cached and verified like any file). The next search shows them.

Bounded three ways: only the top results of a search (proxy/search.py), a few at a time,
and a project tried once an hour at most, so a search for "a" cannot turn into a crawl of
the index.
"""

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from bodega.core.releases import file_with_metadata
from bodega.errors import BodegaError
from bodega.proxy.files import FileCache
from bodega.proxy.pages import ProjectPages
from bodega.proxy.search import ProjectSearch

log = logging.getLogger(__name__)

_CONCURRENCY = 4
_MAX_PENDING = 40  # fills waiting for a slot; more are dropped (a later search asks again)
_RETRY_AFTER = 3600.0  # seconds before a project is tried again
_REMEMBERED = 10_000


class DetailsFiller:
    def __init__(
        self,
        pages: ProjectPages,
        files: FileCache,
        search: ProjectSearch,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pages = pages
        self._files = files
        self._search = search
        self._clock = clock
        self._slots = asyncio.Semaphore(_CONCURRENCY)
        self._tried: OrderedDict[str, float] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    def fill(self, keys: Sequence[str]) -> None:
        """Fill in these projects' details in the background (unless tried lately)."""
        now = self._clock()
        for key in keys:
            tried_at = self._tried.get(key)
            if tried_at is not None and now - tried_at < _RETRY_AFTER:
                continue
            if len(self._tasks) >= _MAX_PENDING:
                return
            self._tried[key] = now
            self._tried.move_to_end(key)
            while len(self._tried) > _REMEMBERED:
                self._tried.popitem(last=False)
            task = asyncio.create_task(self._fill(key), name=f"search-fill-{key}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _fill(self, key: str) -> None:
        async with self._slots:
            try:
                cached = await self._pages.get(key)
                self._search.saw_page(cached.page)
                file = file_with_metadata(cached.page)
                metadata_key = None if file is None else file.metadata_sha256
                if file is None or metadata_key is None:
                    return  # no core metadata upstream: the version is all there is
                download = None
                if not await self._files.is_cached(metadata_key):
                    download = self._files.download(metadata_key, file.url + ".metadata", None)
                self._search.saw_metadata(key, metadata_key, download)
                if download is not None:
                    await download.wait_until_done()  # holds the slot: a few at a time
            except BodegaError as error:
                log.info("search: no details for %s: %s", key, error)
