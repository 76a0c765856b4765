"""Path routing done by hand, on decoded path segments.

Empty segments collapse, so Pipenv's `/simple//six/` works (conformance 4). Every name that
comes out of a path is validated before anything uses it, and no path segment ever
becomes a filesystem path (threats 1, 2).
"""

from dataclasses import dataclass
from enum import Enum


class Route(Enum):
    HOME = "home"
    ROOT_LIST = "root-list"
    PROJECT = "project"
    FILE = "file"
    HEALTH = "health"
    READY = "ready"
    METRICS = "metrics"
    NOT_FOUND = "not-found"


# The devpi layout, so a pip.conf written for devpi's root/pypi mirror works unchanged.
_PREFIXES = (("simple",), ("root", "pypi", "+simple"))
_FILE_PREFIXES = (("files",), ("root", "pypi", "files"))
# Operations endpoints under /-/, a segment no project or devpi index can be named.
_OPERATIONS = {"health": Route.HEALTH, "ready": Route.READY, "metrics": Route.METRICS}


@dataclass(frozen=True, slots=True)
class Match:
    route: Route
    prefix: str = ""  # e.g. "/simple/", for building redirects inside the same tree
    project: str = ""
    filename: str = ""
    has_trailing_slash: bool = True


def match(path: str) -> Match:
    segments = [s for s in path.split("/") if s]
    trailing = path.endswith("/")
    if not segments:
        return Match(Route.HOME)
    if len(segments) == 2 and segments[0] == "-" and segments[1] in _OPERATIONS:
        return Match(_OPERATIONS[segments[1]])
    for prefix in _PREFIXES:
        rest = _strip(segments, prefix)
        if rest is None:
            continue
        base = "/" + "/".join(prefix) + "/"
        if not rest:
            return Match(Route.ROOT_LIST, base, has_trailing_slash=trailing)
        if len(rest) == 1:
            return Match(Route.PROJECT, base, project=rest[0], has_trailing_slash=trailing)
    for prefix in _FILE_PREFIXES:
        rest = _strip(segments, prefix)
        if rest is not None and len(rest) == 2 and not trailing:
            base = "/" + "/".join(prefix) + "/"
            return Match(Route.FILE, base, project=rest[0], filename=rest[1])
    return Match(Route.NOT_FOUND)


def _strip(segments: list[str], prefix: tuple[str, ...]) -> list[str] | None:
    if tuple(segments[: len(prefix)]) == prefix:
        return segments[len(prefix) :]
    return None
