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
    XMLRPC = "xmlrpc"
    UI_SEARCH = "ui-search"
    UI_PROJECT = "ui-project"
    UI_CACHE = "ui-cache"
    STATUS = "status"
    STATIC = "static"
    JSON_API = "json-api"
    HEALTH = "health"
    READY = "ready"
    METRICS = "metrics"
    NOT_FOUND = "not-found"


# The devpi layout, so a pip.conf written for devpi's root/pypi mirror works unchanged.
_PREFIXES = (("simple",), ("root", "pypi", "+simple"))
_FILE_PREFIXES = (("files",), ("root", "pypi", "files"))
# Where pip search posts XML-RPC: its default (/pypi), the usual alias, and the devpi index
# a seed pip.conf names ([search] index = .../root/pypi/).
XMLRPC_PATHS = ("/pypi", "/pypi/", "/RPC2", "/root/pypi", "/root/pypi/")
_XMLRPC = (("pypi",), ("RPC2",), ("root", "pypi"))
# The web UI lives under "+" segments, which are no project names and no devpi index paths.
_UI = {"+search": Route.UI_SEARCH, "+cache": Route.UI_CACHE, "+status.json": Route.STATUS}
# The PyPI JSON API (spec 40) at /pypi/<project>[/<version>]/json, and under the devpi tree.
_JSON_API_PREFIXES = (("pypi",), ("root", "pypi", "pypi"))
# Operations endpoints under /-/, a segment no project or devpi index can be named.
_OPERATIONS = {"health": Route.HEALTH, "ready": Route.READY, "metrics": Route.METRICS}


@dataclass(frozen=True, slots=True)
class Match:
    route: Route
    prefix: str = ""  # e.g. "/simple/", for building redirects inside the same tree
    project: str = ""
    filename: str = ""
    has_trailing_slash: bool = True
    version: str = ""  # the JSON API's release, when one is asked for
    depth: int = 0  # the JSON API: directories from the request URL up to bodega's root


def match(path: str) -> Match:
    segments = [s for s in path.split("/") if s]
    trailing = path.endswith("/")
    if not segments:
        return Match(Route.HOME)
    if (found := _match_ui(segments)) is not None:
        return found
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
    return _match_json_api(segments, trailing)


def _match_json_api(segments: list[str], trailing: bool) -> Match:
    if not segments or segments[-1] != "json":
        return Match(Route.NOT_FOUND)
    for prefix in _JSON_API_PREFIXES:
        rest = _strip(segments, prefix)
        if rest is not None and len(rest) in (2, 3):
            base = "/" + "/".join(prefix) + "/"
            version = rest[1] if len(rest) == 3 else ""
            depth = len(prefix) + len(rest) - 1 + trailing
            return Match(Route.JSON_API, base, project=rest[0], version=version, depth=depth)
    # pip-tools >= 7.6.1 asks `<index URL minus "simple/">/<project>/json` (spec finding 7).
    if len(segments) == 2:
        return Match(Route.JSON_API, "/", project=segments[0], depth=1 + trailing)
    return Match(Route.NOT_FOUND)


def _match_ui(segments: list[str]) -> Match | None:
    """The routes outside the simple API: operations under /-/, XML-RPC, the web UI."""
    if len(segments) == 2 and segments[0] == "-" and segments[1] in _OPERATIONS:
        return Match(_OPERATIONS[segments[1]])
    if tuple(segments) in _XMLRPC:
        return Match(Route.XMLRPC)
    if len(segments) == 1 and segments[0] in _UI:
        return Match(_UI[segments[0]])
    if len(segments) == 2 and segments[0] == "+project":
        return Match(Route.UI_PROJECT, "/+project/", project=segments[1])
    if len(segments) == 2 and segments[0] == "+static":
        return Match(Route.STATIC, filename=segments[1])
    return None


def _strip(segments: list[str], prefix: tuple[str, ...]) -> list[str] | None:
    if tuple(segments[: len(prefix)]) == prefix:
        return segments[len(prefix) :]
    return None
