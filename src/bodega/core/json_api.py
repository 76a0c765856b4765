"""The PyPI JSON API (`/pypi/<project>/json`, `/pypi/<project>/<version>/json`), built from a
project page and one release's core metadata.

The API is not a standard; this follows what warehouse sends and what its callers read:
pip-tools reads `releases[v][].url/packagetype/digests` (spec finding 7), PDM's
`pypi.json_api` reads `info.requires_dist/requires_python/summary`. Only what bodega knows
is said: without the release's METADATA the `info` carries no metadata fields at all, never
an empty `requires_dist` that would read as "no dependencies".
"""

import json
from collections.abc import Iterable
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from typing import Any
from urllib.parse import quote

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from bodega.core.model import DistributionFile, ProjectPage
from bodega.core.rendering import listed_files

# Core metadata field -> JSON key, for single-use fields (core metadata spec 2.4).
_SINGLE = {
    "Summary": "summary",
    "Home-page": "home_page",
    "Download-URL": "download_url",
    "Author": "author",
    "Author-email": "author_email",
    "Maintainer": "maintainer",
    "Maintainer-email": "maintainer_email",
    "License": "license",
    "License-Expression": "license_expression",
    "Keywords": "keywords",
    "Requires-Python": "requires_python",
    "Description-Content-Type": "description_content_type",
}
_MULTIPLE = {
    "Classifier": "classifiers",
    "Requires-Dist": "requires_dist",
    "Provides-Extra": "provides_extra",
    "Platform": "platform",
    "Dynamic": "dynamic",
}


def release_versions(page: ProjectPage) -> dict[Version, list[DistributionFile]]:
    """The page's listed files grouped by the version their filename carries."""
    releases: dict[Version, list[DistributionFile]] = {}
    for file in listed_files(page):
        version = _version(file.filename)
        if version is not None:
            releases.setdefault(version, []).append(file)
    return releases


def latest_version(releases: dict[Version, list[DistributionFile]]) -> Version | None:
    """What warehouse calls the latest release: the highest final release with a file that is
    not yanked, else the highest release with such a file, else the highest of all."""
    live = [v for v, files in releases.items() if any(not f.is_yanked for f in files)]
    final = [v for v in live if not v.is_prerelease]
    return max(final or live or releases, default=None)


def find_version(releases: dict[Version, list[DistributionFile]], raw: str) -> Version | None:
    """The listed version equal to `raw` (so 1.0 finds 1.0.0), or None."""
    try:
        wanted = Version(raw)
    except InvalidVersion:
        return None
    return wanted if wanted in releases else None


def render_json_api(
    page: ProjectPage,
    version: Version | None,
    metadata: bytes | None,
    files_base: str,
    *,
    with_releases: bool,
) -> bytes:
    """The JSON document; `files_base` is the URL of bodega's files tree."""
    releases = release_versions(page)
    files = releases.get(version, []) if version is not None else []
    info: dict[str, Any] = {
        "name": page.name,
        "version": str(version) if version is not None else None,
        "yanked": bool(files) and all(f.is_yanked for f in files),
        "yanked_reason": _yanked_reason(files),
        "requires_python": next((f.requires_python for f in files if f.requires_python), None),
    }
    if metadata is not None:
        info.update(_info_from_metadata(metadata))
    document: dict[str, Any] = {
        "info": info,
        "last_serial": page.last_serial if page.last_serial is not None else -1,
        "urls": [_file_entry(page.name, f, files_base) for f in files],
        "vulnerabilities": [],
    }
    if with_releases:
        document["releases"] = {
            str(v): [_file_entry(page.name, f, files_base) for f in releases[v]]
            for v in sorted(releases)
        }
    return json.dumps(document, separators=(",", ":")).encode()


def _file_entry(project: str, file: DistributionFile, files_base: str) -> dict[str, Any]:
    # Warehouse names blake2b_256 the same in simple-API hashes and JSON digests.
    digests = {k: file.hashes[k] for k in ("md5", "sha256", "blake2b_256") if k in file.hashes}
    metadata_sha256 = file.metadata_sha256
    return {
        "filename": file.filename,
        "url": f"{files_base}{quote(project)}/{quote(file.filename)}",
        "packagetype": _package_type(file.filename),
        "python_version": _python_version(file.filename),
        "digests": digests,
        "size": file.size,
        "upload_time": file.upload_time.removesuffix("Z").split(".")[0]
        if file.upload_time
        else None,
        "upload_time_iso_8601": file.upload_time,
        "requires_python": file.requires_python,
        "yanked": file.is_yanked,
        "yanked_reason": file.yanked if isinstance(file.yanked, str) else None,
        # PEP 714 spelling; never the old key (spec item 21).
        "core-metadata": {"sha256": metadata_sha256}
        if metadata_sha256
        else bool(file.core_metadata),
    }


def _info_from_metadata(raw: bytes) -> dict[str, Any]:
    message: Message = BytesParser(policy=compat32).parsebytes(raw)
    info: dict[str, Any] = {key: _header(message, field) for field, key in _SINGLE.items()}
    for field, key in _MULTIPLE.items():
        values = [_text(v) for v in message.get_all(field) or ()]
        info[key] = values or None
    urls = [_text(v).split(",", 1) for v in message.get_all("Project-URL") or ()]
    info["project_urls"] = {label.strip(): url.strip() for label, url in _pairs(urls)} or None
    # Metadata 2.1+ may carry the description as the message body (core metadata spec).
    body = message.get_payload()
    description = _header(message, "Description")
    info["description"] = body if isinstance(body, str) and body.strip() else description
    return info


def _pairs(parts: Iterable[list[str]]) -> Iterable[tuple[str, str]]:
    return ((p[0], p[1]) for p in parts if len(p) == 2)


def _header(message: Message, field: str) -> str | None:
    value = message.get(field)
    return _text(value) if value is not None else None


def _text(value: object) -> str:
    return str(value).strip()


def _yanked_reason(files: list[DistributionFile]) -> str | None:
    return next((f.yanked for f in files if isinstance(f.yanked, str)), None)


def _version(filename: str) -> Version | None:
    try:
        if filename.endswith(".whl"):
            return parse_wheel_filename(filename)[1]
        return parse_sdist_filename(filename)[1]
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None


def _package_type(filename: str) -> str:
    if filename.endswith(".whl"):
        return "bdist_wheel"
    if filename.endswith(".egg"):
        return "bdist_egg"
    return "sdist"


def _python_version(filename: str) -> str:
    if filename.endswith(".whl"):
        return filename.removesuffix(".whl").split("-")[-3]
    return "source"
