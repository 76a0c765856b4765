"""Real installers (the current pip and uv) installing through bodega in a subprocess.

Every client is isolated (see the conformance spec, "Isolating clients in tests"): no config
files, no inherited PIP_*/UV_* variables, fresh caches, and proxies that point at a closed
loopback port, so any request that is not for 127.0.0.1 fails at once instead of leaving the box.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.version import Version

from tests.support.distributions import BuiltFile, build_wheel
from tests.support.fake_index import FakeIndex
from tests.support.servers import BodegaProcess, bodega_process

DEAD_PROXY = "http://127.0.0.1:9"
UV = Path(sys.executable).parent / "uv"
MODULES = ("app", "liba", "libb", "libc")
# The newest release of each project that this interpreter can install.
NEWEST = {"app": "2.0", "liba": "1.1", "libb": "1.0", "libc": "2.0"}
_STRIPPED_PREFIXES = ("PIP_", "UV_", "BODEGA_")
_STRIPPED = {
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONUSERBASE",
    "VIRTUAL_ENV",
    "CONDA_PREFIX",
    "ALL_PROXY",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
}


def _published_files() -> dict[str, list[BuiltFile]]:
    return {
        "app": [
            build_wheel("app", "1.0", requires=["liba>=1", "libb"]),
            build_wheel("app", "2.0", requires=["liba>=1", "libb"], payload_size=200_000),
        ],
        "liba": [
            build_wheel("liba", "0.9"),
            build_wheel("liba", "1.0", requires=["libc"]),
            build_wheel("liba", "1.1", requires=["libc>=1.5"]),
        ],
        "libb": [build_wheel("libb", "1.0", payload_size=50_000)],
        "libc": [
            build_wheel("libc", "1.0"),
            build_wheel("libc", "2.0"),
            # Newer, but no Python can install it: bodega must keep data-requires-python.
            build_wheel("libc", "3.0", requires_python=">=4"),
        ],
    }


def _isolated_env(**extra: str) -> dict[str, str]:
    """The environment minus anything that could point a client elsewhere, plus dead proxies."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.upper().startswith(_STRIPPED_PREFIXES) and key.upper() not in _STRIPPED
    }
    for name in ("HTTP_PROXY", "HTTPS_PROXY"):
        env[name] = env[name.lower()] = DEAD_PROXY
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1"
    env.update(extra)
    return env


def _pip_env(cache: Path) -> dict[str, str]:
    return _isolated_env(
        PIP_CONFIG_FILE=os.devnull,
        PIP_CACHE_DIR=str(cache),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
    )


def _uv_env(cache: Path) -> dict[str, str]:
    return _isolated_env(UV_NO_CONFIG="1", UV_CACHE_DIR=str(cache), UV_PYTHON_DOWNLOADS="never")


def _run(command: list[str], env: dict[str, str], cwd: Path, server: BodegaProcess) -> str:
    result = subprocess.run(
        command, env=env, cwd=cwd, capture_output=True, text=True, timeout=90, check=False
    )
    assert result.returncode == 0, (
        f"{command} exited {result.returncode}\n--- stdout\n{result.stdout}"
        f"\n--- stderr\n{result.stderr}\n--- bodega log\n{''.join(server.log)}"
    )
    return result.stdout


def _new_venv(path: Path) -> Path:
    """An empty target environment (no pip inside); returns its interpreter."""
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(path)],
        env=_isolated_env(),
        check=True,
        capture_output=True,
        timeout=60,
    )
    return path / "bin" / "python"


def _installed_versions(python: Path, cwd: Path) -> dict[str, str]:
    """Imports every module in the target (isolated mode: no cwd, no PYTHON* variables)."""
    script = (
        f"import json, {', '.join(MODULES)}\n"
        f"print(json.dumps({{m.__name__: m.__version__ for m in ({', '.join(MODULES)},)}}))"
    )
    result = subprocess.run(
        [str(python), "-I", "-c", script],
        env=_isolated_env(),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    versions: dict[str, str] = json.loads(result.stdout)
    return versions


def _pip_install(server: BodegaProcess, work: Path) -> dict[str, str]:
    """The current pip, from the dev environment, installs app into a fresh venv in `work`."""
    python = _new_venv(work / "venv")
    command = [sys.executable, "-m", "pip", "--python", str(python), "install"]
    command += ["--index-url", f"{server.url}simple/", "app"]
    _run(command, _pip_env(work / "pip-cache"), work, server)
    return _installed_versions(python, work)


def _uv_install(server: BodegaProcess, work: Path) -> dict[str, str]:
    """uv installs app into a fresh venv in `work`, with a fresh cache."""
    python = _new_venv(work / "venv")
    command = [str(UV), "pip", "install", "--python", str(python)]
    command += ["--index-url", f"{server.url}simple/", "app"]
    _run(command, _uv_env(work / "uv-cache"), work, server)
    return _installed_versions(python, work)


@pytest.fixture(scope="module", autouse=True)
def current_installers(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Makes sure the tests drive the current pip and uv, not whatever is on PATH."""
    scratch = tmp_path_factory.mktemp("installer-versions")
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "--version"],
        env=_pip_env(scratch / "pip-cache"),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert Version(pip.stdout.split()[1]) >= Version("25"), pip.stdout
    assert UV.is_file(), f"uv is not installed next to {sys.executable}"
    subprocess.run(
        [str(UV), "--version"],
        env=_uv_env(scratch / "uv-cache"),
        capture_output=True,
        timeout=60,
        check=True,
    )


@pytest.fixture
def published(fake_index: FakeIndex) -> dict[str, list[BuiltFile]]:
    files = _published_files()
    for project, built in files.items():
        for file in built:
            fake_index.add(project, file)
    return files


@pytest.fixture
def bodega(
    tmp_path: Path, fake_index: FakeIndex, published: dict[str, list[BuiltFile]]
) -> Iterator[BodegaProcess]:
    # Requesting `published` puts the tree on the fake index before bodega starts. bodega gets
    # the dead proxies too: it may reach the fake index on 127.0.0.1 and nothing else.
    proxies = {k: v for k, v in _isolated_env().items() if k.upper().endswith("_PROXY")}
    with bodega_process(
        tmp_path / "data", fake_index.simple_url, "--index-ttl", "600", env=proxies
    ) as server:
        yield server


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
