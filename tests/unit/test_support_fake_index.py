"""Sanity tests for the test support code: built distributions and the fake upstream index."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import socket
import tarfile
import threading
import time
import zipfile
import zlib
from collections.abc import Iterator
from typing import Any

import aiohttp
import httpx
import pytest
from packaging.metadata import Metadata

from tests.support.distributions import BuiltFile, build_sdist, build_wheel
from tests.support.fake_index import FakeIndex

JSON = "application/vnd.pypi.simple.v1+json"
V1_HTML = "application/vnd.pypi.simple.v1+html"

WHEEL = build_wheel(
    "Demo.Pkg",
    "1.0",
    requires=["dep-a>=1"],
    requires_python=">=3.8,<4",
    summary="A demo",
    payload_size=20_000,
)
SDIST = build_sdist("Demo.Pkg", "1.0", requires_python=">=3.8,<4", summary="A demo")


@pytest.fixture
def index() -> Iterator[FakeIndex]:
    with FakeIndex() as fake:
        fake.add("Demo.Pkg", WHEEL)
        fake.add("demo-pkg", SDIST, yanked="broken build")
        yield fake


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    # trust_env=False: a proxy configured in the environment must not see loopback traffic.
    with httpx.Client(timeout=5, trust_env=False) as http:
        yield http


def _page_json(client: httpx.Client, url: str) -> dict[str, Any]:
    response = client.get(url, headers={"Accept": JSON})
    assert response.status_code == 200
    doc: dict[str, Any] = response.json()
    return doc


def _files_by_name(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    files = doc["files"]
    assert isinstance(files, list)
    return {f["filename"]: f for f in files}


def _raw_get(url: str) -> socket.socket:
    """Send a bare HTTP/1.1 GET and return the socket, to observe exactly what the server sends."""
    parsed = httpx.URL(url)
    assert parsed.port is not None
    sock = socket.create_connection(("127.0.0.1", parsed.port), timeout=2)
    sock.sendall(f"GET {parsed.raw_path.decode()} HTTP/1.1\r\nHost: fake\r\n\r\n".encode())
    return sock


def _read_to_eof(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


# ------------------------------------------------------------------------------ distributions


def test_wheel_is_well_formed_and_deterministic() -> None:
    assert WHEEL.filename == "demo_pkg-1.0-py3-none-any.whl"
    again = build_wheel(
        "Demo.Pkg",
        "1.0",
        requires=("dep-a>=1",),
        requires_python=">=3.8,<4",
        summary="A demo",
        payload_size=20_000,
    )
    assert again.data == WHEEL.data
    assert WHEEL.sha256 == hashlib.sha256(WHEEL.data).hexdigest()

    with zipfile.ZipFile(io.BytesIO(WHEEL.data)) as archive:
        names = archive.namelist()
        assert names[:2] == ["demo_pkg/__init__.py", "demo_pkg/payload.bin"]
        assert archive.read("demo_pkg-1.0.dist-info/METADATA") == WHEEL.metadata
        assert b"Root-Is-Purelib: true" in archive.read("demo_pkg-1.0.dist-info/WHEEL")
        assert b'__version__ = "1.0"' in archive.read("demo_pkg/__init__.py")
        payload = archive.read("demo_pkg/payload.bin")
        rows = list(csv.reader(io.StringIO(archive.read("demo_pkg-1.0.dist-info/RECORD").decode())))
        for path, digest, size in rows:
            if path.endswith("/RECORD"):
                assert (digest, size) == ("", "")
                continue
            data = archive.read(path)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            assert digest == "sha256=" + expected.decode()
            assert int(size) == len(data)
        assert sorted(r[0] for r in rows) == sorted(names)

    assert len(payload) == 20_000
    assert len(zlib.compress(payload)) > 19_000  # incompressible, so file sizes are real
    assert len(WHEEL.data) > 20_000

    assert WHEEL.metadata is not None
    meta = Metadata.from_email(WHEEL.metadata)
    assert (meta.name, str(meta.version), meta.summary) == ("Demo.Pkg", "1.0", "A demo")
    assert str(meta.requires_python) == "<4,>=3.8"
    assert [str(r) for r in meta.requires_dist or []] == ["dep-a>=1"]
    assert WHEEL.metadata_sha256 == hashlib.sha256(WHEEL.metadata).hexdigest()


def test_sdist_is_well_formed_and_deterministic() -> None:
    assert SDIST.filename == "demo_pkg-1.0.tar.gz"
    assert SDIST.metadata is None
    assert SDIST.metadata_sha256 is None
    assert build_sdist("Demo.Pkg", "1.0", requires_python=">=3.8,<4", summary="A demo") == SDIST
    with tarfile.open(fileobj=io.BytesIO(SDIST.data), mode="r:gz") as archive:
        assert archive.getnames() == [
            "demo_pkg-1.0/PKG-INFO",
            "demo_pkg-1.0/pyproject.toml",
            "demo_pkg-1.0/demo_pkg/__init__.py",
        ]
        pkg_info = archive.extractfile("demo_pkg-1.0/PKG-INFO")
        assert pkg_info is not None
        meta = Metadata.from_email(pkg_info.read())
    assert (meta.name, str(meta.version)) == ("Demo.Pkg", "1.0")


# --------------------------------------------------------------------------------- pages port


def test_json_project_page(index: FakeIndex, client: httpx.Client) -> None:
    response = client.get(index.simple_url + "demo-pkg/", headers={"Accept": JSON})
    assert response.headers["Content-Type"] == JSON
    doc = response.json()
    assert doc["meta"]["api-version"] == "1.1"
    assert (doc["name"], doc["versions"]) == ("demo-pkg", ["1.0"])

    files = _files_by_name(doc)
    wheel, sdist = files[WHEEL.filename], files[SDIST.filename]
    assert wheel["url"] == index.file_url(WHEEL.filename)
    assert str(wheel["url"]).startswith(index.files_url + "/packages/")
    assert index.files_url != index.simple_url.removesuffix("/simple/")
    assert wheel["hashes"] == {"sha256": WHEEL.sha256}
    assert wheel["requires-python"] == ">=3.8,<4"
    assert wheel["size"] == len(WHEEL.data)
    assert wheel["upload-time"] == "2026-01-02T03:04:05.000000Z"
    assert wheel["yanked"] is False
    assert wheel["core-metadata"] == {"sha256": WHEEL.metadata_sha256}
    assert wheel["data-dist-info-metadata"] == wheel["core-metadata"]
    assert "dist-info-metadata" not in wheel
    assert sdist["yanked"] == "broken build"
    assert sdist["core-metadata"] is False


def test_html_project_page(index: FakeIndex, client: httpx.Client) -> None:
    response = client.get(index.simple_url + "demo-pkg/", headers={"Accept": "text/html"})
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    page = response.text
    assert '<meta name="pypi:repository-version" content="1.1">' in page
    assert f'href="{index.file_url(WHEEL.filename)}#sha256={WHEEL.sha256}"' in page
    assert 'data-requires-python="&gt;=3.8,&lt;4"' in page
    assert 'data-yanked="broken build"' in page
    assert f'data-core-metadata="sha256={WHEEL.metadata_sha256}"' in page
    assert f'data-dist-info-metadata="sha256={WHEEL.metadata_sha256}"' in page
    assert page.count("<a ") == 2


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("*/*", "text/html"),
        ("text/html", "text/html"),
        (V1_HTML, V1_HTML),
        (JSON, JSON),
        (f"{JSON}, */*;q=0.1", JSON),  # Poetry
        (f"{JSON}, {V1_HTML}, text/html;q=0.01", V1_HTML),  # equal q: HTML, like the index
        ("application/vnd.pypi.simple.latest+json", JSON),
        (f"{JSON};q=0.2, text/html;q=0.9", "text/html"),
        ("application/json", "text/html"),  # nothing acceptable: HTML rather than 406
    ],
)
def test_content_negotiation(
    index: FakeIndex, client: httpx.Client, accept: str, expected: str
) -> None:
    response = client.get(index.simple_url + "demo-pkg/", headers={"Accept": accept})
    assert response.status_code == 200
    assert response.headers["Content-Type"].split(";")[0] == expected
    assert response.headers["Vary"] == "Accept"


def test_root_page(index: FakeIndex, client: httpx.Client) -> None:
    index.add("Other_Project", build_wheel("Other_Project", "2.0"))
    doc = _page_json(client, index.simple_url)
    assert [p["name"] for p in doc["projects"]] == ["Demo.Pkg", "Other_Project"]
    page = client.get(index.simple_url).text
    assert '<a href="/simple/other-project/">Other_Project</a>' in page


def test_redirects_and_not_found(index: FakeIndex, client: httpx.Client) -> None:
    for path, location in [
        ("simple/Demo.Pkg/", "/simple/demo-pkg/"),
        ("simple/demo_pkg/", "/simple/demo-pkg/"),
        ("simple/demo-pkg", "/simple/demo-pkg/"),
        ("simple", "/simple/"),
    ]:
        response = client.get(f"http://127.0.0.1:{index.pages_port}/{path}")
        assert (response.status_code, response.headers["Location"]) == (301, location)
    assert client.get(index.simple_url + "no-such-project/").status_code == 404
    assert client.get(index.simple_url + "demo-pkg/extra").status_code == 404


def test_etag_and_serial(index: FakeIndex, client: httpx.Client) -> None:
    url = index.simple_url + "demo-pkg/"
    html = client.get(url)
    as_json = client.get(url, headers={"Accept": JSON})
    etag = as_json.headers["ETag"]
    assert etag.startswith('"')  # strong
    assert etag != html.headers["ETag"]  # one per variant
    assert as_json.headers["Last-Modified"].endswith(" GMT")
    assert as_json.headers["X-PyPI-Last-Serial"] == "2"

    cached = client.get(url, headers={"Accept": JSON, "If-None-Match": etag})
    assert (cached.status_code, cached.headers["ETag"], cached.content) == (304, etag, b"")
    other_variant = client.get(url, headers={"If-None-Match": etag})
    assert other_variant.status_code == 200

    index.add("demo-pkg", build_wheel("demo-pkg", "1.1"))
    changed = client.get(url, headers={"Accept": JSON, "If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["X-PyPI-Last-Serial"] == "3"
    assert changed.json()["versions"] == ["1.0", "1.1"]


def test_page_options_and_remove(index: FakeIndex, client: httpx.Client) -> None:
    bare = build_wheel("bare", "0.1")
    index.add(
        "bare",
        bare,
        serve_metadata=False,
        hash_in_page=False,
        size_in_page=False,
        upload_time=None,
    )
    entry = _files_by_name(_page_json(client, index.simple_url + "bare/"))[bare.filename]
    assert entry["hashes"] == {}
    assert "size" not in entry
    assert "upload-time" not in entry
    assert entry["core-metadata"] is False
    page = client.get(index.simple_url + "bare/").text
    assert "#sha256=" not in page
    assert "data-core-metadata" not in page
    assert client.get(index.file_url(bare.filename) + ".metadata").status_code == 404

    index.remove("Demo.Pkg", SDIST.filename)
    assert list(_files_by_name(_page_json(client, index.simple_url + "demo-pkg/"))) == [
        WHEEL.filename
    ]


# --------------------------------------------------------------------------------- files port


def test_files_and_metadata(index: FakeIndex, client: httpx.Client) -> None:
    url = index.file_url(WHEEL.filename)
    response = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert hashlib.sha256(response.content).hexdigest() == WHEEL.sha256
    assert "Content-Encoding" not in response.headers
    assert response.headers["Content-Length"] == str(len(WHEEL.data))

    head = client.head(url)
    assert (head.status_code, head.headers["Content-Length"]) == (200, str(len(WHEEL.data)))

    metadata = client.get(url + ".metadata")
    assert hashlib.sha256(metadata.content).hexdigest() == WHEEL.metadata_sha256

    assert client.get(index.file_url(SDIST.filename) + ".metadata").status_code == 404
    assert client.get(f"{index.files_url}/packages/zz/zz/{WHEEL.filename}").status_code == 404
    assert client.get(url.replace(WHEEL.filename, "nope-1.0.tar.gz")).status_code == 404


# -------------------------------------------------------------------------------- fault knobs


def test_fail_with(index: FakeIndex, client: httpx.Client) -> None:
    page, file = index.simple_url + "demo-pkg/", index.file_url(WHEEL.filename)
    index.fail_with(503)
    assert (client.get(page).status_code, client.get(file).status_code) == (503, 200)
    index.fail_with(None)
    index.fail_with(500, pages=False, files=True)
    assert (client.get(page).status_code, client.get(file).status_code) == (200, 500)
    index.reset_faults()
    assert client.get(file).status_code == 200


def test_delay_first_byte(index: FakeIndex, client: httpx.Client) -> None:
    index.delay_first_byte(0.2)
    started = time.monotonic()
    assert client.get(index.simple_url + "demo-pkg/").status_code == 200
    assert time.monotonic() - started >= 0.2
    with pytest.raises(httpx.ReadTimeout):
        client.get(index.file_url(WHEEL.filename), timeout=0.1)


def test_throttle(index: FakeIndex, client: httpx.Client) -> None:
    index.throttle(WHEEL.filename, bytes_per_second=200_000, chunk=4096)
    started = time.monotonic()
    response = client.get(index.file_url(WHEEL.filename))
    assert time.monotonic() - started >= 0.09  # ~20 kB at 200 kB/s
    assert response.content == WHEEL.data


def test_corrupt(index: FakeIndex, client: httpx.Client) -> None:
    index.corrupt(WHEEL.filename)
    body = client.get(index.file_url(WHEEL.filename)).content
    assert len(body) == len(WHEEL.data)
    assert sum(a != b for a, b in zip(body, WHEEL.data, strict=True)) == 1
    index.corrupt(WHEEL.filename + ".metadata")
    metadata = client.get(index.file_url(WHEEL.filename) + ".metadata").content
    assert hashlib.sha256(metadata).hexdigest() != WHEEL.metadata_sha256


def test_truncate_with_content_length(index: FakeIndex, client: httpx.Client) -> None:
    index.truncate(WHEEL.filename, with_content_length=True)
    with pytest.raises(httpx.RemoteProtocolError, match="complete message body"):
        client.get(index.file_url(WHEEL.filename))


def test_truncate_without_content_length(index: FakeIndex) -> None:
    index.truncate(WHEEL.filename, with_content_length=False)
    with _raw_get(index.file_url(WHEEL.filename)) as sock:
        raw = _read_to_eof(sock)
    head, _, body = raw.partition(b"\r\n\r\n")
    header_names = {line.split(b":")[0].lower() for line in head.split(b"\r\n")[1:]}
    assert head.startswith(b"HTTP/1.1 200")
    assert b"content-length" not in header_names
    assert b"transfer-encoding" not in header_names
    assert body == WHEEL.data[: len(WHEEL.data) // 2]


def test_stall_until_reset(index: FakeIndex) -> None:
    index.stall(WHEEL.filename, after_bytes=1000)
    with _raw_get(index.file_url(WHEEL.filename)) as sock:
        received = b""
        while len(received.partition(b"\r\n\r\n")[2]) < 1000:
            chunk = sock.recv(65536)
            assert chunk, "the connection closed instead of stalling"
            received += chunk
        sock.settimeout(0.2)
        with pytest.raises(TimeoutError):
            sock.recv(1)  # nothing more comes: the response hangs
        index.reset_faults()
        sock.settimeout(2)
        received += _read_to_eof(sock)
    assert received.partition(b"\r\n\r\n")[2] == WHEEL.data[:1000]


def test_pause_until_reset_then_the_rest(index: FakeIndex) -> None:
    index.pause(WHEEL.filename, after_bytes=1000)
    with _raw_get(index.file_url(WHEEL.filename)) as sock:
        received = b""
        while len(received.partition(b"\r\n\r\n")[2]) < 1000:
            chunk = sock.recv(65536)
            assert chunk, "the connection closed instead of pausing"
            received += chunk
        sock.settimeout(0.2)
        with pytest.raises(TimeoutError):
            sock.recv(1)  # nothing more comes until the release
        index.reset_faults()
        sock.settimeout(2)
        while len(received.partition(b"\r\n\r\n")[2]) < len(WHEEL.data):
            chunk = sock.recv(65536)
            assert chunk, "the connection closed before the rest came"
            received += chunk
    assert received.partition(b"\r\n\r\n")[2] == WHEEL.data


def test_set_down_refuses_then_comes_back_on_the_same_ports(
    index: FakeIndex, client: httpx.Client
) -> None:
    pages_port, files_port = index.pages_port, index.files_port
    assert client.get(index.simple_url + "demo-pkg/").status_code == 200  # pooled keep-alive
    index.set_down(True)
    with pytest.raises(httpx.TransportError):
        client.get(index.simple_url + "demo-pkg/")
    for port in (pages_port, files_port):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    index.set_down(False)
    assert (index.pages_port, index.files_port) == (pages_port, files_port)
    assert client.get(index.simple_url + "demo-pkg/").status_code == 200
    assert client.get(index.file_url(WHEEL.filename)).content == WHEEL.data


# -------------------------------------------------------------------------------- observation


def test_requests_and_count(index: FakeIndex, client: httpx.Client) -> None:
    client.get(index.file_url(WHEEL.filename), headers={"X-Probe": "1"})
    client.get(index.file_url(WHEEL.filename))
    client.head(index.file_url(WHEEL.filename))
    client.get(index.file_url(WHEEL.filename) + ".metadata")
    client.get(index.simple_url + "demo-pkg/")
    assert index.count("GET", "/" + WHEEL.filename) == 2
    assert index.count("head", "/" + WHEEL.filename) == 1
    assert index.count("GET", ".metadata") == 1
    first = index.requests[0]
    assert (first.method, first.server, first.headers["x-probe"]) == ("GET", "files", "1")
    assert index.requests[-1].path == "/simple/demo-pkg/"
    assert index.requests[-1].server == "pages"


def test_stop_releases_stalls_and_joins_thread() -> None:
    threads_before = threading.active_count()
    fake = FakeIndex()
    fake.start()
    fake.add("demo-pkg", WHEEL)
    fake.stall(WHEEL.filename, after_bytes=10)
    port = fake.pages_port
    with _raw_get(fake.file_url(WHEEL.filename)) as sock:
        received = sock.recv(1)  # the response has started, so the handler is now stalled
        started = time.monotonic()
        fake.stop()
        assert time.monotonic() - started < 5  # not the minute aiohttp would wait by default
        received += _read_to_eof(sock)  # stop() closed the connection
    assert received.startswith(b"HTTP/1.1 200")
    body = received.partition(b"\r\n\r\n")[2]
    assert len(body) <= 10
    assert WHEEL.data.startswith(body)
    assert threading.active_count() == threads_before
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


async def test_usable_from_async_tests(index: FakeIndex) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(index.file_url(WHEEL.filename)) as response,
    ):
        assert await response.read() == WHEEL.data


def test_builtfile_sha256_is_of_data() -> None:
    built = BuiltFile("x-1.0.tar.gz", b"abc", None)
    assert built.sha256 == hashlib.sha256(b"abc").hexdigest()
    assert built.metadata_sha256 is None


def test_files_port_answers_the_three_range_forms_and_416(
    index: FakeIndex, client: httpx.Client
) -> None:
    url = index.file_url(WHEEL.filename)
    size = len(WHEEL.data)
    for header, start, end in (
        ("bytes=0-99", 0, 99),
        ("bytes=100-", 100, size - 1),
        ("bytes=-1000", size - 1000, size - 1),
    ):
        response = client.get(url, headers={"Range": header})
        assert response.status_code == 206
        assert response.headers["Content-Range"] == f"bytes {start}-{end}/{size}"
        assert response.content == WHEEL.data[start : end + 1]
    assert client.get(url, headers={"Range": f"bytes={size}-"}).status_code == 416
    index.serves_ranges = False
    whole = client.get(url, headers={"Range": "bytes=0-99"})
    assert whole.status_code == 200
    assert whole.content == WHEEL.data


def test_held_ranges_wait_for_release_and_whole_files_do_not(
    index: FakeIndex, client: httpx.Client
) -> None:
    url = index.file_url(WHEEL.filename)
    index.hold("ranges")
    answered: list[int] = []
    held = threading.Thread(
        target=lambda: answered.append(client.get(url, headers={"Range": "bytes=-10"}).status_code)
    )
    held.start()
    assert client.get(url).content == WHEEL.data  # a whole-file request is not held
    while index.count("GET", WHEEL.filename) < 2:
        time.sleep(0.01)
    assert answered == []
    index.release("ranges")
    held.join(timeout=5)
    assert answered == [206]
    assert client.get(url, headers={"Range": "bytes=-10"}).content == WHEEL.data[-10:]
