"""What the proxy needs from an upstream index: the `Upstream` port and the values it answers.

Two implementations, picked by the composition root (services.py), the only place that
knows which one runs:

    Upstream (this module: a Protocol, no HTTP client imported)
    ├── HttpUpstream     bodega.upstream.http: the one place that talks to an upstream index
    └── OfflineUpstream  bodega.upstream.offline: contacts nothing; every fetch is NotFound

`is_offline` is the one home of bodega's offline flag: the proxy asks it where an offline
bodega serves what it holds as it is (no revalidation) or skips work it does for itself.
"""

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class UpstreamPage:
    """A page upstream sent (status 200), or confirmed unchanged (status 304, no body)."""

    status: int
    url: str  # after redirects: relative links resolve against it
    body: bytes = b""
    media_type: str = ""
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, slots=True)
class UpstreamRange:
    """A slice of a file: `body` is bytes [start, start + len(body)) of `total`."""

    body: bytes
    start: int
    total: int


class UpstreamFile(Protocol):
    """An open download: its declared length, and its bytes as they come (bounded in time:
    UpstreamTimeout when they stall or take longer than the download deadline)."""

    @property
    def content_length(self) -> int | None: ...

    def chunks(self) -> AsyncIterator[bytes]: ...


class UpstreamListing(Protocol):
    """The root list as it streams in, bounded in size and time."""

    @property
    def url(self) -> str: ...  # after redirects

    @property
    def media_type(self) -> str: ...

    def chunks(self) -> AsyncIterator[bytes]: ...


class Upstream(Protocol):
    """One upstream simple index (PEP 503/691). Failures are UpstreamError (or one of its
    kinds), a project or file upstream does not have is NotFound."""

    @property
    def is_offline(self) -> bool:
        """True when bodega never contacts this upstream (`--offline`)."""
        ...

    @property
    def description(self) -> str:
        """The upstream for messages and the UI: its URL, without credentials."""
        ...

    async def fetch_project_page(
        self, project: str, etag: str | None = None, last_modified: str | None = None
    ) -> UpstreamPage:
        """The page of a validated, normalized project, or a 304 when the validators still
        match."""
        ...

    def open_root(self) -> AbstractAsyncContextManager[UpstreamListing]:
        """The root list (/simple/), streamed: tens of MB that are never held whole."""
        ...

    def open_file(self, url: str) -> AbstractAsyncContextManager[UpstreamFile]:
        """A streaming download of a file that an upstream page listed, bytes as sent."""
        ...

    def serves_ranges(self, url: str) -> bool:
        """False once the URL's host is known to answer a range request with the whole file."""
        ...

    def open_range(
        self, url: str, first: int | None, last: int
    ) -> AbstractAsyncContextManager[UpstreamRange | UpstreamFile]:
        """Bytes `first`..`last` (inclusive) of a listed file, or its last `last` bytes when
        `first` is None (RFC 9110 14.1.2); the whole file, as a download open while the
        block runs, when the host ignores Range."""
        ...

    async def fetch_range(self, url: str, first: int | None, last: int) -> UpstreamRange:
        """As open_range, for a host known to serve ranges: a whole file is an UpstreamError."""
        ...

    async def probe(self, within: float) -> None:
        """Raises UpstreamError unless upstream is there to answer within `within` seconds."""
        ...

    async def close(self) -> None: ...
