"""What the web UI shows: a project as the cache holds it, and a report on the cache."""

import asyncio
import shutil
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from bodega.core.description import render_description
from bodega.core.filenames import version_of
from bodega.core.model import DistributionFile
from bodega.core.releases import latest_version, release_order
from bodega.core.search import MAX_METADATA_BYTES, read_core_metadata
from bodega.proxy.pages import CachedPage, ProjectPages
from bodega.proxy.search import ProjectSearch, SearchStatus
from bodega.proxy.telemetry import Fetch, Summary, Telemetry
from bodega.storage.blobs import BlobStore
from bodega.storage.metadata import BlobRecords, SearchIndex
from bodega.upstream import Upstream


class CatalogRecords(BlobRecords, SearchIndex, Protocol):
    """What the catalog reports from: the blob records, and search's details."""


VERSIONS_PER_PAGE = 20  # a project with 10k versions is paginated (threat 45)
_DESCRIPTION_CANDIDATES = 200  # metadata files looked at for a description, newest first
_RENDERED = 64  # descriptions kept rendered, by metadata blob: rendering one takes up to 1 s
_UNKNOWN = "(other files)"


@dataclass(frozen=True, slots=True)
class FileRow:
    file: DistributionFile
    is_cached: bool


@dataclass(frozen=True, slots=True)
class Release:
    version: str
    files: tuple[FileRow, ...]


@dataclass(frozen=True, slots=True)
class ProjectView:
    name: str
    latest: str | None
    summary: str
    description: str  # sanitized HTML, rendered as the public index renders it
    releases: tuple[Release, ...]  # this page of them, newest first
    version_count: int
    file_count: int
    cached_count: int  # of all the project's files, not only this page's
    page_number: int
    page_count: int
    is_stale: bool
    status: str | None  # PEP 792


@dataclass(frozen=True, slots=True)
class CacheReport:
    files: int
    bytes: int
    disk_free: int
    disk_total: int
    totals: Summary  # every index's numbers together
    indexes: dict[str, Summary]  # by index name
    upstream: str
    offline: bool
    started_at: float
    uptime: float
    search: SearchStatus
    recent_fetches: tuple[Fetch, ...]

    def to_json(self) -> dict[str, Any]:
        """The report with the totals at the top level (hits, hit_ratio, upstream_health...)
        and each index's numbers under "indexes"."""
        report = asdict(self)
        return {**report.pop("totals"), **report}


class Catalog:
    def __init__(
        self,
        pages: ProjectPages,
        store: CatalogRecords,
        blobs: BlobStore,
        search: ProjectSearch,
        telemetry: Telemetry,
        *,
        data_dir: Path,
        upstream: Upstream,
    ) -> None:
        self._pages = pages
        self._store = store
        self._blobs = blobs
        self._search = search
        self._telemetry = telemetry
        self._data_dir = data_dir
        self._upstream = upstream
        self._rendered: OrderedDict[str, tuple[str, str]] = OrderedDict()

    async def project(
        self, project: str, page_number: int, cached: CachedPage | None = None
    ) -> ProjectView:
        """A validated, normalized project as the cache holds it, or as `cached` (its page
        as an index shows it: policy applied); NotFound when unknown."""
        if cached is None:
            cached = await self._pages.get(project)
        by_version = await asyncio.to_thread(_group_by_version, cached.page.files)
        versions = list(by_version)
        page_count = max(1, -(-len(versions) // VERSIONS_PER_PAGE))
        page_number = min(max(1, page_number), page_count)
        shown = versions[(page_number - 1) * VERSIONS_PER_PAGE :][:VERSIONS_PER_PAGE]
        # Every file's hash, not only this page's: the count covers the whole project.
        all_keys = {f.sha256 for f in cached.page.files if f.sha256}
        cached_keys = await self._store.cached_keys(all_keys)
        releases = tuple(
            Release(v, tuple(FileRow(f, f.sha256 in cached_keys) for f in by_version[v]))
            for v in shown
        )
        summary, description = await self._description(cached, versions, by_version)
        details = (await self._store.get_search_details([project])).get(project)
        if not summary and details is not None:
            summary = details.summary
        return ProjectView(
            name=details.name if details else project,
            latest=latest_version({v: fs for v, fs in by_version.items() if v != _UNKNOWN}),
            summary=summary,
            description=description,
            releases=releases,
            version_count=len(versions),
            file_count=len(cached.page.files),
            cached_count=sum(f.sha256 in cached_keys for f in cached.page.files if f.sha256),
            page_number=page_number,
            page_count=page_count,
            is_stale=cached.is_stale,
            status=None if cached.page.status is None else cached.page.status.status,
        )

    async def report(self) -> CacheReport:
        files, size = await self._store.blob_usage()
        disk = await asyncio.to_thread(shutil.disk_usage, self._data_dir)
        telemetry = self._telemetry
        return CacheReport(
            files=files,
            bytes=size,
            disk_free=disk.free,
            disk_total=disk.total,
            totals=self._with_offline(telemetry.totals()),
            indexes={view.name: self._with_offline(view.summary()) for view in telemetry.indexes},
            upstream=self._upstream.description,
            offline=self._upstream.is_offline,
            started_at=telemetry.started_at,
            uptime=time.time() - telemetry.started_at,
            search=await self._search.status(),
            recent_fetches=tuple(telemetry.recent),
        )

    def _with_offline(self, summary: Summary) -> Summary:
        # An --offline bodega never asks upstream: "unknown" would read as not yet.
        return replace(summary, upstream_health="offline") if self._upstream.is_offline else summary

    async def _description(
        self,
        cached: CachedPage,
        versions: list[str],
        by_version: dict[str, list[DistributionFile]],
    ) -> tuple[str, str]:
        """Summary and rendered description from the newest core metadata the cache holds."""
        candidates = [
            f.metadata_sha256 for v in versions for f in by_version[v] if f.metadata_sha256
        ][:_DESCRIPTION_CANDIDATES]
        cached_keys = await self._store.cached_keys(candidates)
        key = next((k for k in candidates if k in cached_keys), None)
        if key is None:
            return "", ""
        if key in self._rendered:
            self._rendered.move_to_end(key)
            return self._rendered[key]
        data = b"".join([c async for c in self._blobs.read(key, 0, MAX_METADATA_BYTES)])
        rendered = await asyncio.to_thread(_summary_and_html, data)
        self._rendered[key] = rendered
        while len(self._rendered) > _RENDERED:
            self._rendered.popitem(last=False)
        return rendered


def _summary_and_html(metadata_bytes: bytes) -> tuple[str, str]:
    metadata = read_core_metadata(metadata_bytes)
    if not metadata.description.strip():
        return metadata.summary, ""
    html = render_description(metadata.description, metadata.description_content_type)
    return metadata.summary, html


def _group_by_version(files: tuple[DistributionFile, ...]) -> dict[str, list[DistributionFile]]:
    """Files by version, newest version first; files whose name has no version go last."""
    groups: dict[str, list[DistributionFile]] = {}
    for file in files:
        groups.setdefault(version_of(file.filename) or _UNKNOWN, []).append(file)
    return dict(sorted(groups.items(), key=lambda item: release_order(item[0]), reverse=True))
