"""The PyPI JSON API, for PDM's `pypi.json_api` and pip-tools' `--generate-hashes` (spec 40)."""

import asyncio
import contextlib
from urllib.parse import urljoin

from aiohttp import web

from bodega.core.json_api import find_version, latest_version, release_versions, render_json_api
from bodega.core.model import DistributionFile
from bodega.core.names import normalize_project_name
from bodega.errors import BodegaError, NotFound
from bodega.services import Services
from bodega.web.routing import Match

_METADATA_SUFFIX = ".metadata"
_FILES_TRIED = 3


async def project_json(request: web.Request, services: Services, match: Match) -> web.Response:
    project = normalize_project_name(match.project)
    if project != match.project:
        release = f"{match.version}/" if match.version else ""
        raise web.HTTPMovedPermanently(f"{match.prefix}{project}/{release}json")
    cached = await services.pages.get(project)
    releases = release_versions(cached.page)
    if match.version:
        version = find_version(releases, match.version)
        if version is None:
            raise NotFound(f"{project} has no release {match.version}")
    else:
        version = latest_version(releases)
    metadata = None
    if version is not None:
        metadata = await _release_metadata(services, project, releases[version])
        if metadata is None and match.version:
            # PDM takes info.requires_dist as the release's dependencies: without METADATA,
            # a 404 sends it back to the simple API instead of a wrong answer.
            raise NotFound(f"no core metadata for {project} {version}")
    # Absolute, like warehouse's: pip-tools matches these URLs against the simple page's
    # links resolved by the same client, so both come from the URL that client asked for.
    # Nothing rendered here is stored, so a forged Host reaches only its sender (threat 11).
    files_base = urljoin(str(request.url), "../" * match.depth + "files/")
    body = render_json_api(
        cached.page, version, metadata, files_base, with_releases=not match.version
    )
    headers = {
        "Content-Type": "application/json",
        "Cache-Control": f"max-age={services.pages.max_age(cached)}, public",
    }
    return web.Response(body=body, headers=headers)


async def _release_metadata(
    services: Services, project: str, files: list[DistributionFile]
) -> bytes | None:
    """The METADATA of one of the release's files: upstream's (verified by its hash) or one
    bodega extracts from a wheel; None when there is none to be had. A few files at most are
    tried, so one request never starts work for every wheel of a release."""
    with_hash = [f for f in files if f.metadata_sha256]
    wheels = [f for f in files if f.filename.endswith(".whl") and not f.core_metadata]
    for file in (with_hash + wheels)[:_FILES_TRIED]:
        key = file.metadata_sha256
        if key is None:
            key = await services.core_metadata.obtain(project, file)
        elif await services.files.local_path(key) is None:
            with contextlib.suppress(BodegaError):  # offline, or upstream has none after all
                download = services.files.download(key, file.url + _METADATA_SUFFIX, None)
                await download.wait_until_done()
        path = await services.files.local_path(key)
        if path is not None:
            return await asyncio.to_thread(path.read_bytes)
    return None
