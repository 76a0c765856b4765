"""The PyPI JSON API (`/pypi/<project>/json`, `/pypi/<project>/<version>/json`), built from a
project page and one release's core metadata.

The API is not a standard: its shape is what warehouse's `legacy/api/json.py` renders, field
for field (docs/conformance.md lists each field with its source). Callers read parts of it:
pip-tools `releases[v][].url/packagetype/digests` (spec finding 7), PDM's `pypi.json_api`
`info.requires_dist/requires_python/summary`. `info` is what the release's METADATA (or an
sdist's PKG-INFO) says, shaped as warehouse stores an upload's metadata; a release whose
metadata bodega cannot get has the shape of an upload that declared nothing.
"""

import json
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from packaging.licenses import canonicalize_license_expression
from packaging.metadata import RawMetadata
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name, canonicalize_version
from packaging.version import Version
from trove_classifiers import sorted_classifiers

from bodega.core.filenames import kind_of
from bodega.core.model import DistributionFile, ProjectPage
from bodega.core.releases import release_order, releases_of
from bodega.core.rendering import listed_files

Releases = dict[str, list[DistributionFile]]
_CLASSIFIER_ORDER = {name: position for position, name in enumerate(sorted_classifiers)}


@dataclass(frozen=True, slots=True)
class ApiUrls:
    """The absolute URLs a document points to: bodega's files tree and its project pages."""

    files_base: str
    projects_base: str

    def file(self, project: str, filename: str) -> str:
        return f"{self.files_base}{quote(project)}/{quote(filename)}"

    def project(self, name: str) -> str:
        return f"{self.projects_base}{quote(name)}"


def group_releases(page: ProjectPage) -> Releases:
    """The page's releases (core/releases), or none for a quarantined project (PEP 792),
    whose index offers no files."""
    if len(listed_files(page)) < len(page.files):
        return {}
    return releases_of(page)


def find_version(releases: Releases, raw: str) -> str | None:
    """The release `raw` names: spelled so, or the same version (1.0 finds 1.0.0), as
    warehouse's release_factory matches canonical versions; None if there is none."""
    if raw in releases:
        return raw
    wanted = canonicalize_version(raw)
    return next((v for v in releases if canonicalize_version(v) == wanted), None)


def render_json_api(
    page: ProjectPage,
    releases: Releases,
    version: str | None,
    metadata: RawMetadata | None,
    urls: ApiUrls,
    *,
    with_releases: bool,
    digests: Mapping[str, Mapping[str, str]] | None = None,
) -> bytes:
    """The JSON document for `version` of the page (None: the project has no release), whose
    files `group_releases` grouped into `releases`.
    `digests` adds, by a file's sha256, hashes bodega computed itself (md5, blake2b_256)."""
    known = digests or {}

    def entry(file: DistributionFile) -> dict[str, Any]:
        computed = known.get(file.sha256 or "", {})
        return _file_entry(page.name, file, urls, {**computed, **file.hashes})

    files = releases.get(version, []) if version is not None else []
    document: dict[str, Any] = {
        "info": _info(page, version, files, metadata or {}, urls),
        "last_serial": page.last_serial if page.last_serial is not None else -1,
        "urls": [entry(f) for f in files],
        "vulnerabilities": [],
    }
    if with_releases:
        document["releases"] = {v: [entry(f) for f in releases[v]] for v in releases}
    # As warehouse's "json-with-newline" renderer: sorted keys, compact, UTF-8, a newline.
    # A lone surrogate (JSON lets upstream escape one) cannot be UTF-8: it becomes "?".
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return (text + "\n").encode("utf-8", "replace")


def _info(
    page: ProjectPage,
    version: str | None,
    files: list[DistributionFile],
    metadata: RawMetadata,
    urls: ApiUrls,
) -> dict[str, Any]:
    name = metadata.get("name") or page.name
    project_url = urls.project(page.name)
    keywords = metadata.get("keywords")
    platforms = metadata.get("platforms")
    dynamic = metadata.get("dynamic")
    requires_dist = metadata.get("requires_dist") or []
    provides_extra = metadata.get("provides_extra") or []
    page_requires_python = next((f.requires_python for f in files if f.requires_python), None)
    return {
        "name": name,
        "version": version,
        "summary": metadata.get("summary"),
        "description": metadata.get("description") or "",
        "description_content_type": metadata.get("description_content_type"),
        # Warehouse stores ", ".join of packaging's split, the first Platform, and each
        # Dynamic field title-cased (forklift/legacy.py).
        "keywords": ", ".join(keywords) if keywords else None,
        "platform": platforms[0] if platforms else None,
        "dynamic": [field.title() for field in dynamic] if dynamic else None,
        "license": metadata.get("license"),
        "license_expression": _normalized(metadata.get("license_expression"), _license),
        "license_files": _license_files(metadata),
        "classifiers": _ordered_classifiers(metadata.get("classifiers") or []),
        "author": metadata.get("author"),
        "author_email": metadata.get("author_email"),
        "maintainer": metadata.get("maintainer"),
        "maintainer_email": metadata.get("maintainer_email"),
        # The page's data-requires-python is the very string upstream stored for the release.
        "requires_python": page_requires_python
        or _normalized(metadata.get("requires_python"), _specifiers),
        "requires_dist": [_normalized(r, _requirement) for r in requires_dist] or None,
        "provides_extra": [_normalized(e, canonicalize_name) for e in provides_extra] or None,
        "home_page": metadata.get("home_page"),
        "download_url": metadata.get("download_url"),
        "project_urls": _project_urls(metadata) or None,
        "package_url": project_url,
        "project_url": project_url,
        # bodega's project page lists every release; the fragment names this one.
        "release_url": f"{project_url}#{quote(version)}" if version is not None else None,
        "docs_url": None,
        "bugtrack_url": None,
        "downloads": {"last_day": -1, "last_month": -1, "last_week": -1},
        "yanked": bool(files) and all(f.is_yanked for f in files),
        "yanked_reason": next((f.yanked for f in files if isinstance(f.yanked, str)), None),
    }


def _normalized(value: str | None, normalize: Callable[[str], str]) -> str | None:
    """Warehouse stores what packaging's Metadata makes of a field (`str(Requirement)`,
    `str(SpecifierSet)`, canonical extras and license expressions); a value packaging
    refuses is kept as written, since bodega describes files it did not validate."""
    if value is None:
        return value
    try:
        return normalize(value)
    except ValueError:  # InvalidRequirement, InvalidSpecifier, InvalidLicenseExpression
        return value


def _requirement(text: str) -> str:
    return str(Requirement(text))


def _specifiers(text: str) -> str:
    return str(SpecifierSet(text))


def _license(text: str) -> str:
    return str(canonicalize_license_expression(text))


def _license_files(metadata: RawMetadata) -> list[str] | None:
    # License-File is metadata 2.4's: the index takes none from older files (setuptools
    # wrote it into 2.1 PKG-INFOs for years).
    version = metadata.get("metadata_version", "1.0")
    is_recent = release_order(version) >= (1, Version("2.4"))
    return metadata.get("license_files") if is_recent else None


def _ordered_classifiers(classifiers: list[str]) -> list[str]:
    """Each once, in trove-classifiers' order, as warehouse keeps them (Classifier.ordering);
    one it does not know (an upload it would refuse) after those it does."""
    return sorted(
        dict.fromkeys(classifiers), key=lambda c: _CLASSIFIER_ORDER.get(c, len(_CLASSIFIER_ORDER))
    )


def _project_urls(metadata: RawMetadata) -> dict[str, str]:
    """Warehouse's Release.urls: Homepage and Download from their own fields first, then
    each Project-URL, but not one repeating those two (PEP 753 label normalization)."""
    urls: dict[str, str] = {}
    if home_page := metadata.get("home_page"):
        urls["Homepage"] = home_page
    if download_url := metadata.get("download_url"):
        urls["Download"] = download_url
    for label, url in (metadata.get("project_urls") or {}).items():
        normalized = _normalize_label(label)
        if normalized == "homepage" and url == urls.get("Homepage"):
            continue
        if normalized == "downloadurl" and url == urls.get("Download"):
            continue
        urls[label] = url
    return urls


def _normalize_label(label: str) -> str:
    # The well-known project URLs specification: drop punctuation and whitespace, lower-case.
    removed = str.maketrans("", "", string.punctuation + string.whitespace)
    return label.translate(removed).lower()


def _file_entry(
    project: str, file: DistributionFile, urls: ApiUrls, hashes: Mapping[str, str]
) -> dict[str, Any]:
    # Warehouse names blake2b_256 the same in simple-API hashes and JSON digests; only the
    # hashes bodega knows (upstream's, or its own of a verified file) are given.
    digests = {k: hashes[k] for k in ("md5", "sha256", "blake2b_256") if k in hashes}
    kind = kind_of(file.filename)
    metadata_sha256 = file.metadata_sha256
    return {
        "filename": file.filename,
        "url": urls.file(project, file.filename),
        "packagetype": kind.package_type,
        "python_version": kind.python_version,
        "digests": digests,
        "md5_digest": hashes.get("md5"),
        "has_sig": False,
        "comment_text": None,
        "downloads": -1,
        "size": file.size,
        "upload_time": _seconds(file.upload_time),
        "upload_time_iso_8601": file.upload_time,
        "requires_python": file.requires_python,
        "yanked": file.is_yanked,
        "yanked_reason": file.yanked if isinstance(file.yanked, str) else None,
        # PEP 714 spelling; never the old key (spec item 21).
        "core-metadata": {"sha256": metadata_sha256}
        if metadata_sha256
        else bool(file.core_metadata),
    }


def _seconds(upload_time: str | None) -> str | None:
    """Warehouse's `upload_time`: the ISO time to the second, with no zone."""
    return upload_time.removesuffix("Z").split(".")[0] if upload_time else None
