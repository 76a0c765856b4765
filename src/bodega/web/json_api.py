"""The PyPI JSON API, for PDM's `pypi.json_api` and pip-tools' `--generate-hashes` (spec 40)."""

import asyncio
import functools
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urljoin

from aiohttp import web

from bodega.core.names import normalize_project_name
from bodega.errors import NotFound
from bodega.services import Services
from bodega.web.routing import Match

_LARGE_PAGE = 200  # files
T = TypeVar("T")


async def project_json(request: web.Request, services: Services, match: Match) -> web.Response:
    # On first use: the metadata shaping needs packaging's requirement grammar and the
    # classifier list, which `bodega serve` does not load at start (issue 6).
    from bodega.core.json_api import ApiUrls, find_version, group_releases, render_json_api
    from bodega.core.releases import latest_version

    project = normalize_project_name(match.project)
    if project != match.project:
        release = f"{match.version}/" if match.version else ""
        raise web.HTTPMovedPermanently(f"{match.prefix}{project}/{release}json")
    mirror = await services.indexes.serving(match.index, project)
    cached = await mirror.pages.get(project)
    page = cached.page
    is_large = len(page.files) > _LARGE_PAGE
    releases = await _off_loop_if(is_large, functools.partial(group_releases, page))
    if match.version:
        version = find_version(releases, match.version)
        if version is None:
            raise NotFound(f"{project} has no release {match.version}")
    else:
        version = latest_version(releases)
    # A release the page lists is always described: from its METADATA, an sdist's
    # PKG-INFO, or, when neither can be had, the page's own facts.
    metadata = None
    if version is not None:
        found = await mirror.release_metadata.read(project, releases[version])
        metadata = found.fields
        if found.extracted:  # the page in hand may predate the METADATA just extracted
            page = page.with_core_metadata(found.extracted)
            releases = await _off_loop_if(is_large, functools.partial(group_releases, page))
    # Absolute, like warehouse's: pip-tools matches these URLs against the simple page's
    # links resolved by the same client, so both come from the URL that client asked for.
    # Nothing rendered here is stored, so a forged Host reaches only its sender (threat 11).
    root = urljoin(str(request.url), "../" * match.depth)
    tree = urljoin(root, f"{match.index}/") if match.index else root  # the index's own paths
    urls = ApiUrls(files_base=urljoin(tree, "files/"), projects_base=urljoin(tree, "+project/"))
    shown = [files for v, files in releases.items() if not match.version or v == version]
    keys = [f.sha256 for files in shown for f in files if f.sha256]
    digests = await services.file_digests.known(keys)
    render = functools.partial(
        render_json_api,
        page,
        releases,
        version,
        metadata,
        urls,
        with_releases=not match.version,
        digests=digests,
    )
    body = await _off_loop_if(is_large, render)
    headers = {
        "Content-Type": "application/json",
        "Cache-Control": f"max-age={mirror.pages.max_age(cached)}, public",
    }
    return web.Response(body=body, headers=headers)


async def _off_loop_if(is_large: bool, work: Callable[[], T]) -> T:
    # Grouping and rendering thousands of files takes a while: off the loop for such pages.
    return await asyncio.to_thread(work) if is_large else work()
