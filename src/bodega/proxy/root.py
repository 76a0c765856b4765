"""The root list (/simple/): fetched from upstream, rendered once per refresh into two blobs
(HTML and JSON), and served from those, so 800k names cost one render, not one per request."""

import asyncio
import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from bodega.core.parsing import parse_project_list
from bodega.core.rendering import render_root_html, render_root_json
from bodega.errors import NotFound, UpstreamError
from bodega.proxy.singleflight import SingleFlight
from bodega.storage.blobs import BlobStore
from bodega.storage.metadata import MetadataStore, StoredRoot
from bodega.upstream import UpstreamClient

log = logging.getLogger(__name__)


class RootList:
    """The list of every project upstream has."""

    def __init__(
        self,
        upstream: UpstreamClient,
        store: MetadataStore,
        blobs: BlobStore,
        spool_dir: Path,
        *,
        ttl: float,
        offline: bool,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._upstream = upstream
        self._store = store
        self._blobs = blobs
        self._spool_dir = spool_dir
        self._ttl = ttl
        self._offline = offline
        self._clock = clock
        self._refresh: SingleFlight[StoredRoot] = SingleFlight()

    async def get(self, *, revalidate: bool = False) -> tuple[StoredRoot, bool]:
        """The stored root list and whether it is stale (upstream could not refresh it)."""
        stored = await self._store.get_root()
        if self._offline:
            if stored is None:
                raise NotFound("the root list is not cached and bodega is offline")
            return stored, False
        # A negative age is a clock that stepped back: expired, not fresh (threat 36).
        is_fresh = stored is not None and 0 <= self._clock() - stored.fetched_at < self._ttl
        if stored is not None and not revalidate and is_fresh:
            return stored, False
        try:
            return await self._refresh.call("root", self._fetch), False
        except UpstreamError as error:
            if stored is None:
                raise
            log.warning("serving the root list stale: %s", error)
            return stored, True

    def max_age(self, root: StoredRoot) -> int:
        return max(0, int(self._ttl - (self._clock() - root.fetched_at)))

    async def close(self) -> None:
        await self._refresh.close()

    async def _fetch(self) -> StoredRoot:
        response = await self._upstream.fetch_root()
        names = await asyncio.to_thread(parse_project_list, response.body, response.media_type)
        html_key = await self._store_rendering(render_root_html(names))
        json_key = await self._store_rendering(render_root_json(names))
        root = StoredRoot(html_key, json_key, len(names), self._clock())
        await self._store.put_root(root)
        return root

    async def _store_rendering(self, chunks: Iterator[bytes]) -> str:
        path, key = await asyncio.to_thread(_write_spooled, self._spool_dir, chunks)
        await self._blobs.put_file(key, path)
        return key


def _write_spooled(spool_dir: Path, chunks: Iterator[bytes]) -> tuple[Path, str]:
    spool_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=spool_dir, suffix=".root")
    hasher = hashlib.sha256()
    with os.fdopen(fd, "wb") as out:
        for chunk in chunks:
            hasher.update(chunk)
            out.write(chunk)
    return Path(name), hasher.hexdigest()
