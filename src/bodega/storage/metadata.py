"""The metadata store interface: project pages with their validators, and blob records."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class StoredPage:
    """A project page as last fetched from upstream, with what revalidation needs."""

    project: str
    record: dict[str, Any]  # ProjectPage.to_record()
    etag: str | None
    last_modified: str | None
    fetched_at: float  # when upstream last confirmed it (200 or 304), epoch seconds


@dataclass(frozen=True, slots=True)
class StoredRoot:
    """The root list, rendered once per refresh and kept as two blobs."""

    html_key: str
    json_key: str
    project_count: int
    fetched_at: float


@dataclass(frozen=True, slots=True)
class StoredBlob:
    """A blob's record: its size and when a client last asked for it."""

    key: str
    size: int
    accessed_at: float  # epoch seconds; the time it was stored until first asked for


class MetadataStore(Protocol):
    async def get_page(self, project: str) -> StoredPage | None: ...

    async def put_page(self, page: StoredPage) -> None: ...

    async def mark_page_fresh(self, project: str, fetched_at: float) -> None:
        """Upstream said 304: the stored page is confirmed as of `fetched_at`."""

    async def record_blob(self, key: str, size: int, stored_at: float) -> None:
        """A blob was committed to the blob store."""

    async def blob_keys(self) -> set[str]: ...

    async def forget_blob(self, key: str) -> None: ...

    async def is_writable(self) -> bool:
        """Whether a write could start now (for readiness checks)."""

    async def has_page(self, project: str) -> bool: ...

    async def forget_page(self, project: str) -> bool:
        """Drop the stored page, so the next request fetches it in full; False if none."""

    async def page_count(self) -> int: ...

    async def touch_blobs(self, accessed: Mapping[str, float]) -> None:
        """Record last-access times, many at once (hits are batched, not one write each)."""

    async def blob_usage(self) -> tuple[int, int]:
        """How many blobs are recorded, and their total size in bytes."""

    async def blobs_by_access(
        self, *, unused_since: float | None = None, limit: int | None = None
    ) -> list[StoredBlob]:
        """Recorded blobs, least recently used first, optionally only those not used since
        `unused_since`; never the blobs the root list is served from."""

    async def get_root(self) -> StoredRoot | None: ...

    async def put_root(self, root: StoredRoot) -> None: ...

    async def close(self) -> None: ...
