"""A verified file from the cache as an HTTP response: conditional requests, one byte range
(core.ranges says which bytes), and the body by sendfile, counted for the access log (or
streamed from the blob store, when its blobs are no local files).

Its own rather than aiohttp's FileResponse, which answers `bytes=-0` with the whole file,
ignores an entity-tag in If-Range and refuses several ranges with a 416 (RFC 9110 says
otherwise for each), and whose sendfile the access log cannot see.

The ETag is the file's sha256 (a blob's name): a strong validator that never changes, as a
file URL's bytes never do (invariant 3).
"""

import asyncio
import logging
import os
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.helpers import ETAG_ANY, ETag

from bodega.core.ranges import Answer, select_bytes
from bodega.errors import StorageError
from bodega.offloop import acquire_off_loop
from bodega.proxy.files import CachedFile
from bodega.proxy.telemetry import CacheOutcome, IndexTelemetry
from bodega.web.access_log import log_cut
from bodega.web.headers import CACHE_OUTCOME, FILE_CACHE_CONTROL
from bodega.web.sendfile import send_file_part

log = logging.getLogger(__name__)

_OCTET_STREAM = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class _Opened:
    file: IO[bytes] | None  # None: streamed from the blob store
    size: int
    mtime: float | None  # a blob store without files may know none: no Last-Modified


class CachedResponse(web.StreamResponse):
    """A cached file, held against eviction until it is sent."""

    def __init__(
        self, cached: CachedFile, telemetry: IndexTelemetry, outcome: CacheOutcome
    ) -> None:
        headers = {
            "Cache-Control": FILE_CACHE_CONTROL,
            "Content-Type": _OCTET_STREAM,
            "Accept-Ranges": "bytes",
            CACHE_OUTCOME: outcome,
        }
        super().__init__(headers=headers)
        self._cached = cached
        self._telemetry = telemetry
        self._outcome = outcome
        # aiohttp prepares every response a handler returns; should one be dropped unsent,
        # the hold on the blob still ends with it.
        weakref.finalize(self, cached.release)

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        try:
            try:
                opened = await self._open()
            except OSError:  # held against eviction, so only a disk gone wrong gets here
                self.set_status(404)
                return await super().prepare(request)
            try:
                writer, sent = await self._answer(request, opened)
            finally:
                if opened.file is not None:
                    # Shielded: cancelled while queued, a close would never run.
                    await asyncio.shield(asyncio.to_thread(_close, opened))
        except asyncio.CancelledError:
            # aiohttp sends a returned response after the handler's middlewares are done,
            # so a cut here is logged here.
            log_cut(request)
            raise
        finally:
            self._cached.release()
        if self._outcome == CacheOutcome.HIT:
            self._telemetry.served_from_cache(sent)
        return writer

    async def _open(self) -> _Opened:
        path = self._cached.path
        if path is None:
            assert self._cached.size is not None, "a blob without a file has a known size"
            return _Opened(None, self._cached.size, None)
        return await acquire_off_loop(lambda: _open(path), _close)

    async def _answer(
        self, request: web.BaseRequest, opened: _Opened
    ) -> tuple[AbstractStreamWriter | None, int]:
        """Sends the answer; returns the writer and how many body bytes went out."""
        tag = self._cached.key
        self.etag = tag
        if opened.mtime is not None:
            self.last_modified = opened.mtime
        failed = _failed_precondition(request, tag, opened.mtime)
        if failed is not None:
            self.set_status(failed)
            return await super().prepare(request), 0
        # RFC 9110 14.2: Range is for GET alone.
        selection = select_bytes(
            request.headers.get("Range") if request.method == "GET" else None,
            request.headers.get("If-Range"),
            size=opened.size,
            etag=self.headers["ETag"],
            last_modified=self.headers.get("Last-Modified", ""),
        )
        if selection.answer is Answer.UNSATISFIABLE:
            self.set_status(416)
            self.headers["Content-Range"] = f"bytes */{opened.size}"
            self.content_length = 0
            return await super().prepare(request), 0
        start, end = 0, opened.size
        if selection.answer is Answer.PART:
            start, end = selection.start, selection.end
            self.set_status(206)
            self.headers["Content-Range"] = f"bytes {start}-{end - 1}/{opened.size}"
        self.content_length = end - start
        chunks = None
        if opened.file is None and request.method == "GET" and end > start:
            # From a store without local files: its first bytes before any header, so a
            # store that fails at once is a clean 503 with the reason, not a cut body.
            chunks = self._cached.read(start, end)
            try:
                first = await anext(chunks)
            except (FileNotFoundError, StorageError) as error:
                return await self._unavailable(request, error), 0
        writer = await super().prepare(request)
        if request.method == "HEAD" or end == start:
            return writer, 0
        if opened.file is not None:
            await send_file_part(request, opened.file, start, end - start)
        elif chunks is None or not await self._stream(request, first, chunks):
            return writer, 0
        await self.write_eof()
        return writer, end - start

    async def _unavailable(
        self, request: web.BaseRequest, error: Exception
    ) -> AbstractStreamWriter | None:
        body = f"{error}\n".encode()
        self.set_status(503 if isinstance(error, StorageError) else 404)
        for header in ("ETag", "Last-Modified", "Content-Range", "Accept-Ranges"):
            self.headers.pop(header, None)
        self.headers["Cache-Control"] = "no-store"
        self.headers["Content-Type"] = "text/plain; charset=utf-8"
        self.content_length = len(body)
        writer = await super().prepare(request)
        await self.write(body)
        await self.write_eof()
        return writer

    async def _stream(
        self, request: web.BaseRequest, first: bytes, chunks: AsyncIterator[bytes]
    ) -> bool:
        """The bytes from the blob store; False when the blob went away midway, or the
        store failed (the connection is dropped: a short body must never pass for the
        file)."""
        try:
            await self.write(first)
            async for chunk in chunks:
                await self.write(chunk)
        except (FileNotFoundError, StorageError) as error:
            log.warning("cutting %s: %s", request.path, error)
            if request.transport is not None:
                request.transport.abort()
            return False
        return True


class SmallFileResponse(web.Response):
    """A small verified file sent whole from memory (proxy.small_files): no file to open or
    close in a worker thread. Range and conditional requests go to CachedResponse."""

    def __init__(self, data: bytes, key: str, telemetry: IndexTelemetry) -> None:
        headers = {
            "Cache-Control": FILE_CACHE_CONTROL,
            "Content-Type": _OCTET_STREAM,
            "Accept-Ranges": "bytes",
            CACHE_OUTCOME: CacheOutcome.HIT,
        }
        super().__init__(body=data, headers=headers)
        self.etag = key  # as CachedResponse: the sha256 that names the blob
        self._telemetry = telemetry

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        writer = await super().prepare(request)
        sent = self.content_length or 0
        self._telemetry.served_from_cache(sent)
        return writer


def _open(path: Path) -> _Opened:
    file = path.open("rb")
    try:
        status = os.fstat(file.fileno())
    except OSError:
        file.close()
        raise
    return _Opened(file, status.st_size, status.st_mtime)


def _close(opened: _Opened) -> None:
    if opened.file is not None:
        opened.file.close()


def _failed_precondition(request: web.BaseRequest, tag: str, mtime: float | None) -> int | None:
    """412 or 304 when a conditional header says so (RFC 9110 13.2.2 order), else None.
    Without a modification date the date conditions are ignored (13.1.3, 13.1.4)."""
    if (if_match := request.if_match) is not None:
        if not _matches(if_match, tag, weak=False):
            return 412
    elif (since := request.if_unmodified_since) is not None and _is_after(mtime, since):
        return 412
    if (if_none_match := request.if_none_match) is not None:
        return 304 if _matches(if_none_match, tag, weak=True) else None
    if (modified := request.if_modified_since) is not None and mtime is not None:
        return 304 if not _is_after(mtime, modified) else None
    return None


def _is_after(mtime: float | None, moment: datetime) -> bool:
    return mtime is not None and mtime > moment.timestamp()


def _matches(tags: tuple[ETag, ...], tag: str, *, weak: bool) -> bool:
    return any(
        candidate.value in (tag, ETAG_ANY) and (weak or not candidate.is_weak) for candidate in tags
    )
