"""A project's releases as its page lists them, and which one is the latest: the one rule
search, the web UI and the JSON API share."""

from collections.abc import Collection, Mapping

from packaging.version import InvalidVersion, Version

from bodega.core.filenames import ListedVersions, release_of
from bodega.core.model import DistributionFile, ProjectPage


def releases_of(page: ProjectPage) -> dict[str, list[DistributionFile]]:
    """Every file of the page by its release, keyed as upstream spells the version (`2004d`,
    `0.6c11`; core/filenames.release_of), and every version it lists (PEP 700), with files
    or not."""
    releases: dict[str, list[DistributionFile]] = {version: [] for version in page.versions}
    listed = ListedVersions(page.versions)
    for file in page.files:
        version = release_of(file.filename, page.name, listed)
        if version is not None:
            releases.setdefault(version, []).append(file)
    return releases


def latest_version(releases: Mapping[str, Collection[DistributionFile]]) -> str | None:
    """What the public index calls the latest release: the highest final release with a file
    that is not yanked, else the highest release with such a file, else the highest of all."""
    live = [v for v, files in releases.items() if any(not f.is_yanked for f in files)]
    final = [v for v in live if not release_order(v)[1].is_prerelease]
    return max(final or live or releases, key=release_order, default=None)


def release_order(version: str) -> tuple[int, Version]:
    """The public index's release order (a sort key): PEP 440 versions by value, above any
    version that is none."""
    try:
        return (1, Version(version))
    except InvalidVersion:
        return (0, Version("0"))


def file_with_metadata(page: ProjectPage) -> DistributionFile | None:
    """A file of the latest release whose core metadata upstream serves (PEP 658), if any:
    where search reads the project's summary."""
    releases = releases_of(page)
    latest = latest_version(releases)
    if latest is None:
        return None
    offered = [f for f in releases[latest] if f.metadata_sha256 and not f.is_yanked]
    return offered[0] if offered else None
