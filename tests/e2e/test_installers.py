"""Real installers (the current pip and uv) installing through bodega in a subprocess.

Every client is isolated (see the conformance spec, "Isolating clients in tests"): no config
files, no inherited PIP_*/UV_* variables, fresh caches, and proxies that point at a closed
loopback port, so any request that is not for 127.0.0.1 fails at once instead of leaving the box.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from packaging.version import Version

from tests.support.clients import (
    MODULES,
    NEWEST,
    installed_versions,
    new_venv,
    pip_env,
    run,
    uv_env,
)
from tests.support.distributions import BuiltFile
from tests.support.fake_index import FakeIndex
from tests.support.servers import BodegaProcess

UV = Path(sys.executable).parent / "uv"


def _pip_install(server: BodegaProcess, work: Path) -> dict[str, str]:
    """The current pip, from the dev environment, installs app into a fresh venv in `work`."""
    python = new_venv(work / "venv")
    command = [sys.executable, "-m", "pip", "--python", str(python), "install"]
    command += ["--index-url", f"{server.url}simple/", "app"]
    run(command, pip_env(work / "pip-cache"), work, server)
    return installed_versions(python, MODULES, work)


def _uv_install(server: BodegaProcess, work: Path) -> dict[str, str]:
    """uv installs app into a fresh venv in `work`, with a fresh cache."""
    python = new_venv(work / "venv")
    command = [str(UV), "pip", "install", "--python", str(python)]
    command += ["--index-url", f"{server.url}simple/", "app"]
    run(command, uv_env(work / "uv-cache"), work, server)
    return installed_versions(python, MODULES, work)


@pytest.fixture(scope="module", autouse=True)
def current_installers(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Makes sure the tests drive the current pip and uv, not whatever is on PATH."""
    scratch = tmp_path_factory.mktemp("installer-versions")
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "--version"],
        env=pip_env(scratch / "pip-cache"),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert Version(pip.stdout.split()[1]) >= Version("25"), pip.stdout
    assert UV.is_file(), f"uv is not installed next to {sys.executable}"
    subprocess.run(
        [str(UV), "--version"],
        env=uv_env(scratch / "uv-cache"),
        capture_output=True,
        timeout=60,
        check=True,
    )


def test_current_pip_installs_newest_versions_with_dependencies_through_bodega(
    bodega: BodegaProcess, tmp_path: Path
) -> None:
    assert _pip_install(bodega, tmp_path / "pip") == NEWEST


def test_uv_installs_newest_versions_with_dependencies_through_bodega(
    bodega: BodegaProcess, tmp_path: Path
) -> None:
    assert _uv_install(bodega, tmp_path / "uv") == NEWEST


def test_pip_and_uv_install_from_cache_with_upstream_down_after_one_download_per_file(
    bodega: BodegaProcess,
    fake_index: FakeIndex,
    published: dict[str, list[BuiltFile]],
    tmp_path: Path,
) -> None:
    assert _pip_install(bodega, tmp_path / "pip-online") == NEWEST
    assert _uv_install(bodega, tmp_path / "uv-online") == NEWEST

    fake_index.set_down(True)
    seen = len(fake_index.requests)
    # Fresh client caches and fresh targets: everything has to come from bodega's cache.
    assert _pip_install(bodega, tmp_path / "pip-offline") == NEWEST
    assert _uv_install(bodega, tmp_path / "uv-offline") == NEWEST
    assert len(fake_index.requests) == seen

    for project, built in published.items():
        for file in built:
            installed = file.filename == f"{project}-{NEWEST[project]}-py3-none-any.whl"
            assert fake_index.count("GET", f"/{file.filename}") == int(installed), file.filename
            assert fake_index.count("GET", f"/{file.filename}.metadata") <= 1, file.filename
