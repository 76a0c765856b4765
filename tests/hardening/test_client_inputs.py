"""Threat list section A: what a client can send bodega (paths, names, headers).

Each test names its scenario. Requests that a client library would clean up are sent as raw
bytes (raw_http.send_raw), so bodega sees exactly the hostile form.
"""

import logging
import time

import httpx
import pytest

from tests.conftest import StartBodega
from tests.hardening.hostile import JSON, hostile_upstream
from tests.hardening.raw_http import RawResponse, get, send_raw
from tests.support.distributions import build_wheel
from tests.support.fake_index import FakeIndex

WHEEL = build_wheel("foo-bar-baz", "1.0", payload_size=20_000)


@pytest.fixture
def index(fake_index: FakeIndex) -> FakeIndex:
    fake_index.add("foo-bar-baz", WHEEL)
    fake_index.add("foo-bar", build_wheel("foo-bar", "1.0"))
    return fake_index


def assert_refused(response: RawResponse, path: bytes) -> None:
    assert response.status in (400, 404), (path, response.status)
    # A fixed text/plain shape: nothing from the request is echoed as markup (threat 9).
    assert response.headers["content-type"].startswith("text/plain"), path
    assert b"<" not in response.body, path


def upstream_paths(index: FakeIndex) -> list[str]:
    return [r.path for r in index.requests]


@pytest.mark.parametrize(
    "path",
    [
        b"/simple/%2e%2e/",
        b"/simple/..%2f..%2fetc/",
        b"/simple/../etc/",
        b"/simple/..%2f..%2fetc%2fpasswd/",
        b"/simple/%2e%2e%2f%2e%2e%2fetc/",
        b"/simple/.%2e/.%2e/etc/passwd",
    ],
)
async def test_scenario_1_traversal_in_project_routes(
    index: FakeIndex, start_bodega: StartBodega, path: bytes
) -> None:
    """Scenario 1: 400/404, no upstream request, nothing echoed unescaped."""
    bodega = await start_bodega()
    assert_refused(await send_raw(bodega, get(path)), path)
    assert upstream_paths(index) == []


async def test_scenario_1_an_empty_first_segment_is_the_same_tree(
    index: FakeIndex, start_bodega: StartBodega
) -> None:
    """Scenario 1, `//simple/x/`: empty segments collapse (Pipenv asks for /simple//six/), so
    this is the page of project x; its name is validated like any other."""
    bodega = await start_bodega()
    response = await send_raw(bodega, get(b"//simple/foo-bar/"))
    assert response.status == 200
    assert upstream_paths(index) == ["/simple/foo-bar/"]


@pytest.mark.parametrize(
    "path",
    [
        b"/files/..%2f..%2fetc%2fpasswd",
        b"/files/foo-bar-baz/..%2f..%2fetc%2fpasswd",
        b"/files/foo-bar-baz/..%5c..%5cwin.ini",
        b"/files/foo-bar-baz/a%00b.whl",
        b"/files/foo-bar-baz/%C0%AE%C0%AE%2fx",
        b"/files/foo-bar-baz/%252e%252e",
        b"/files/foo-bar-baz/%2e%2e",
        b"/files/%2e%2e/foo_bar_baz-1.0-py3-none-any.whl",
        b"/files/foo-bar-baz/../../blobs/sha256",
        b"/files/foo-bar-baz/" + WHEEL.sha256.encode(),
    ],
)
async def test_scenario_2_traversal_in_file_routes(
    index: FakeIndex, start_bodega: StartBodega, path: bytes
) -> None:
    """Scenario 2: 404 (or 400), never a path join; no file is ever asked of upstream."""
    bodega = await start_bodega()
    # Cache the wheel first, so a traversal that reached the blob store would find a file.
    async with httpx.AsyncClient(trust_env=False) as client:
        assert (await client.get(f"{bodega}files/foo-bar-baz/{WHEEL.filename}")).is_success
    assert_refused(await send_raw(bodega, get(path)), path)
    assert [p for p in upstream_paths(index) if not p.startswith("/simple/")] == [
        p for p in upstream_paths(index) if p.endswith(WHEEL.filename)
    ]


@pytest.mark.parametrize(
    "spelling", ["Foo.Bar_baz", "FOO--bar--baz", "foo__bar__baz", "foo-BAR.baz"]
)
async def test_scenario_3_non_normalized_names_redirect_once_and_share_one_entry(
    index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient, spelling: str
) -> None:
    """Scenario 3: one 301 to the PEP 503 form, no loop, one upstream page request."""
    bodega = await start_bodega()
    first = await client.get(f"{bodega}simple/{spelling}/")
    assert first.status_code == 301
    assert first.headers["Location"] == "/simple/foo-bar-baz/"
    followed = await client.get(f"{bodega}simple/{spelling}/", follow_redirects=True)
    assert followed.status_code == 200
    assert len(followed.history) == 1
    direct = await client.get(f"{bodega}simple/foo-bar-baz/")
    assert direct.content == followed.content
    assert upstream_paths(index).count("/simple/foo-bar-baz/") == 1
    file_redirect = await client.get(f"{bodega}files/{spelling}/{WHEEL.filename}")
    assert file_redirect.headers["Location"] == f"/files/foo-bar-baz/{WHEEL.filename}"


@pytest.mark.parametrize(
    "name",
    ["ｆｏｏ", "рір", "Ⅸ", "foo\u200dbar", "foo\u202ebar", "ﬀ", "ǅ", "foo\u0130"],
)
async def test_scenario_4_confusables_are_rejected_not_lowercased(
    index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient, name: str
) -> None:
    """Scenario 4 live (the property test is tests/unit/core/test_names.py)."""
    bodega = await start_bodega()
    response = await client.get(f"{bodega}simple/{name}/")
    assert response.status_code == 400
    assert upstream_paths(index) == []


@pytest.mark.parametrize("length", [201, 256, 5000])
async def test_scenario_5_long_project_names(
    index: FakeIndex, start_bodega: StartBodega, length: int
) -> None:
    """Scenario 5: 400, no upstream request, no huge key anywhere."""
    bodega = await start_bodega()
    path = b"/simple/" + b"a" * length + b"/"
    response = await send_raw(bodega, get(path))
    assert response.status == 400
    assert len(response.body) < 500
    assert upstream_paths(index) == []


async def test_scenario_5_long_filenames_and_request_lines(
    index: FakeIndex, start_bodega: StartBodega
) -> None:
    """Scenario 5: a filename over 255 bytes is 400 before any open(); a 20 KB request line
    is refused by aiohttp's parser (limit 8190 bytes)."""
    bodega = await start_bodega()
    long_file = b"/files/foo-bar-baz/" + b"a" * 300 + b".whl"
    assert (await send_raw(bodega, get(long_file))).status == 400
    huge = await send_raw(bodega, get(b"/simple/" + b"a" * 20_000 + b"/"))
    assert huge.status in (400, 414)
    assert upstream_paths(index) == []


@pytest.mark.parametrize(
    "path",
    [
        b"/simple/./",
        b"/simple/-foo/",
        b"/simple/foo-/",
        b"/simple/foo%20bar/",
        b"/simple/%20/",
        b"/simple/foo%3Fbar/",
        b"/simple/foo%23bar/",
        b"/simple/_/",
        b"/files/foo-bar-baz/",
    ],
)
async def test_scenario_6_degenerate_names(
    index: FakeIndex, start_bodega: StartBodega, path: bytes
) -> None:
    """Scenario 6: 400/404. (`/simple//` is the root list: empty segments collapse.)"""
    bodega = await start_bodega()
    assert_refused(await send_raw(bodega, get(path)), path)
    assert upstream_paths(index) == []


@pytest.mark.parametrize(
    "path",
    [
        b"/simple///evil.example/x/",
        b"/simple/http:%2f%2fevil/",
        b"/simple/@evil.example/",
        b"/simple/http:%2F%2Fevil.example%2Fx/",
        b"/simple/%2F%2Fevil.example%2Fx/",
        b"/files/%2F%2Fevil.example/x.whl",
    ],
)
async def test_scenario_7_no_url_injection_into_upstream(
    index: FakeIndex, start_bodega: StartBodega, path: bytes
) -> None:
    """Scenario 7: refused, or (empty segments collapse) a redirect within bodega's own
    tree; upstream is never asked for any of it."""
    bodega = await start_bodega()
    response = await send_raw(bodega, get(path))
    if response.status == 301:
        assert response.headers["location"].startswith("/files/evil-example/"), path
    else:
        assert_refused(response, path)
    assert upstream_paths(index) == []


async def test_scenario_7_upstream_urls_stay_on_the_configured_host() -> None:
    """Scenario 7: urljoin(base, "//evil/x") would switch host; project_url never does.
    (A bare ".." cannot reach it: no valid project name is a dot segment.)"""
    from bodega.upstream.http import HttpUpstream

    client = await HttpUpstream.open("https://index.example/simple/", 1.0, "test")
    try:
        for raw in ["//evil.example/x", "http://evil", "@evil.example", "a/../../b", "%2f"]:
            url = httpx.URL(client.project_url(raw))
            assert url.host == "index.example", raw
            assert url.path.startswith("/simple/"), raw
            assert url.raw_path.count(b"/") == 3, raw
    finally:
        await client.close()


@pytest.mark.parametrize(
    "path",
    [
        b"/simple/%0d%0aSet-Cookie:x/",
        b"/simple/Foo%0d%0aSet-Cookie:x=1/",
        b"/simple/Foo%0aLocation:x/",
        b"/files/Foo%0d%0aSet-Cookie:x/foo-1.0.tar.gz",
        b"/simple/Foo%0d%0a/",
    ],
)
async def test_scenario_8_no_header_injection_through_names(
    index: FakeIndex, start_bodega: StartBodega, path: bytes
) -> None:
    """Scenario 8 (pypiserver CVE-2019-6802): 400 or 404, never reflected into a header."""
    bodega = await start_bodega()
    response = await send_raw(bodega, get(path))
    assert response.status in (400, 404)
    names = [name for name, _ in response.header_lines]
    assert "set-cookie" not in names
    assert "location" not in names


async def test_scenario_9_upstream_strings_are_escaped_and_pages_carry_a_csp(
    start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    """Scenario 9: requires-python, yanked reason and odd-looking filenames from upstream are
    escaped in the simple HTML; a Content-Security-Policy that runs no script is present."""
    wheel = build_wheel("demo", "1.0")
    async with hostile_upstream() as upstream:
        entry = upstream.listed(
            wheel.filename,
            wheel.data,
            **{
                "requires-python": '>=3"><script>alert(1)</script>',
                "yanked": '"><img src=x onerror=alert(1)>',
            },
        )
        upstream.json_page("demo", [entry])
        bodega = await start_bodega(upstream=upstream.simple_url)
        html = await client.get(f"{bodega}simple/demo/", headers={"Accept": "text/html"})
        assert html.status_code == 200
        assert "<script" not in html.text
        assert "<img" not in html.text
        assert "&lt;script&gt;" in html.text
        for response in (
            html,
            await client.get(f"{bodega}simple/"),
            await client.get(f"{bodega}simple/x%3C/?<script>"),
        ):
            assert "script-src" not in response.headers.get("Content-Security-Policy", "x")
            assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
            assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (JSON, JSON),
        ("application/vnd.pypi.simple.latest+json", JSON),
        ("application/vnd.pypi.simple.v1+html", "application/vnd.pypi.simple.v1+html"),
        ("text/html", "text/html"),
        ("*/*", "text/html"),
        (f"text/html;q=0.5, {JSON};q=0.9", JSON),
        (f"{JSON};q=0, text/html", "text/html"),
        ("garbage;;;q=x,,/", "text/html"),
        ("", "text/html"),
    ],
)
async def test_scenario_10_negotiation_vary_and_one_cache_entry_per_format(
    index: FakeIndex,
    start_bodega: StartBodega,
    client: httpx.AsyncClient,
    accept: str,
    expected: str,
) -> None:
    """Scenario 10: PEP 691 choice, Vary on 200 and 304, and the format is part of the
    cache key: a JSON rendering is never served to an HTML client or the reverse."""
    bodega = await start_bodega()
    url = f"{bodega}simple/foo-bar/"
    await client.get(url, headers={"Accept": JSON})  # warm with the other format first
    await client.get(url, headers={"Accept": "text/html"})
    response = await client.get(url, headers={"Accept": accept})
    assert response.headers["Content-Type"].split(";")[0] == expected
    assert response.headers["Vary"] == "Accept, Accept-Encoding"
    assert response.content.startswith(b"{") == (expected == JSON)
    again = await client.get(
        url, headers={"Accept": accept, "If-None-Match": response.headers["ETag"]}
    )
    assert again.status_code == 304
    assert again.headers["Vary"] == "Accept, Accept-Encoding"


@pytest.mark.parametrize("header", [b"Host: evil.example", b"X-Forwarded-Host: evil.example"])
async def test_scenario_11_host_headers_never_poison_links(
    index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient, header: bytes
) -> None:
    """Scenario 11: links are relative, so a cold request with a hostile Host or
    X-Forwarded-Host caches nothing that names that host."""
    bodega = await start_bodega()
    for accept in (b"Accept: text/html", b"Accept: " + JSON.encode()):
        extra = [header, accept] if header.startswith(b"X-") else [accept]
        host = b"evil.example" if header.startswith(b"Host") else b"127.0.0.1"
        poisoned = await send_raw(bodega, get(b"/simple/foo-bar/", *extra, host=host))
        assert poisoned.status == 200
        assert b"evil" not in poisoned.body
    for accept_text in ("text/html", JSON):
        normal = await client.get(f"{bodega}simple/foo-bar/", headers={"Accept": accept_text})
        assert b"evil" not in normal.content
        assert b"127.0.0.1" not in normal.content


@pytest.mark.parametrize(
    ("range_header", "status"),
    [
        # Several ranges: the whole file (RFC 9110 14.2 lets a server ignore Range).
        ("bytes=0-1,5-6", 200),
        (",".join(f"{i}-{i}" for i in range(1000)).join(["bytes=", ""]), 200),
        ("bytes=-0", 416),  # a zero suffix selects nothing (RFC 9110 14.1.1)
        ("bytes=99999999-", 416),
        ("bytes=5-2", 416),
        ("bytes=0-0", 206),
        ("bytes=-1", 206),
        ("bytes=-99999999", 206),  # a suffix longer than the file: all of it
        ("items=0-1", 200),  # an unknown unit is ignored (RFC 9110 14.2)
    ],
)
async def test_scenario_12_range_abuse(
    index: FakeIndex,
    start_bodega: StartBodega,
    client: httpx.AsyncClient,
    range_header: str,
    status: int,
) -> None:
    """Scenario 12: one range is a 206 or, unsatisfiable, a 416; several ranges are the
    whole file, with no work per range (cf. Starlette CVE-2025-62727)."""
    bodega = await start_bodega()
    url = f"{bodega}files/foo-bar-baz/{WHEEL.filename}"
    await client.get(url)
    started = time.monotonic()
    response = await client.get(url, headers={"Range": range_header})
    assert time.monotonic() - started < 5  # generous: a single request, bounded work
    assert response.status_code == status, range_header
    if status == 206:
        start, _, end = range_header.removeprefix("bytes=").partition("-")
        expected = WHEEL.data[int(start) : int(end) + 1] if start else WHEEL.data[-int(end) :]
        assert response.content == expected
    if status == 200:
        assert response.content == WHEEL.data


async def test_scenario_12_if_range_applies_the_range_only_for_the_current_validator(
    index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    """Scenario 12, If-Range (RFC 9110 13.1.5): an entity-tag by strong comparison, a date
    only as the exact Last-Modified; otherwise the whole file, never a stale slice."""
    bodega = await start_bodega()
    url = f"{bodega}files/foo-bar-baz/{WHEEL.filename}"
    await client.get(url)
    head = await client.head(url)
    etag, last_modified = head.headers["ETag"], head.headers["Last-Modified"]
    assert etag == f'"{WHEEL.sha256}"'  # content-addressed: strong and stable
    for validator, status in [
        (etag, 206),
        (last_modified, 206),
        ('"stale-etag"', 200),
        (f"W/{etag}", 200),  # a weak tag never matches in If-Range
        ("Mon, 01 Jan 1990 00:00:00 GMT", 200),
    ]:
        response = await client.get(url, headers={"Range": "bytes=0-9", "If-Range": validator})
        assert response.status_code == status, validator
        assert response.content == (WHEEL.data[:10] if status == 206 else WHEEL.data)


async def test_conditional_requests_on_a_cached_file(
    index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    bodega = await start_bodega()
    url = f"{bodega}files/foo-bar-baz/{WHEEL.filename}"
    await client.get(url)  # cached: a streamed first answer carries no validators
    etag = (await client.get(url)).headers["ETag"]
    not_modified = await client.get(url, headers={"If-None-Match": f"W/{etag}"})
    assert (not_modified.status_code, not_modified.content) == (304, b"")
    assert (await client.get(url, headers={"If-None-Match": '"other"'})).status_code == 200
    assert (await client.get(url, headers={"If-Match": '"other"'})).status_code == 412
    assert (await client.get(url, headers={"If-Match": etag})).status_code == 200
    head = await client.head(url, headers={"Range": "bytes=0-9"})  # Range is for GET only
    assert (head.status_code, head.headers["Content-Length"]) == (200, str(WHEEL.size))


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /simple/foo-bar/ HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n",
        b"GET /simple/foo-bar/ HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 5\r\n"
        b"Connection: close\r\n\r\nhello",
        b"GET /simple/foo-bar/ HTTP/1.1\r\nHost: x\r\nX-A: one\r\n  folded\r\n"
        b"Connection: close\r\n\r\n",
        b"GET /simple/foo-bar/ HTTP/1.1\r\nHost: x\r\n"
        + b"".join(b"X-H%d: v\r\n" % i for i in range(10_000))
        + b"Connection: close\r\n\r\n",
        b"GET /simple/foo-bar/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n"
        b"Connection: close\r\n\r\n0\r\n\r\n",
        b"GET /simple/foo-bar/ HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n",
    ],
    ids=["cl-and-te", "duplicate-cl", "obs-fold", "10k-headers", "te-list", "huge-header"],
)
async def test_scenario_13_request_smuggling_and_parser_abuse(
    index: FakeIndex, start_bodega: StartBodega, request_bytes: bytes
) -> None:
    """Scenario 13: aiohttp's parser answers 400 (431 for too many or too large headers)."""
    bodega = await start_bodega()
    response = await send_raw(bodega, request_bytes)
    assert response.status in (400, 431), response.status
    assert upstream_paths(index) == []


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (get(b"/simple/foo-bar/", b"X-Big: " + b"a" * 9_000), 431),
        (get(b"/simple/foo-bar/", *(b"X-H%d: v" % i for i in range(200))), 431),
        (get(b"/simple/" + b"a" * 9_000 + b"/"), 414),
        (b"GET /simple/foo-bar/ HTTP/1.1\r\nHost: x\r\nBad Header: v\r\n\r\n", 400),
    ],
    ids=["header-over-8k", "too-many-headers", "long-request-line", "malformed"],
)
async def test_a_refused_request_is_one_log_line_and_a_fixed_answer(
    index: FakeIndex,
    start_bodega: StartBodega,
    caplog: pytest.LogCaptureFixture,
    request_bytes: bytes,
    status: int,
) -> None:
    """Issue 17: a header over 8 KB was a 400 whose body echoed the header, and an ERROR
    with a traceback in the log; RFC 6585 says 431."""
    caplog.set_level(logging.INFO)
    bodega = await start_bodega()
    response = await send_raw(bodega, request_bytes)
    assert response.status == status
    assert b"aaaa" not in response.body
    assert len(response.body) < 100
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert all(r.exc_info is None for r in caplog.records)
    refused = [r.getMessage() for r in caplog.records if "refused a request" in r.getMessage()]
    assert len(refused) == 1
    assert f": {status}, " in refused[0]
