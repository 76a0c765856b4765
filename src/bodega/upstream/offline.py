"""OfflineUpstream: the upstream of a bodega that never contacts one (`--offline`).

Every fetch is NotFound, worded as the offline cache answers what it does not hold: an
offline bodega serves only what is cached, and a thing it does not hold is not there.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import NoReturn

from bodega.core.urls import shown_url
from bodega.errors import NotFound
from bodega.upstream import UpstreamFile, UpstreamListing, UpstreamPage, UpstreamRange


class OfflineUpstream:
    """The Upstream port without an upstream: nothing is ever asked of `base_url`, which
    only names the index bodega would mirror (for messages and the UI)."""

    def __init__(self, base_url: str) -> None:
        self._description = shown_url(base_url)

    @property
    def is_offline(self) -> bool:
        return True

    @property
    def description(self) -> str:
        return self._description

    async def fetch_project_page(
        self, project: str, etag: str | None = None, last_modified: str | None = None
    ) -> UpstreamPage:
        raise NotFound(f"{project} is not cached and bodega is offline")

    @asynccontextmanager
    async def open_root(self) -> AsyncIterator[UpstreamListing]:
        _offline("the root list is not cached")
        yield  # never reached: a generator only, as asynccontextmanager needs

    @asynccontextmanager
    async def open_file(self, url: str) -> AsyncIterator[UpstreamFile]:
        _offline("file not cached")
        yield  # never reached

    def serves_ranges(self, url: str) -> bool:
        return False

    @asynccontextmanager
    async def open_range(
        self, url: str, first: int | None, last: int
    ) -> AsyncIterator[UpstreamRange | UpstreamFile]:
        _offline("file not cached")
        yield  # never reached

    async def fetch_range(self, url: str, first: int | None, last: int) -> UpstreamRange:
        _offline("file not cached")

    async def probe(self, within: float) -> None:
        """Nothing to reach: an offline bodega needs no upstream to do its work."""

    async def close(self) -> None:
        """Nothing to close: nothing was opened."""


def _offline(what_is_missing: str) -> NoReturn:
    raise NotFound(f"{what_is_missing} and bodega is offline")
