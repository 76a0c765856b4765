"""The current pip's `pip search`, configured as the seed's pip.conf did (`[search] index =
.../root/pypi/`), through bodega in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.clients import isolated_env
from tests.support.distributions import build_wheel
from tests.support.fake_index import FakeIndex
from tests.support.servers import BodegaProcess, bodega_process

REQUESTS = build_wheel("requests", "2.32.0", summary="Python HTTP for Humans.")


@pytest.fixture
def bodega(fake_index: FakeIndex, tmp_path: Path) -> Iterator[BodegaProcess]:
    fake_index.add("requests", REQUESTS)
    fake_index.add("requests-toolbelt", build_wheel("requests-toolbelt", "1.0.0"))
    fake_index.add("six", build_wheel("six", "1.17.0"))
    env = {"BODEGA_SEARCH_REFRESH": "3600"}
    with bodega_process(tmp_path / "data", fake_index.simple_url, env=env) as server:
        _wait_for_names(server, 3)
        yield server


def _get(url: str) -> bytes:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=10) as response:
        body: bytes = response.read()
        return body


def _wait_for_names(server: BodegaProcess, count: int) -> None:
    deadline = time.monotonic() + 30
    while json.loads(_get(f"{server.url}+status.json"))["search"]["names"] < count:
        assert time.monotonic() < deadline, "the root list was not synced for search"
        time.sleep(0.05)


def _pip_search(
    server: BodegaProcess, tmp_path: Path, *query: str
) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "pip.conf"
    config.write_text(f"[search]\nindex = {server.url}root/pypi/\n")
    env = isolated_env(
        PIP_CONFIG_FILE=str(config),
        PIP_CACHE_DIR=str(tmp_path / "pip-cache"),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
    )
    return subprocess.run(
        [sys.executable, "-m", "pip", "search", *query],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_pip_search_requests_prints_results_through_bodega(
    bodega: BodegaProcess, tmp_path: Path
) -> None:
    # A client fetched the page and core metadata once: search knows summary and version.
    _get(f"{bodega.url}simple/requests/")
    _get(f"{bodega.url}files/requests/{REQUESTS.filename}.metadata")
    deadline = time.monotonic() + 30
    while "Humans" not in (result := _pip_search(bodega, tmp_path, "requests")).stdout:
        assert result.returncode == 0, result.stderr
        assert time.monotonic() < deadline, result.stdout
        time.sleep(0.1)
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["requests", "(2.32.0)", "-", "Python", "HTTP", "for", "Humans."]
    assert lines[1].startswith("requests-toolbelt (0+unknown)")
    assert "six" not in result.stdout


def test_pip_search_with_no_match_exits_23_without_a_traceback(
    bodega: BodegaProcess, tmp_path: Path
) -> None:
    result = _pip_search(bodega, tmp_path, "nothing-like-this")
    assert result.returncode == 23  # pip's NO_MATCHES_FOUND
    assert "Traceback" not in result.stderr
