"""A hosted index's use cases: uploads, the pages of what was uploaded, and managing
releases (yank, delete, PEP 792 status, reserved names).

An upload is spooled while it is hashed, judged (core.uploads), and only then stored: its
METADATA blob, its file's blob, then one store transaction that records the file and its
filename. The filename's row decides a race: of two uploads of one filename exactly one is
recorded, and the loser's bytes go unless another file keeps them. A hosted file's blob has
no row among the cache's blobs, so eviction, `cache prune` and `cache verify`'s adoption
never touch it (pinned).
"""

import asyncio
import contextlib
import gzip
import hashlib
import io
import logging
import os
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from packaging.utils import NormalizedName

from bodega.core.indexes import HostedIndex
from bodega.core.model import DistributionFile, ProjectPage, ProjectStatus
from bodega.core.names import normalize_project_name
from bodega.core.parsing import JSON_V1
from bodega.core.rendering import file_href
from bodega.core.root_list import ROOT_JSON_END, ROOT_JSON_START, root_json_entries
from bodega.core.uploads import (
    DeclaredUpload,
    Digests,
    check_digests,
    check_form,
    check_metadata,
)
from bodega.core.wheel_metadata import (
    TAIL_BYTES,
    WheelMetadataError,
    extract_metadata,
    find_metadata_member,
    locate_central_directory,
)
from bodega.errors import InvalidUpload, NotFound
from bodega.proxy.pages import CachedPage, RenderedPage, render_page
from bodega.storage.blobs import BlobStore, store_bytes, store_file
from bodega.storage.metadata import HostedFile, HostedProject, HostedStore

log = logging.getLogger(__name__)

# PEP 792's statuses a hosted project may be given (None: active).
STATUSES = ("archived", "quarantined", "deprecated")
_NO_UPLOADS = ("archived", "quarantined")  # PEP 792: neither takes new files
# An sdist's PKG-INFO sits near the start; a tar that inflates this far without one is no
# sdist (and a gzip bomb stops here).
_MAX_SDIST_SCAN_BYTES = 64 * 1024 * 1024
_MAX_PKG_INFO_BYTES = 8 * 1024 * 1024
_CHUNK = 256 * 1024
PROVENANCE_SUFFIX = ".provenance"


@dataclass(frozen=True, slots=True)
class Spooled:
    """An upload's bytes in the spool dir, with what bodega computed of them."""

    filename: str
    path: Path
    digests: Digests


class HostedRootSource:
    """A hosted index's root list: its projects' names, as a JSON root page."""

    def __init__(self, store: HostedStore) -> None:
        self._store = store

    @property
    def is_offline(self) -> bool:
        return False

    @asynccontextmanager
    async def open_root(self) -> AsyncIterator["_HostedListing"]:
        projects = await self._store.hosted_projects()
        yield _HostedListing([(NormalizedName(p.project), p.name) for p in projects])


@dataclass(frozen=True, slots=True)
class _HostedListing:
    entries: list[tuple[NormalizedName, str]]
    media_type: str = JSON_V1

    async def chunks(self) -> AsyncIterator[bytes]:
        yield ROOT_JSON_START + root_json_entries(self.entries, is_first=True) + ROOT_JSON_END


class HostedProjects:
    """One hosted index's projects."""

    def __init__(
        self,
        spec: HostedIndex,
        store: HostedStore,
        blobs: BlobStore,
        spool_dir: Path,
        *,
        clock: Callable[[], float] = time.time,
        on_change: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.spec = spec
        self._store = store
        self._blobs = blobs
        self._spool_dir = spool_dir
        self._clock = clock
        self.on_change = on_change  # told after a change to the project list (the root list)
        # The mirror of a virtual index over this one that has a project of that name (set
        # by Indexes): a new name found there is refused unless reserved (threat 43).
        self.shadowed_by: Callable[[str], Awaitable[str | None]] | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    # ------------------------------------------------------------------ serving

    async def claims(self, project: str) -> bool:
        """Whether this index has or reserves the (normalized) name: a virtual index then
        serves it from here alone."""
        if project in self.spec.reserved:
            return True
        if await self._store.hosted_project(project) is not None:
            return True
        return project in await self._store.reservations()

    async def page(self, project: str) -> CachedPage:
        found = await self._store.hosted_project(project)
        if found is None:
            if await self.claims(project):
                raise NotFound(f"{project} is reserved on {self.name} and has no files")
            raise NotFound(f"{self.name} has no project named {project}")
        files = await self._store.hosted_files(project)
        page = _page(found, files)
        return CachedPage(page, etag=None, last_modified=None, fetched_at=self._clock())

    async def render(self, cached: CachedPage, media_type: str) -> RenderedPage:
        rendered = cached.renderings.get(media_type)
        if rendered is None:
            rendered = cached.renderings[media_type] = render_page(cached.page, media_type)
        return rendered

    def max_age(self, cached: CachedPage) -> int:
        # An upload or a yank shows at once: clients revalidate (the ETag answers 304).
        return 0

    async def find_file(self, project: str, filename: str) -> HostedFile:
        found = await self._store.hosted_project(project)
        if found is not None and found.status == "quarantined":
            raise NotFound(f"{project} is quarantined")  # PEP 792: no file is offered
        for file in await self._store.hosted_files(project):
            if file.filename == filename:
                return file
        raise NotFound(f"{project} has no file {filename}")

    async def projects(self) -> list[HostedProject]:
        return await self._store.hosted_projects()

    async def files(self, project: str) -> list[HostedFile]:
        return await self._store.hosted_files(project)

    # ------------------------------------------------------------------ uploads

    async def receive(self, filename: str, chunks: AsyncIterator[bytes]) -> Spooled:
        """Spool an upload's bytes while hashing them; InvalidUpload as soon as it passes
        the index's size limit (the rest is not read)."""
        limit = self.spec.max_upload_size
        hashes = (
            hashlib.sha256(),
            hashlib.md5(usedforsecurity=False),
            hashlib.blake2b(digest_size=32),
        )
        handle, name = await asyncio.to_thread(
            tempfile.mkstemp, dir=self._spool_dir, suffix=".upload"
        )
        path = Path(name)
        out: IO[bytes] = os.fdopen(handle, "wb")
        size = 0
        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise InvalidUpload(f"File too large. Limit for this index is {limit} bytes")
                await asyncio.to_thread(_write_and_hash, out, hashes, chunk)
            await asyncio.to_thread(out.close)
        except BaseException:
            await asyncio.shield(asyncio.to_thread(_discard, out, path))
            raise
        sha256, md5, blake2b = (h.hexdigest() for h in hashes)
        return Spooled(filename, path, Digests(sha256, md5, blake2b, size))

    async def publish(self, fields: Mapping[str, Sequence[str]], spooled: Spooled) -> HostedFile:
        """Judge a spooled upload and, when it passes, store and record it. The spool is
        consumed either way."""
        try:
            return await self._publish(fields, spooled)
        finally:
            await asyncio.shield(asyncio.to_thread(spooled.path.unlink, missing_ok=True))

    async def _publish(self, fields: Mapping[str, Sequence[str]], spooled: Spooled) -> HostedFile:
        declared = check_form(fields, spooled.filename)
        if await self._store.was_accepted(declared.filename):
            raise InvalidUpload(f"File already exists ({declared.filename!r})")
        project = await self._store.hosted_project(declared.project)
        if project is not None and project.status in _NO_UPLOADS:
            raise InvalidUpload(f"Project {declared.project!r} is {project.status}: no uploads")
        if project is None:
            await self._check_not_shadowing(declared.project)
        check_digests(declared, spooled.digests, self.spec.max_upload_size)
        metadata = await asyncio.to_thread(_read_metadata, spooled.path, declared)
        requires_python = check_metadata(declared, metadata)
        metadata_key = None
        if declared.is_wheel:
            # PEP 658: the METADATA is served beside the wheel, extracted once, here.
            metadata_key = hashlib.sha256(metadata).hexdigest()
            await store_bytes(self._blobs, metadata_key, metadata)
        digests = spooled.digests
        await store_file(self._blobs, digests.sha256, spooled.path)
        file = HostedFile(
            declared.project,
            declared.version,
            declared.filename,
            digests.sha256,
            digests.md5,
            digests.blake2b_256,
            digests.size,
            self._clock(),
            declared.requires_python or requires_python,
            metadata_key,
            attestations=declared.attestations,
        )
        if not await self._store.add_hosted_file(file, declared.name):
            # Another upload of this filename won the race: its bytes stay, these go.
            await self._forget_blobs([file])
            raise InvalidUpload(f"File already exists ({declared.filename!r})")
        log.info("%s: accepted %s", self.name, declared.filename)
        await self._changed()
        return file

    async def _check_not_shadowing(self, project: str) -> None:
        """A new name that a mirror served beside this index has is refused unless an admin
        reserved it: an upload must not silently take a public name over (threat 43)."""
        if self.shadowed_by is None or project in await self.reservations():
            return
        mirror = await self.shadowed_by(project)
        if mirror is not None:
            raise InvalidUpload(
                f"Project {project!r} exists on {mirror}; an admin must reserve it on"
                f" {self.name} before it can be uploaded here"
            )

    # ------------------------------------------------------------------ managing

    async def yank(
        self, project: str, version: str | None, filename: str | None, reason: str | None
    ) -> int:
        """Yank (reason: a text, maybe empty) or unyank (None); NotFound when no file
        matches."""
        count = await self._store.set_yanked(
            normalize_project_name(project), version, filename, reason
        )
        if count == 0:
            raise NotFound(f"{self.name}: no file of {project} matches")
        return count

    async def delete(self, project: str, version: str | None, filename: str | None) -> int:
        """Delete a file, a release or the whole project; their filenames stay taken."""
        deleted = await self._store.delete_hosted_files(
            normalize_project_name(project), version, filename
        )
        if not deleted and (version is not None or filename is not None):
            raise NotFound(f"{self.name}: no file of {project} matches")
        await self._forget_blobs(deleted)
        await self._changed()
        return len(deleted)

    async def set_status(self, project: str, status: str | None, reason: str | None) -> None:
        if status is not None and status not in STATUSES:
            raise InvalidUpload(f"Unknown status {status!r}; one of {', '.join(STATUSES)}")
        if not await self._store.set_project_status(
            normalize_project_name(project), status, reason
        ):
            raise NotFound(f"{self.name} has no project named {project}")

    async def reserve(self, project: str) -> None:
        await self._store.reserve(normalize_project_name(project))

    async def release(self, project: str) -> bool:
        return await self._store.release_reservation(normalize_project_name(project))

    async def reservations(self) -> set[str]:
        return set(self.spec.reserved) | await self._store.reservations()

    async def _forget_blobs(self, files: Sequence[HostedFile]) -> None:
        """Delete the blobs of files no longer recorded, unless a hosted file still keeps
        them (the same bytes uploaded twice)."""
        kept = await self._store.hosted_blob_keys()
        for file in files:
            for key in (file.sha256, file.metadata_sha256):
                if key is not None and key not in kept:
                    await self._blobs.delete(key)

    async def _changed(self) -> None:
        if self.on_change is not None:
            await self.on_change()


def _page(project: HostedProject, files: Sequence[HostedFile]) -> ProjectPage:
    status = (
        None if project.status is None else ProjectStatus(project.status, project.status_reason)
    )
    listed = () if project.status == "quarantined" else files
    versions = tuple(dict.fromkeys(file.version for file in files))
    return ProjectPage(
        normalize_project_name(project.project),
        tuple(_listed(file) for file in listed),
        versions=versions if listed else (),
        status=status,
    )


def _listed(file: HostedFile) -> DistributionFile:
    uploaded = datetime.fromtimestamp(file.uploaded_at, UTC)
    return DistributionFile(
        file.filename,
        url=file.filename,  # rendered as bodega's own file URL; never fetched upstream
        hashes={"sha256": file.sha256},
        requires_python=file.requires_python,
        yanked=(file.yank_reason or True) if file.yanked else False,
        core_metadata={"sha256": file.metadata_sha256} if file.metadata_sha256 else False,
        size=file.size,
        upload_time=uploaded.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        # PEP 740: served beside the file (FileRequests), relative to the page as its URL is.
        provenance=None
        if file.attestations is None
        else file_href(file.project, file.filename) + PROVENANCE_SUFFIX,
    )


def _write_and_hash(out: IO[bytes], hashes: Sequence[Any], chunk: bytes) -> None:
    out.write(chunk)
    for hasher in hashes:
        hasher.update(chunk)


def _discard(out: IO[bytes], path: Path) -> None:
    with contextlib.suppress(OSError):
        out.close()
    path.unlink(missing_ok=True)


def _read_metadata(path: Path, declared: DeclaredUpload) -> bytes:
    """The file's own core metadata: a wheel's METADATA, an sdist's PKG-INFO."""
    import tarfile  # on first upload: serving never needs it (test_startup_imports)

    try:
        if declared.is_wheel:
            return _wheel_metadata(path, declared.filename)
        return _sdist_metadata(path)
    except WheelMetadataError as error:
        raise InvalidUpload(f"Invalid wheel: {error}") from None
    except (OSError, EOFError, tarfile.TarError, gzip.BadGzipFile) as error:
        raise InvalidUpload(f"Invalid distribution file: {error}") from None


def _wheel_metadata(path: Path, filename: str) -> bytes:
    """Bounded reads (core.wheel_metadata's caps): the tail, the central directory, the one
    member; nothing else of the zip is inflated."""
    with path.open("rb") as wheel:
        size = os.fstat(wheel.fileno()).st_size
        wheel.seek(max(0, size - TAIL_BYTES))
        tail = wheel.read()
        directory_span = locate_central_directory(tail, size)
        wheel.seek(directory_span.start)
        directory = wheel.read(directory_span.length)
        member = find_metadata_member(directory, directory_span, filename)
        wheel.seek(member.span.start)
        return extract_metadata(wheel.read(member.span.length), member)


def _sdist_metadata(path: Path) -> bytes:
    """The top directory's PKG-INFO of a gzipped tar, read as a stream that stops after
    _MAX_SDIST_SCAN_BYTES inflated."""
    import tarfile

    with gzip.open(path, "rb") as inflated:
        bounded = _Bounded(inflated, _MAX_SDIST_SCAN_BYTES)
        with tarfile.open(fileobj=bounded, mode="r|") as archive:
            for member in archive:
                parts = member.name.split("/")
                if len(parts) == 2 and parts[1] == "PKG-INFO" and member.isfile():
                    if member.size > _MAX_PKG_INFO_BYTES:
                        raise InvalidUpload("Invalid sdist: PKG-INFO is too large")
                    extracted = archive.extractfile(member)
                    if extracted is not None:
                        return extracted.read()
    raise InvalidUpload("Invalid sdist: no PKG-INFO in its top directory")


class _Bounded(io.RawIOBase):
    """A reader that fails past `limit` bytes."""

    def __init__(self, inner: gzip.GzipFile, limit: int) -> None:
        self._inner = inner
        self._left = limit

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(size)
        self._left -= len(data)
        if self._left < 0:
            raise InvalidUpload("Invalid sdist: no PKG-INFO near its start")
        return data
