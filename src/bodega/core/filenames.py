"""What a distribution filename says about its project, version, kind and Python.

Modern names (wheels, PEP 625 sdists) are parsed with packaging. The public index also
lists twenty years of older forms that packaging refuses: `.egg`, `.exe`, `.msi`, `.rpm`,
`.tar.bz2`, `bdist_dumb` archives such as `foo-1.0.linux-x86_64.tar.gz`, and versions that
are no PEP 440 versions at all (pytz `2004d`). For those the version is what follows the
project's name, as the filename spells it; with the page's list of versions (PEP 700) at
hand the file goes to the listed version it starts with.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    canonicalize_version,
    parse_sdist_filename,
    parse_wheel_filename,
)

# Longest first: ".tar.gz" before ".gz". Values are warehouse's `packagetype`s.
_KINDS = (
    (".tar.bz2", "sdist"),
    (".tar.gz", "sdist"),
    (".tar.xz", "sdist"),
    (".tar.Z", "sdist"),
    (".tgz", "sdist"),
    (".tar", "sdist"),
    (".zip", "sdist"),
    (".whl", "bdist_wheel"),
    (".egg", "bdist_egg"),
    (".exe", "bdist_wininst"),
    (".msi", "bdist_msi"),
    (".rpm", "bdist_rpm"),
    (".dmg", "bdist_dmg"),
)
# What may follow the version in a legacy binary's name: "-py2.7", "-1.noarch", ".win32",
# ".linux-x86_64"; never ".1" (that would be another, longer version).
_AFTER_VERSION = re.compile(r"(?:-|\.[A-Za-z]).*")
_PYTHON_IN_NAME = re.compile(r"-py(\d+(?:\.\d+)?)(?:-|$)")


@dataclass(frozen=True, slots=True)
class FileKind:
    """A distribution file as the public index's JSON API describes it."""

    package_type: str  # warehouse's packagetype: sdist, bdist_wheel, bdist_egg, ...
    python_version: str  # "source" for sdists, the wheel's Python tag, "2.7", or "any"


def version_of(filename: str) -> str | None:
    """The PEP 440 version a wheel or sdist filename carries (normalized), or None for
    other or odd forms."""
    try:
        if filename.endswith(".whl"):
            return str(parse_wheel_filename(filename)[1])
        return str(parse_sdist_filename(filename)[1])
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None


def spelled_version(filename: str, project: str) -> str | None:
    """The version as the filename spells it (`2004d`, `0.6c11`, `1.0.win32` for a legacy
    binary); None for a name with no version part at all."""
    stem = _stem(filename)
    rest = _after_project(stem, project)
    if rest is None:  # named for another spelling of the project: after the first dash
        rest = stem.split("-", 1)[1] if "-" in stem else ""
    if filename.endswith((".whl", ".egg")):
        rest = rest.split("-", 1)[0]
    return rest or None


class ListedVersions:
    """A page's versions (PEP 700) as upstream spells them, indexed for release_of: a page
    lists thousands of files and hundreds of versions."""

    def __init__(self, versions: Iterable[str]) -> None:
        self.spelled = dict.fromkeys(versions)
        self._canonical: dict[str, str] = {}
        for version in self.spelled:
            self._canonical.setdefault(_canonical(version), version)

    def same_as(self, version: str) -> str | None:
        """The listed spelling of the same version (1.0-rc1 is listed as 1.0rc1)."""
        return self._canonical.get(_canonical(version))


def release_of(filename: str, project: str, listed: ListedVersions) -> str | None:
    """The release a file belongs to, spelled as upstream lists it when it is listed, else
    as the filename spells it; None for a name with no version part."""
    spelled = spelled_version(filename, project)
    if spelled is None or spelled in listed.spelled:
        return spelled
    if (same := listed.same_as(spelled)) is not None:
        return same
    # A legacy binary: the longest listed version its name starts with.
    for end in range(len(spelled) - 1, 0, -1):
        if _AFTER_VERSION.fullmatch(spelled[end:]) and spelled[:end] in listed.spelled:
            return spelled[:end]
    return _AFTER_VERSION.sub("", spelled) if _is_binary(filename) else spelled


def kind_of(filename: str) -> FileKind:
    """The package type and Python version a filename states, as warehouse records them
    from the upload (twine sends the wheel's Python tag, an egg's or installer's Python)."""
    package_type = next((kind for suffix, kind in _KINDS if filename.endswith(suffix)), "sdist")
    if package_type == "bdist_wheel":
        parts = filename.removesuffix(".whl").split("-")
        return FileKind(package_type, parts[-3] if len(parts) >= 5 else "any")
    if package_type == "sdist":
        return FileKind(package_type, "source")
    found = _PYTHON_IN_NAME.search(_stem(filename))
    return FileKind(package_type, found.group(1) if found else "any")


def _stem(filename: str) -> str:
    suffix = next((s for s, _ in _KINDS if filename.endswith(s)), "")
    return filename.removesuffix(suffix) if suffix else filename


def _after_project(stem: str, project: str) -> str | None:
    """What follows `<name>-` in the stem, where the name is the project's in any spelling
    (`Foo_Bar`, `foo.bar`); names hold dashes in legacy forms, so every dash is tried."""
    wanted = canonicalize_name(project)
    for position, character in enumerate(stem):
        if character == "-" and canonicalize_name(stem[:position]) == wanted:
            return stem[position + 1 :]
    return None


def _canonical(version: str) -> str:
    return canonicalize_version(version, strip_trailing_zero=False)


def _is_binary(filename: str) -> bool:
    return kind_of(filename).package_type not in ("sdist", "bdist_wheel")
