"""The use case behind an index's simple API: its project pages, counted for the index
asked, and its root list with the stored renderings it is sent from."""

from bodega.proxy.files import CachedFile, FileCache
from bodega.proxy.indexes import Indexes, ServedPage
from bodega.proxy.pages import ClientRefresh
from bodega.proxy.root import RootList
from bodega.proxy.telemetry import Telemetry


class PageRequests:
    def __init__(self, indexes: Indexes, files: FileCache, telemetry: Telemetry) -> None:
        self._indexes = indexes
        self._files = files
        self._telemetry = telemetry

    async def project(self, index: str, project: str, refresh: ClientRefresh) -> ServedPage:
        """The project's page as the index serves it; its outcome counts for that index."""
        served = await self._indexes.page(index, project, refresh)
        self._telemetry.index(served.index).count_outcome("page", served.outcome)
        return served

    def root_list(self, index: str) -> RootList:
        return self._indexes.root_list(index)

    async def open_rendering(self, key: str) -> CachedFile | None:
        """A stored rendering of a root list, None when it is not there (a gzip copy that
        `cache verify` quarantined, say)."""
        return await self._files.open_stored(key)
