"""Supply-chain policy with real installers (issue 15): pip and uv resolve to the release
that is old enough, break-glass makes the new one installable at once, and the clients' own
cut-offs (pip --uploaded-prior-to, uv --exclude-newer) work through bodega on the upload
times it passes on."""

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.test_cli import clean_environ, run_bodega
from tests.support.clients import client_tool, isolated_env, new_venv, pip_env, run, uv_env
from tests.support.distributions import build_wheel
from tests.support.fake_index import FakeIndex
from tests.support.servers import BodegaProcess, bodega_process
from tests.support.waiting import wait_for

UV = Path(sys.executable).parent / "uv"  # the dev extra pins uv
OLD = build_wheel("pkg", "1.0")
NEW = build_wheel("pkg", "2.0")


def iso(seconds_ago: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - seconds_ago))


@pytest.fixture
def upstream(fake_index: FakeIndex) -> FakeIndex:
    fake_index.add("pkg", OLD, upload_time="2020-01-01T00:00:00Z")
    fake_index.add("pkg", NEW, upload_time=iso(3600))  # published an hour ago
    return fake_index


def start(upstream: FakeIndex, tmp_path: Path, *args: str) -> Iterator[BodegaProcess]:
    proxies = {k: v for k, v in isolated_env().items() if k.upper().endswith("_PROXY")}
    with bodega_process(tmp_path / "data", upstream.simple_url, *args, env=proxies) as server:
        yield server


@pytest.fixture
def cooling(upstream: FakeIndex, tmp_path: Path) -> Iterator[BodegaProcess]:
    """bodega holding back what is younger than a day."""
    yield from start(upstream, tmp_path, "--min-release-age", "1d")


@pytest.fixture
def plain(upstream: FakeIndex, tmp_path: Path) -> Iterator[BodegaProcess]:
    yield from start(upstream, tmp_path)


def pip_install(server: BodegaProcess, tmp_path: Path, name: str, *extra: str) -> str:
    venv = tmp_path / f"venv-pip-{time.monotonic_ns()}"
    python = new_venv(venv)
    pip = [str(client_tool("pip-current", "python")), "-m", "pip", "--python", str(python)]
    command = [*pip, "install", "--index-url", f"{server.url}simple/", *extra, name]
    run(command, pip_env(tmp_path / "pip-cache"), tmp_path, server)
    return installed(venv)


def uv_install(server: BodegaProcess, tmp_path: Path, name: str, *extra: str) -> str:
    venv = tmp_path / f"venv-uv-{time.monotonic_ns()}"
    python = new_venv(venv)
    command = [str(UV), "pip", "install", "--python", str(python), "--no-cache"]
    command += ["--default-index", f"{server.url}simple/", *extra, name]
    run(command, uv_env(tmp_path / "uv-cache"), tmp_path, server)
    return installed(venv)


def installed(venv: Path) -> str:
    """The version of pkg in the venv, from its dist-info directory's name."""
    found = list(venv.glob("lib/python*/site-packages/pkg-*.dist-info"))
    assert len(found) == 1, found
    return found[0].name.removeprefix("pkg-").removesuffix(".dist-info")


def allow(server: BodegaProcess, tmp_path: Path, *args: str) -> str:
    environ = clean_environ(BODEGA_DATA_DIR=str(tmp_path / "data"))
    result = run_bodega("allow", *args, env=environ)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_pip_and_uv_resolve_to_the_release_old_enough_until_break_glass(
    cooling: BodegaProcess, tmp_path: Path
) -> None:
    assert pip_install(cooling, tmp_path, "pkg") == "1.0"
    assert uv_install(cooling, tmp_path, "pkg") == "1.0"
    allow(cooling, tmp_path, "pkg==2.0", "--reason", "the fix we need", "--until", "2d")
    wait_for(lambda: "2.0" in _versions(cooling), seconds=5)
    # pip revalidates the page it holds (max-age=0 within --revalidate-after): --no-cache-dir
    # and uv's --no-cache keep the clients' own caches out of it.
    assert pip_install(cooling, tmp_path, "pkg==2.0", "--no-cache-dir") == "2.0"
    assert uv_install(cooling, tmp_path, "pkg") == "2.0"


def test_pip_uploaded_prior_to_and_uv_exclude_newer_work_through_bodega(
    plain: BodegaProcess, tmp_path: Path
) -> None:
    cutoff = iso(2 * 3600)  # before 2.0's upload an hour ago
    assert pip_install(plain, tmp_path, "pkg", "--uploaded-prior-to", cutoff) == "1.0"
    assert uv_install(plain, tmp_path, "pkg", "--exclude-newer", cutoff) == "1.0"
    assert pip_install(plain, tmp_path, "pkg", "--uploaded-prior-to", iso(60)) == "2.0"
    assert uv_install(plain, tmp_path, "pkg") == "2.0"


def _versions(server: BodegaProcess) -> str:
    response = httpx.get(
        f"{server.url}simple/pkg/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
        trust_env=False,
    )
    return " ".join(response.json()["versions"])
