"""A project's releases as its page lists them, and which one is the latest: the one rule
search, the web UI and the JSON API share."""

from collections.abc import Collection, Mapping

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from bodega.core.model import DistributionFile, ProjectPage


def version_of(filename: str) -> str | None:
    """The version a wheel or sdist filename carries (normalized), or None."""
    try:
        if filename.endswith(".whl"):
            return str(parse_wheel_filename(filename)[1])
        return str(parse_sdist_filename(filename)[1])
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None


def releases_of(page: ProjectPage) -> dict[str, list[DistributionFile]]:
    """The page's files by the version their filename carries, plus the versions it lists
    with no file (PEP 700)."""
    releases: dict[str, list[DistributionFile]] = {}
    for file in page.files:
        version = version_of(file.filename)
        if version is not None:
            releases.setdefault(version, []).append(file)
    for version in page.versions:
        releases.setdefault(version, [])
    return releases


def latest_version(releases: Mapping[str, Collection[DistributionFile]]) -> str | None:
    """What the public index calls the latest release: the highest final release with a file
    that is not yanked, else the highest release with such a file, else the highest of all.
    Versions that are not PEP 440 never win."""
    parsed: dict[Version, str] = {}
    live: list[Version] = []
    for text, files in releases.items():
        try:
            version = Version(text)
        except InvalidVersion:
            continue
        parsed[version] = text
        if any(not f.is_yanked for f in files):
            live.append(version)
    finals = [v for v in live if not v.is_prerelease]
    chosen = max(finals or live or parsed, default=None)
    return None if chosen is None else parsed[chosen]


def file_with_metadata(page: ProjectPage) -> DistributionFile | None:
    """A file of the latest release whose core metadata upstream serves (PEP 658), if any:
    where search reads the project's summary."""
    releases = releases_of(page)
    latest = latest_version(releases)
    if latest is None:
        return None
    offered = [f for f in releases[latest] if f.metadata_sha256 and not f.is_yanked]
    return offered[0] if offered else None
