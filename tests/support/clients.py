"""Running real installers against bodega, each isolated from this machine's configuration.

Isolation follows the conformance spec, "Isolating clients in tests": no config files, no
inherited PIP_*/UV_* variables, fresh caches, and proxies that point at a closed loopback
port, so any request that is not for 127.0.0.1 fails at once instead of leaving the box.

The installers of the client suite live in venvs of their own under `.venv-clients/<name>/`,
made by `./dev test` from `tests/clients/requirements/<name>.txt`.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.distributions import BuiltFile, build_wheel
from tests.support.servers import BodegaProcess

MODULES = ("app", "liba", "libb", "libc")
# The newest release of each project that this interpreter can install.
NEWEST = {"app": "2.0", "liba": "1.1", "libb": "1.0", "libc": "2.0"}


DEAD_PROXY = "http://127.0.0.1:9"
REPOSITORY = Path(__file__).resolve().parents[2]
# BODEGA_CLIENT_VENVS: another checkout's venvs (a worktree shares the main checkout's).
CLIENT_VENVS = Path(os.environ.get("BODEGA_CLIENT_VENVS", REPOSITORY / ".venv-clients"))
# The interpreter behind the test venv: a tool given the venv's own python would install
# into the test environment itself instead of making a project venv.
BASE_PYTHON = str(Path(sys.base_prefix) / "bin" / "python3")
_STRIPPED_PREFIXES = ("PIP_", "UV_", "BODEGA_", "POETRY_", "PDM_", "PIPENV_", "VIRTUALENV_")
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


def isolated_env(**extra: str) -> dict[str, str]:
    """The environment minus anything that could point a client elsewhere, plus dead proxies."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.upper().startswith(_STRIPPED_PREFIXES) and key.upper() not in _STRIPPED
    }
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        env[name] = env[name.lower()] = DEAD_PROXY
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1"
    env.update(extra)
    return env


def pip_env(cache: Path, **extra: str) -> dict[str, str]:
    return isolated_env(
        PIP_CONFIG_FILE=os.devnull,
        PIP_CACHE_DIR=str(cache),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
        **extra,
    )


def uv_env(cache: Path, **extra: str) -> dict[str, str]:
    return isolated_env(
        UV_NO_CONFIG="1", UV_CACHE_DIR=str(cache), UV_PYTHON_DOWNLOADS="never", **extra
    )


def run(
    command: list[str], env: dict[str, str], cwd: Path, server: BodegaProcess, timeout: int = 120
) -> str:
    """Runs a client to success, or fails with everything it and bodega said."""
    result = subprocess.run(
        command, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, (
        f"{command} exited {result.returncode}\n--- stdout\n{result.stdout}"
        f"\n--- stderr\n{result.stderr}\n--- bodega log\n{''.join(server.log)}"
    )
    return result.stdout


def new_venv(path: Path) -> Path:
    """An empty target environment (no pip inside); returns its interpreter."""
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(path)],
        env=isolated_env(),
        check=True,
        capture_output=True,
        timeout=60,
    )
    return path / "bin" / "python"


def installed_versions(python: Path, modules: tuple[str, ...], cwd: Path) -> dict[str, str]:
    """Imports every module in the target (isolated mode: no cwd, no PYTHON* variables)."""
    script = (
        f"import json, {', '.join(modules)}\n"
        f"print(json.dumps({{m.__name__: m.__version__ for m in ({', '.join(modules)},)}}))"
    )
    result = subprocess.run(
        [str(python), "-I", "-c", script],
        env=isolated_env(),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    versions: dict[str, str] = json.loads(result.stdout)
    return versions


def client_tool(client: str, executable: str) -> Path:
    """An installer from its pinned venv. Outside `./dev test` a missing venv skips the test
    with the command that makes it; under `./dev test` (BODEGA_REQUIRE_CLIENTS=1) it fails."""
    path = CLIENT_VENVS / client / "bin" / executable
    if not path.is_file():
        message = f"{path} is missing: run ./dev test once to install the pinned clients"
        if os.environ.get("BODEGA_REQUIRE_CLIENTS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


def published_tree() -> dict[str, list[BuiltFile]]:
    """The projects every client installs: app needs liba and libb, liba needs libc."""
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


def consumer_project(parent: Path, tool_table: str) -> Path:
    """A project that depends on `app` (the published tree's root), for lock-and-install
    flows; `tool_table` is the client's own table, e.g. '[tool.uv]\npackage = false\n'."""
    project = parent / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        "[project]\n"
        'name = "consumer"\n'
        'version = "0"\n'
        'requires-python = ">=3.11"\n'
        'dependencies = ["app"]\n' + tool_table
    )
    return project
