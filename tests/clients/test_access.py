"""A private index whose `read` is restricted (issue 13), with real installers: pip is
refused with a 401 without credentials, and installs with a token in the index URL and
through .netrc; uv installs with a token in the URL and through .netrc."""

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bodega.core.access import Action
from tests.support.accounts import make_token_with_cli
from tests.support.clients import (
    MODULES,
    NEWEST,
    client_tool,
    installed_versions,
    isolated_env,
    new_venv,
    pip_env,
    published_tree,
    run,
    uv_env,
)
from tests.support.fake_index import FakeIndex
from tests.support.servers import BodegaProcess

UV = Path(sys.executable).parent / "uv"


@pytest.fixture
def private() -> Iterator[FakeIndex]:
    """Stands in for a hosted index until those land: what matters here is its rules."""
    with FakeIndex() as index:
        for project, files in published_tree().items():
            for file in files:
                index.add(project, file)
        yield index


@pytest.fixture
def config(private: FakeIndex, tmp_path: Path) -> Path:
    path = tmp_path / "bodega.toml"
    path.write_text(
        'default_index = "root/pypi"\n'
        '[indexes."root/pypi"]\n'
        'type = "mirror"\n'
        f'upstream = "{private.simple_url}"\n'
        '[indexes."acme/private"]\n'
        'type = "mirror"\n'
        f'upstream = "{private.simple_url}"\n'
        'read = ["ci"]\n'
    )
    return path


@pytest.fixture
def token(config: Path, tmp_path: Path) -> str:
    """A read token of the account `ci`, made by the CLI as an operator would."""
    return make_token_with_cli(
        tmp_path / "data", "ci", config=config, indexes=["acme/private"], scope=Action.READ
    )


@pytest.fixture
def bodega(config: Path, token: str, tmp_path: Path) -> Iterator[BodegaProcess]:
    proxies = {k: v for k, v in isolated_env().items() if k.upper().endswith("_PROXY")}
    server = BodegaProcess(["--config", str(config), "--data-dir", str(tmp_path / "data")], proxies)
    try:
        yield server
    finally:
        server.stop()


def pip_command(python: Path) -> list[str]:
    return [str(client_tool("pip-current", "python")), "-m", "pip", "--python", str(python)]


def test_pip_without_credentials_is_refused_with_a_401(
    bodega: BodegaProcess, tmp_path: Path
) -> None:
    python = new_venv(tmp_path / "venv")
    index = ["--index-url", f"{bodega.url}acme/private/+simple/"]
    result = subprocess.run(
        [*pip_command(python), "install", *index, "app"],
        env=pip_env(tmp_path / "cache"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    # pip reads a 401 it has no credentials for as "no such project" (said with -v only).
    assert "No matching distribution found for app" in result.stderr
    refused = '"GET /acme/private/+simple/app/ HTTP/1.1" 401'
    assert wait_for_line(bodega, refused)


def wait_for_line(server: BodegaProcess, text: str) -> bool:
    """Whether bodega's log (read on another thread) shows `text` within a few seconds."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if any(text in line for line in list(server.log)):
            return True
        time.sleep(0.05)
    return False


def test_pip_installs_with_a_token_in_the_index_url(
    bodega: BodegaProcess, token: str, tmp_path: Path
) -> None:
    python = new_venv(tmp_path / "venv")
    with_token = bodega.url.replace("http://", f"http://__token__:{token}@")
    index = ["--index-url", f"{with_token}acme/private/+simple/"]
    run([*pip_command(python), "install", *index, "app"], pip_env(tmp_path / "c"), tmp_path, bodega)
    assert installed_versions(python, MODULES, tmp_path) == NEWEST
    assert token not in "".join(bodega.log)


def test_pip_installs_with_a_token_from_netrc(
    bodega: BodegaProcess, token: str, tmp_path: Path
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1\nlogin __token__\npassword {token}\n")
    netrc.chmod(0o600)
    python = new_venv(tmp_path / "venv")
    index = ["--index-url", f"{bodega.url}acme/private/+simple/"]
    env = pip_env(tmp_path / "c", NETRC=str(netrc))
    run([*pip_command(python), "install", *index, "app"], env, tmp_path, bodega)
    assert installed_versions(python, MODULES, tmp_path) == NEWEST


def test_uv_installs_with_a_token_in_the_index_url(
    bodega: BodegaProcess, token: str, tmp_path: Path
) -> None:
    python = new_venv(tmp_path / "venv")
    with_token = bodega.url.replace("http://", f"http://__token__:{token}@")
    command = [str(UV), "pip", "install", "--python", str(python)]
    command += ["--default-index", f"{with_token}acme/private/+simple/", "app"]
    run(command, uv_env(tmp_path / "cache"), tmp_path, bodega)
    assert installed_versions(python, MODULES, tmp_path) == NEWEST


def test_uv_installs_with_a_token_from_netrc(
    bodega: BodegaProcess, token: str, tmp_path: Path
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1\nlogin __token__\npassword {token}\n")
    netrc.chmod(0o600)
    python = new_venv(tmp_path / "venv")
    command = [str(UV), "pip", "install", "--python", str(python)]
    command += ["--default-index", f"{bodega.url}acme/private/+simple/", "app"]
    run(command, uv_env(tmp_path / "cache", NETRC=str(netrc)), tmp_path, bodega)
    assert installed_versions(python, MODULES, tmp_path) == NEWEST
