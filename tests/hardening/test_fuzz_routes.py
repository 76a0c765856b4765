"""A short fuzzing run of the route handlers against a live bodega, and Range parsing as a
property checked through the live server (aiohttp's FileResponse owns Range).

Every answer must be well-formed HTTP, and no 5xx may appear other than the documented
upstream ones: 502, 504, 508.
"""

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hardening.raw_http import send_raw_sync
from tests.support.distributions import build_sdist, build_wheel
from tests.support.fake_index import FakeIndex
from tests.support.servers import BodegaProcess, bodega_process

WHEEL = build_wheel("demo", "1.0", payload_size=5_000)
SDIST = build_sdist("demo", "1.0")
UPSTREAM_STATUSES = {502, 504, 508}


Live = tuple[BodegaProcess, httpx.Client]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """One fake index and one bodega subprocess for the whole module: fuzzing needs many
    requests, not many servers."""
    data_dir: Path = tmp_path_factory.mktemp("fuzz") / "data"
    with FakeIndex() as index:
        index.add("demo", WHEEL)
        index.add("demo", SDIST)
        with (
            bodega_process(data_dir, index.simple_url) as bodega,
            httpx.Client(trust_env=False, timeout=15) as client,
        ):
            assert client.get(f"{bodega.url}files/demo/{WHEEL.filename}").status_code == 200
            yield bodega, client


segment = st.one_of(
    st.sampled_from(
        [
            "simple",
            "files",
            "root",
            "pypi",
            "+simple",
            "demo",
            "Demo",
            "DEMO.",
            "..",
            ".",
            WHEEL.filename,
            WHEEL.filename + ".metadata",
            SDIST.filename,
            "",
            "%2e%2e",
            "%2f",
            "%00",
            "%0d%0a",
            "%C0%AE",
            "%ff",
            "a" * 300,
        ]
    ),
    st.text(max_size=20).map(lambda text: quote(text, safe="")),
    st.binary(max_size=8).map(lambda raw: quote(raw, safe="")),
)
paths = (
    st.lists(segment, max_size=5)
    .map(lambda parts: "/" + "/".join(parts))
    .flatmap(
        lambda path: st.sampled_from(
            [path, path + "/", path + "?format=" + "x", path + "?<script>"]
        )
    )
)
header_value = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60).map(
    str.strip
)
headers = st.dictionaries(
    st.sampled_from(
        [
            "Accept",
            "Accept-Encoding",
            "Range",
            "If-Range",
            "If-None-Match",
            "Cache-Control",
            "X-Forwarded-Host",
            "Via",
            "Pragma",
            "If-Modified-Since",
            "X-Fuzz",
        ]
    ),
    header_value | st.sampled_from(["application/vnd.pypi.simple.v1+json", "gzip", "bytes=0-5"]),
    max_size=5,
)
methods = st.sampled_from(["GET", "GET", "GET", "HEAD", "POST", "OPTIONS", "DELETE"])


@given(method=methods, path=paths, extra=headers)
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_any_request_gets_a_well_formed_answer_and_no_unexplained_5xx(
    live: Live, method: str, path: str, extra: dict[str, str]
) -> None:
    bodega, _ = live
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in extra.items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    response = send_raw_sync(bodega.url, request, is_head=method == "HEAD")
    assert response.status < 500 or response.status in UPSTREAM_STATUSES, (path, extra, response)
    if response.status >= 400 and method != "HEAD":
        assert b"<script" not in response.body
    assert bodega.process.poll() is None


_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
numbers = st.integers(min_value=0, max_value=2 * len(WHEEL.data)).map(str)
ranges = st.one_of(
    st.builds(lambda a, b: f"bytes={a}-{b}", numbers, numbers),
    st.builds(lambda a: f"bytes={a}-", numbers),
    st.builds(lambda b: f"bytes=-{b}", numbers),
    st.builds(lambda a, b, c, d: f"bytes={a}-{b},{c}-{d}", numbers, numbers, numbers, numbers),
    header_value,
)


def expected_slice(header: str, data: bytes) -> tuple[int, bytes] | None:
    """(status, body) by RFC 9110 section 14; None for headers a server may reject or
    ignore (garbage, several ranges)."""
    found = _RANGE.fullmatch(header.replace(" ", ""))
    if not found or found.group(0) == "bytes=-":
        return None
    first, last, size = found.group(1), found.group(2), len(data)
    if not first:
        suffix = int(last)
        return (416, b"") if suffix == 0 else (206, data[-suffix:])
    start = int(first)
    if start >= size or (last and int(last) < start):
        return (416, b"")
    end = min(int(last), size - 1) if last else size - 1
    return (206, data[start : end + 1])


@given(header=ranges)
@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_range_answers_match_the_rfc_model(live: Live, header: str) -> None:
    """Scenario 12 as a property: a 206 carries exactly the bytes asked for with a matching
    Content-Range, a 416 only for unsatisfiable or unparsable ranges, never a 5xx."""
    bodega, client = live
    response = client.get(f"{bodega.url}files/demo/{WHEEL.filename}", headers={"Range": header})
    assert response.status_code in (200, 206, 416), header
    expected = expected_slice(header, WHEEL.data)
    if expected is not None:
        assert (response.status_code, response.content) == expected, header
    if response.status_code == 206:
        start, end = (
            int(n) for n in response.headers["Content-Range"].split(" ")[1].split("/")[0].split("-")
        )
        assert response.content == WHEEL.data[start : end + 1]
