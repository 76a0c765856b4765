"""Crashes and restarts: a real `python -m bodega serve` killed (SIGKILL) or stopped (SIGTERM),
then started again on the same data dir. What was committed is served; nothing partial ever is.
"""

import hashlib
import signal
from pathlib import Path

import httpx
import pytest

from tests.support.distributions import BuiltFile, build_wheel
from tests.support.fake_index import FakeIndex
from tests.support.servers import BodegaProcess, bodega_process
from tests.support.waiting import wait_for

JSON = "application/vnd.pypi.simple.v1+json"
HTML = "text/html"

WHEEL = build_wheel("demo", "1.0", payload_size=1_000_000)
NEWER = build_wheel("demo", "2.0")  # published after the cache was warmed
OTHER = build_wheel("other", "1.0")  # a project upstream that bodega never fetched

STALL_AFTER = 500_000  # upstream sends this much of WHEEL, then hangs


@pytest.fixture
def index(fake_index: FakeIndex) -> FakeIndex:
    fake_index.add("demo", WHEEL)
    fake_index.add("other", OTHER)
    return fake_index


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def database(database_url: str) -> dict[str, str]:
    """The environment that points each process at the test's metadata store."""
    return {"BODEGA_DATABASE": database_url} if database_url else {}


def page_url(bodega: BodegaProcess, project: str = "demo") -> str:
    return f"{bodega.url}simple/{project}/"


def file_url(bodega: BodegaProcess, file: BuiltFile = WHEEL) -> str:
    project = file.filename.split("-", 1)[0]
    return f"{bodega.url}files/{project}/{file.filename}"


def fetch(url: str, accept: str | None = None) -> httpx.Response:
    headers = {"Accept": accept} if accept else {}
    return httpx.get(url, headers=headers, trust_env=False, timeout=10)


def blob_files(data_dir: Path) -> list[Path]:
    return sorted(p for p in (data_dir / "blobs").rglob("*") if p.is_file())


def spool_files(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "tmp").iterdir())


def blob_path(data_dir: Path, file: BuiltFile) -> Path:
    sha = file.sha256
    return data_dir / "blobs" / "sha256" / sha[:2] / sha[2:4] / sha


def assert_is_the_wheel(response: httpx.Response) -> None:
    assert response.status_code == 200
    assert hashlib.sha256(response.content).hexdigest() == WHEEL.sha256
    assert response.content == WHEEL.data


def warm(bodega: BodegaProcess) -> dict[str, bytes]:
    """Fetch the project page in both formats and the wheel; returns the page bodies."""
    pages: dict[str, bytes] = {}
    for accept in (JSON, HTML):
        response = fetch(page_url(bodega), accept)
        assert response.status_code == 200
        assert WHEEL.filename in response.text
        pages[accept] = response.content
    assert_is_the_wheel(fetch(file_url(bodega)))
    return pages


def test_a_download_killed_midway_is_never_served_and_is_fetched_again_after_restart(
    index: FakeIndex, data_dir: Path, database: dict[str, str]
) -> None:
    """Threat 30: kill -9 during a blob write leaves only a spool file, which the next start
    discards; the file is downloaded again, whole and verified."""
    index.stall(WHEEL.filename, after_bytes=STALL_AFTER)
    with (
        bodega_process(data_dir, index.simple_url, env=database) as bodega,
        httpx.stream("GET", file_url(bodega), trust_env=False, timeout=10) as response,
    ):
        assert response.status_code == 200
        assert response.headers["Content-Length"] == str(WHEEL.size)
        chunks = response.iter_raw()
        received = b""
        while len(received) < 100_000:
            received += next(chunks)
        assert WHEEL.data.startswith(received)
        [spool] = spool_files(data_dir)
        assert spool.name.endswith(".part")
        partial = spool.read_bytes()
        # Readers are fed from memory; the spool is written in batches behind them.
        assert len(partial) <= STALL_AFTER
        assert WHEEL.data.startswith(partial)

        bodega.kill()
        assert bodega.stop() == -signal.SIGKILL  # stopping a killed bodega is harmless
        with pytest.raises(httpx.TransportError):  # the client never sees a complete body
            for _ in chunks:
                pass
    assert blob_files(data_dir) == []
    assert spool_files(data_dir) == [spool]  # left behind by the crash
    assert index.count("GET", WHEEL.filename) == 1

    index.reset_faults()
    with bodega_process(data_dir, index.simple_url, env=database) as bodega:
        assert spool_files(data_dir) == []  # discarded at start-up
        assert_is_the_wheel(fetch(file_url(bodega)))
        wait_for(lambda: blob_files(data_dir) == [blob_path(data_dir, WHEEL)])
        assert spool_files(data_dir) == []
    assert index.count("GET", WHEEL.filename) == 2  # the killed download was never a hit


def test_a_kill_right_after_a_file_was_served_keeps_it_cached(
    index: FakeIndex, data_dir: Path, database: dict[str, str]
) -> None:
    """Threat 30: the last byte goes out once the file is verified, and the commit follows
    within moments; a kill -9 at any moment after the commit loses nothing."""
    with bodega_process(data_dir, index.simple_url, env=database) as bodega:
        assert_is_the_wheel(fetch(file_url(bodega)))
        wait_for(lambda: blob_files(data_dir) == [blob_path(data_dir, WHEEL)])
        bodega.kill()
    assert blob_files(data_dir) == [blob_path(data_dir, WHEEL)]

    with bodega_process(data_dir, index.simple_url, env=database) as bodega:
        assert_is_the_wheel(fetch(file_url(bodega)))
    assert index.count("GET", WHEEL.filename) == 1
    assert index.count("GET", "/simple/demo/") == 1  # the page survived the kill too


def test_pages_and_files_survive_a_restart_and_are_served_stale_while_upstream_is_down(
    index: FakeIndex, data_dir: Path, database: dict[str, str]
) -> None:
    """Threat 26 (upstream down) and invariant 7 (stale-if-error), across a restart."""
    with bodega_process(data_dir, index.simple_url, env=database) as bodega:
        warmed = warm(bodega)
    index.set_down(True)
    seen = len(index.requests)

    with bodega_process(data_dir, index.simple_url, "--index-ttl", "0", env=database) as bodega:
        for accept in (JSON, HTML):
            response = fetch(page_url(bodega), accept)
            assert response.status_code == 200
            assert response.headers["X-Bodega-Stale"] == "1"
            assert response.headers["Content-Type"].startswith(accept)
            assert response.content == warmed[accept]
        assert_is_the_wheel(fetch(file_url(bodega)))
    assert len(index.requests) == seen


def test_offline_serves_only_what_is_cached_and_never_contacts_upstream(
    index: FakeIndex, data_dir: Path, database: dict[str, str]
) -> None:
    with bodega_process(data_dir, index.simple_url, env=database) as bodega:
        warmed = warm(bodega)
    index.add("demo", NEWER)
    seen = len(index.requests)

    with bodega_process(data_dir, index.simple_url, "--offline", env=database) as bodega:
        for accept in (JSON, HTML):
            response = fetch(page_url(bodega), accept)
            assert response.status_code == 200
            assert response.content == warmed[accept]
            assert NEWER.filename not in response.text
        assert_is_the_wheel(fetch(file_url(bodega)))
        assert fetch(page_url(bodega, "other")).status_code == 404
        assert fetch(file_url(bodega, OTHER)).status_code == 404
        assert fetch(file_url(bodega, NEWER)).status_code == 404
    assert len(index.requests) == seen
