"""A release's core metadata for the JSON API, from whichever of its files can give it.

Cheapest first: a wheel's METADATA that upstream serves (verified by the hash its page
gives) or that bodega extracts itself; else an sdist's PKG-INFO, read from the cached sdist
or from one verified download of it through the file cache, the way a client's download
goes. A few files at most are tried, so one request never starts work for every file of a
release. Parsed PKG-INFOs are remembered by the sdist's hash: reading one means
decompressing the archive, and the sdist will not change.
"""

import asyncio
import contextlib
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bodega.core.model import DistributionFile
from bodega.errors import BodegaError
from bodega.proxy.core_metadata import CoreMetadataExtractor
from bodega.proxy.files import FileCache

if TYPE_CHECKING:
    from packaging.metadata import RawMetadata

_METADATA_SUFFIX = ".metadata"
FILES_TRIED = 3
# PKG-INFOs kept in memory: most are a few KB; a long README as description makes one larger.
_REMEMBERED_SDISTS = 256
_REMEMBERED_MAX_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class FoundMetadata:
    """A release's core metadata, and the METADATA bodega extracted to get it."""

    fields: "RawMetadata | None"  # None: none of the release's files could give it
    # filename -> sha256 of a wheel's METADATA extracted for this request: the page in hand
    # may predate it, yet bodega now serves it.
    extracted: dict[str, str] = field(default_factory=dict)


class ReleaseMetadata:
    """Reads the core metadata of a release's files, verified, for the JSON API."""

    def __init__(self, files: FileCache, extractor: CoreMetadataExtractor) -> None:
        self._files = files
        self._extractor = extractor
        self._pkg_infos: OrderedDict[str, bytes] = OrderedDict()  # sdist sha256 -> PKG-INFO

    async def read(self, project: str, files: list[DistributionFile]) -> FoundMetadata:
        """The release's metadata, from the first of its files that can give it."""
        # On first use, like the JSON API that asks: packaging's metadata reader brings its
        # requirement grammar, which `bodega serve` does not load at start (issue 6).
        from bodega.core.core_metadata import parse_core_metadata

        extracted: dict[str, str] = {}
        found = await self._from_wheels(project, files, extracted)
        if found is None:
            found = await self._from_sdists(files)
        if found is None:
            return FoundMetadata(None, extracted)
        return FoundMetadata(await asyncio.to_thread(parse_core_metadata, found), extracted)

    async def _from_wheels(
        self, project: str, files: list[DistributionFile], extracted: dict[str, str]
    ) -> bytes | None:
        with_hash = [f for f in files if f.metadata_sha256]
        wheels = [f for f in files if f.filename.endswith(".whl") and not f.core_metadata]
        for file in (with_hash + wheels)[:FILES_TRIED]:
            key = file.metadata_sha256
            if key is None:
                key = await self._extractor.obtain(project, file)
                if key is None:
                    continue
                extracted[file.filename] = key
            elif not await self._files.is_cached(key):
                with contextlib.suppress(BodegaError):  # offline, or upstream has none after all
                    download = self._files.download(key, file.url + _METADATA_SUFFIX, None)
                    await download.wait_until_done()
            found = await self._files.read_whole(key)
            if found is not None:
                return found
        return None

    async def _from_sdists(self, files: list[DistributionFile]) -> bytes | None:
        from bodega.core.sdist_metadata import is_readable_sdist

        # Only a file whose hash the page gives: the cache never keeps an unverified one.
        sdists = [(f.sha256, f) for f in files if f.sha256 and is_readable_sdist(f.filename)]
        for key, file in sdists[:FILES_TRIED]:
            # Offline, upstream down, no PKG-INFO, the blob gone: the page's facts will do.
            with contextlib.suppress(BodegaError, OSError):
                return await self._pkg_info(key, file)
        return None

    async def _pkg_info(self, key: str, file: DistributionFile) -> bytes:
        remembered = self._pkg_infos.get(key)
        if remembered is not None:
            self._pkg_infos.move_to_end(key)
            return remembered
        found = await self._read_sdist(key, file)
        if len(found) <= _REMEMBERED_MAX_BYTES:
            self._pkg_infos[key] = found
            while len(self._pkg_infos) > _REMEMBERED_SDISTS:
                self._pkg_infos.popitem(last=False)
        return found

    async def _read_sdist(self, key: str, file: DistributionFile) -> bytes:
        found = await self._read_cached_sdist(key, file.filename)
        if found is None:
            await self._files.download(key, file.url, file.size).wait_until_done()
            found = await self._read_cached_sdist(key, file.filename)
            if found is None:
                raise BodegaError(f"{file.filename} left the cache before it was read")
        return found

    async def _read_cached_sdist(self, key: str, filename: str) -> bytes | None:
        async with self._files.local_file(key) as path:
            if path is None:
                return None
            return await asyncio.to_thread(_read_pkg_info, path, filename)


def _read_pkg_info(path: Path, filename: str) -> bytes:
    from bodega.core.sdist_metadata import read_pkg_info

    with path.open("rb") as archive:
        return read_pkg_info(archive, filename)
