"""Which wheels of a page bodega should extract METADATA for, most wanted first.

A resolver reads the metadata of the release it is about to pick, which is almost always the
newest one, and of the one wheel of it that fits its machine. So: the newest release only,
decided over every wheel on the page (with or without metadata), so that a refresh after
extraction finds nothing left to do instead of walking back to an older release; within
it, pure-Python wheels first (every client can use them), then the commonest platforms.
"""

from dataclasses import dataclass

from packaging.tags import Tag
from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import Version

from bodega.core.model import DistributionFile, ProjectPage

# Families of wheels, most wanted first: pure Python; CPython on manylinux x86_64 (CI
# runners, containers, most servers); CPython on the other common platforms; the rest
# (32-bit, PyPy, rarer architectures).
PURE, LINUX_X86_64, COMMON_PLATFORM, OTHER = range(4)
# Linux on ARM, musl, macOS (Apple silicon, universal, Intel) and 64-bit Windows.
_COMMON_PLATFORMS = ("_aarch64", "_arm64", "_universal2", "_x86_64", "win_amd64")


@dataclass(frozen=True, slots=True, order=True)
class Priority:
    """Lower comes first: the wheel's family, then the newest CPython within it."""

    family: int
    newest_python_first: int = 0  # minus CPython's minor version: 3.13 before 3.12


def wanted_wheels(page: ProjectPage) -> list[tuple[Priority, DistributionFile]]:
    """The wheels of the newest release that lack metadata, most wanted first. Nothing for
    a quarantined project (PEP 792)."""
    if page.status is not None and page.status.status == "quarantined":
        return []
    wheels: list[tuple[Version, frozenset[Tag], DistributionFile]] = []
    for file in page.files:
        parsed = _parse(file.filename) if not file.is_yanked else None
        if parsed is not None:
            wheels.append((*parsed, file))
    if not wheels:
        return []
    newest = _newest({version for version, _, _ in wheels})
    chosen = [
        (priority_of(tags), file)
        for version, tags, file in wheels
        if version == newest and not file.core_metadata
    ]
    return sorted(chosen, key=lambda pair: pair[0])


def _newest(versions: set[Version]) -> Version:
    # A pre-release is what a resolver picks only when asked to: the newest final one first.
    finals = [v for v in versions if not v.is_prerelease]
    return max(finals or versions)


def priority_of(tags: frozenset[Tag]) -> Priority:
    """How much clients want a wheel with these tags (the best of its tags counts)."""
    return min(_priority(tag) for tag in tags)


def _priority(tag: Tag) -> Priority:
    if tag.platform == "any":
        return Priority(PURE)
    if not tag.interpreter.startswith("cp"):
        return Priority(OTHER)
    minor = _cpython_minor(tag.interpreter)
    if tag.platform.startswith("manylinux") and tag.platform.endswith("_x86_64"):
        return Priority(LINUX_X86_64, -minor)
    if tag.platform.endswith(_COMMON_PLATFORMS):
        return Priority(COMMON_PLATFORM, -minor)
    return Priority(OTHER, -minor)


def _cpython_minor(interpreter: str) -> int:
    """cp313 -> 13; an abi3 wheel (cp39-abi3) serves newer ones too, so it is judged by the
    version it names, which puts it after the version-specific wheels of newer CPythons."""
    digits = interpreter.removeprefix("cp")
    return int(digits[1:]) if digits[:1] == "3" and digits[1:].isdigit() else 0


def _parse(filename: str) -> tuple[Version, frozenset[Tag]] | None:
    if not filename.endswith(".whl"):
        return None
    try:
        _, version, _, tags = parse_wheel_filename(filename)
    except (InvalidWheelFilename, ValueError):
        return None
    return version, tags
