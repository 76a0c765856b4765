"""Routing: the default index's short paths, each index's tree, and what is no index."""

import dataclasses

import pytest

from bodega.web.routing import Match, Route, match, match_request


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/simple/", Match(Route.ROOT_LIST, "/simple/")),
        ("/simple//six/", Match(Route.PROJECT, "/simple/", project="six")),
        ("/files/six/six-1.0.tar.gz", Match(Route.FILE, "/files/", "six", "six-1.0.tar.gz")),
        ("/pypi/six/json", Match(Route.JSON_API, "/pypi/", "six", depth=2)),
        ("/pypi/six/1.0/json/", Match(Route.JSON_API, "/pypi/", "six", version="1.0", depth=4)),
        ("/six/json", Match(Route.JSON_API, "/", "six", depth=1)),
        ("/+project/six", Match(Route.UI_PROJECT, "/+project/", "six")),
        ("/+search", Match(Route.UI_SEARCH)),
        ("/pypi", Match(Route.XMLRPC)),
        ("/-/metrics", Match(Route.METRICS)),
    ],
)
def test_the_short_paths_serve_the_default_index(path: str, expected: Match) -> None:
    assert match(path) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/team/all/+simple/", Match(Route.ROOT_LIST, "/team/all/+simple/")),
        ("/team/all/+simple/six/", Match(Route.PROJECT, "/team/all/+simple/", "six")),
        (
            "/team/all/files/six/six-1.whl",
            Match(Route.FILE, "/team/all/files/", "six", "six-1.whl"),
        ),
        ("/team/all/pypi/six/json", Match(Route.JSON_API, "/team/all/pypi/", "six", depth=4)),
        (
            "/team/all/pypi/six/1.0/json",
            Match(Route.JSON_API, "/team/all/pypi/", "six", version="1.0", depth=5),
        ),
        ("/team/all/+/six/json", Match(Route.JSON_API, "/team/all/+/", "six", depth=4)),
        ("/team/all/+project/six", Match(Route.UI_PROJECT, "/team/all/+project/", "six")),
        ("/team/all/+search", Match(Route.UI_SEARCH, "/team/all/")),
        ("/team/all/", Match(Route.XMLRPC, "/team/all/")),
    ],
)
def test_each_index_has_its_tree_under_its_name(path: str, expected: Match) -> None:
    found = match(path)
    assert found.index == "team/all"
    assert found == dataclasses.replace(expected, index="team/all")


def test_the_default_index_is_reachable_under_its_own_name_too() -> None:
    assert match("/root/pypi/+simple/six/").index == "root/pypi"
    assert match("/root/pypi/").route is Route.XMLRPC  # pip search's devpi index path


@pytest.mark.parametrize(
    "path", ["/team/all/simple/six/", "/team/+all/+simple/", "/a/b/c", "/team/all/files/six/"]
)
def test_what_is_no_route_is_not_found(path: str) -> None:
    assert match(path).route is Route.NOT_FOUND


@pytest.mark.parametrize(
    ("method", "path", "content_type", "expected"),
    [
        ("POST", "/acme/private/", "multipart/form-data; boundary=x", Route.UPLOAD),
        ("POST", "/acme/private", "Multipart/Form-Data; boundary=x", Route.UPLOAD),
        ("POST", "/acme/private/", "text/xml", Route.XMLRPC),
        ("GET", "/acme/private/", "multipart/form-data", Route.XMLRPC),
        ("POST", "/pypi", "multipart/form-data; boundary=x", Route.XMLRPC),
        ("POST", "/acme/private/+manage", "application/json", Route.MANAGE),
        ("POST", "/+manage", "application/json", Route.NOT_FOUND),
    ],
)
def test_a_multipart_post_to_an_index_is_an_upload(
    method: str, path: str, content_type: str, expected: Route
) -> None:
    found = match_request(method, path, content_type)
    assert found.route is expected
    if expected in (Route.UPLOAD, Route.MANAGE):
        assert found.index == "acme/private"
