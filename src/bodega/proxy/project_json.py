"""The use case behind the PyPI JSON API (spec 40): a project, or one release, described
from the page the index serves, the release's METADATA and the digests bodega computed."""

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from bodega.errors import NotFound
from bodega.proxy.file_digests import FileDigester
from bodega.proxy.indexes import Indexes, Mirror
from bodega.proxy.pages import ClientRefresh

if TYPE_CHECKING:
    from bodega.core.json_api import ApiUrls

_LARGE_PAGE = 200  # files
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ProjectDescription:
    body: bytes  # the JSON document
    max_age: int  # seconds a client may keep it: the page's


class ProjectJson:
    def __init__(self, indexes: Indexes, digests: FileDigester) -> None:
        self._indexes = indexes
        self._digests = digests

    async def describe(
        self, index: str, project: str, version: str, urls: "ApiUrls"
    ) -> ProjectDescription:
        """The project (`version` empty) or one of its releases; NotFound when the project
        or that release is not there."""
        # On first use: the metadata shaping needs packaging's requirement grammar and the
        # classifier list, which `bodega serve` does not load at start (issue 6).
        from bodega.core.json_api import find_version, group_releases, render_json_api
        from bodega.core.releases import latest_version

        # The page the index serves: one base's, or with `merge = true` every base's united.
        served = await self._indexes.page(index, project, ClientRefresh.NONE)
        page = served.cached.page
        is_large = len(page.files) > _LARGE_PAGE
        releases = await _off_loop_if(is_large, functools.partial(group_releases, page))
        if version:
            found_version = find_version(releases, version)
            if found_version is None:
                raise NotFound(f"{project} has no release {version}")
        else:
            found_version = latest_version(releases)
        # A release the page lists is always described: from its METADATA, an sdist's
        # PKG-INFO, or, when neither can be had, the page's own facts.
        metadata = None
        if found_version is not None:
            files = releases[found_version]
            source, _ = await self._indexes.file(index, project, files[0].filename)
            # A hosted release is described by its page's facts (its METADATA is served
            # beside each wheel, PEP 658).
            if isinstance(source, Mirror):
                found = await source.release_metadata.read(project, files)
                metadata = found.fields
                if found.extracted:  # the page in hand may predate the METADATA extracted
                    page = page.with_core_metadata(found.extracted)
                    releases = await _off_loop_if(is_large, functools.partial(group_releases, page))
        shown = [files for v, files in releases.items() if not version or v == found_version]
        digests = await self._digests.known(
            [f.sha256 for files in shown for f in files if f.sha256]
        )
        render = functools.partial(
            render_json_api,
            page,
            releases,
            found_version,
            metadata,
            urls,
            with_releases=not version,
            digests=digests,
        )
        body = await _off_loop_if(is_large, render)
        return ProjectDescription(body, served.max_age)


async def _off_loop_if(is_large: bool, work: Callable[[], T]) -> T:
    # Grouping and rendering thousands of files takes a while: off the loop for such pages.
    return await asyncio.to_thread(work) if is_large else work()
