"""The metadata store interface: project pages with their validators, and blob records."""

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


class MetadataStore(Protocol):
    async def get_page(self, project: str) -> StoredPage | None: ...

    async def put_page(self, page: StoredPage) -> None: ...

    async def mark_page_fresh(self, project: str, fetched_at: float) -> None:
        """Upstream said 304: the stored page is confirmed as of `fetched_at`."""

    async def record_blob(self, key: str, size: int, stored_at: float) -> None:
        """A blob was committed to the blob store."""

    async def blob_keys(self) -> set[str]: ...

    async def forget_blob(self, key: str) -> None: ...

    async def get_root(self) -> StoredRoot | None: ...

    async def put_root(self, root: StoredRoot) -> None: ...

    async def put_core_metadata(self, project: str, filename: str, sha256: str) -> None:
        """bodega extracted the METADATA of a wheel (blob `sha256`); its page may advertise it."""

    async def core_metadata_of(self, project: str) -> dict[str, str]:
        """Filename -> sha256 of every METADATA bodega extracted for this project's wheels."""

    async def close(self) -> None: ...
