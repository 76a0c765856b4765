"""Path routing done by hand, on decoded path segments.

Empty segments collapse, so Pipenv's `/simple//six/` works (conformance 4). Every name that
comes out of a path is validated before anything uses it, and no path segment ever
becomes a filesystem path (threats 1, 2).

Each index lives under `/<user>/<index>/`, devpi's layout: `+simple/` (the simple API),
`files/` (its files), `pypi/<project>/json` (the JSON API), `+search` and `+project/` (the UI)
and XML-RPC at the index itself. The short paths (`/simple/`, `/files/`, `/pypi/`, `/+search`,
`/+project/`) serve the default index. Routing does not know which indexes exist: a Match
names the index it asked for (empty: the default one) and the handler looks it up.
"""

from dataclasses import dataclass
from enum import Enum

from bodega.core.indexes import RESERVED_USERS


class Route(Enum):
    HOME = "home"
    ROOT_LIST = "root-list"
    PROJECT = "project"
    FILE = "file"
    XMLRPC = "xmlrpc"
    UI_SEARCH = "ui-search"
    UI_PROJECT = "ui-project"
    UI_CACHE = "ui-cache"
    UI_POLICY = "ui-policy"
    STATUS = "status"
    STATIC = "static"
    JSON_API = "json-api"
    HEALTH = "health"
    READY = "ready"
    METRICS = "metrics"
    UPLOAD = "upload"  # the legacy upload API (issue 13; routed by the hosted indexes' work)
    MANAGE = "manage"  # yank, delete, project status over HTTP (issue 13, idem)
    NOT_FOUND = "not-found"


# Where pip search posts XML-RPC: its default (/pypi), the usual alias, and an index's own
# path, as a pip.conf written for devpi names it ([search] index = .../root/pypi/).
# An index's path is a pattern of name characters only, so no other path (a name with a
# control character, say) meets a POST-only route and gets a 405 instead of its 404.
_INDEX_PATH = "/{user:[A-Za-z0-9][A-Za-z0-9._-]*}/{index:[A-Za-z0-9][A-Za-z0-9._-]*}"
XMLRPC_PATHS = ("/pypi", "/pypi/", "/RPC2", _INDEX_PATH, _INDEX_PATH + "/")
_XMLRPC = (("pypi",), ("RPC2",))
# The web UI lives under "+" segments, which are no project names and no index names.
_UI = {
    "+search": Route.UI_SEARCH,
    "+cache": Route.UI_CACHE,
    "+status.json": Route.STATUS,
    "+policy": Route.UI_POLICY,
}
# Operations endpoints under /-/, a segment no project or index can be named.
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
    index: str = ""  # "<user>/<index>" named by the path; "": the default index


def match(path: str) -> Match:
    segments = [s for s in path.split("/") if s]
    trailing = path.endswith("/")
    if not segments:
        return Match(Route.HOME)
    if (found := _match_outside_indexes(segments)) is not None:
        return found
    if _names_an_index(segments):
        index, tree = "/".join(segments[:2]), "/" + "/".join(segments[:2]) + "/"
        if len(segments) == 2:
            return Match(Route.XMLRPC, tree, index=index)
        return _match_tree(segments[2:], trailing, tree, index)
    return _match_tree(segments, trailing, "/", "")


def _match_tree(segments: list[str], trailing: bool, tree: str, index: str) -> Match:
    """The routes of one index, below its tree (`/` for the default index's short paths)."""
    head, rest = segments[0], segments[1:]
    base = f"{tree}{head}/"
    if head == ("+simple" if index else "simple") and len(rest) <= 1:
        route = Route.PROJECT if rest else Route.ROOT_LIST
        project = rest[0] if rest else ""
        return Match(route, base, project, has_trailing_slash=trailing, index=index)
    if head == "files" and len(rest) == 2 and not trailing:
        return Match(Route.FILE, base, project=rest[0], filename=rest[1], index=index)
    if head == "+project" and len(rest) == 1:
        return Match(Route.UI_PROJECT, base, project=rest[0], index=index)
    if index and head in _UI and not rest:
        return Match(_UI[head], tree, index=index)
    if segments[-1] == "json":
        return _match_json_api(segments, trailing, tree, index)
    return Match(Route.NOT_FOUND)


def _match_json_api(segments: list[str], trailing: bool, tree: str, index: str) -> Match:
    """The PyPI JSON API (spec 40) at <tree>pypi/<project>[/<version>]/json."""
    head, rest = segments[0], segments[1:-1]
    depth_above = tree.count("/") - 1  # directories from bodega's root down to the tree
    if head == "pypi" and len(rest) in (1, 2):
        version = rest[1] if len(rest) == 2 else ""
        depth = depth_above + len(segments) - 1 + trailing
        return Match(
            Route.JSON_API, f"{tree}pypi/", rest[0], version=version, depth=depth, index=index
        )
    # pip-tools >= 7.6.1 asks `<index URL minus "simple/">/<project>/json` (spec finding 7):
    # `/<project>/json` for /simple/, `<tree>+/<project>/json` for an index's +simple/.
    if len(segments) == 2 and not index:
        return Match(Route.JSON_API, "/", project=segments[0], depth=1 + trailing)
    if len(segments) == 3 and head == "+" and index:
        return Match(
            Route.JSON_API, f"{tree}+/", segments[1], depth=depth_above + 2 + trailing, index=index
        )
    return Match(Route.NOT_FOUND)


def _match_outside_indexes(segments: list[str]) -> Match | None:
    """The routes outside any index: operations under /-/, XML-RPC, the UI's own pages."""
    if len(segments) == 2 and segments[0] == "-" and segments[1] in _OPERATIONS:
        return Match(_OPERATIONS[segments[1]])
    if tuple(segments) in _XMLRPC:
        return Match(Route.XMLRPC)
    if len(segments) == 1 and segments[0] in _UI:
        return Match(_UI[segments[0]])
    if len(segments) == 2 and segments[0] == "+static":
        return Match(Route.STATIC, filename=segments[1])
    return None


def _names_an_index(segments: list[str]) -> bool:
    """`/<user>/<index>/...`: two segments that are no route of the default index's tree."""
    # The default tree's own first segments are no index's user (core.indexes refuses them).
    if len(segments) < 2 or segments[0].lower() in RESERVED_USERS or segments[0][0] in "+-":
        return False
    if len(segments) == 2:
        return segments[1] != "json"  # `/<project>/json` is pip-tools' JSON API
    return not segments[1].startswith(("+", "-"))
