"""Poetry 2: `poetry source add --priority=primary`, `poetry lock`, `poetry install`."""

from pathlib import Path

from tests.support.clients import (
    BASE_PYTHON,
    MODULES,
    NEWEST,
    client_tool,
    consumer_project,
    installed_versions,
    isolated_env,
    run,
)
from tests.support.servers import BodegaProcess


def test_poetry_locks_and_installs_from_bodega_as_its_primary_source(
    bodega: BodegaProcess, tmp_path: Path
) -> None:
    poetry = str(client_tool("poetry", "poetry"))
    project = consumer_project(
        tmp_path,
        "[tool.poetry]\npackage-mode = false\n",
    )
    env = isolated_env(
        POETRY_CONFIG_DIR=str(tmp_path / "config"),
        POETRY_CACHE_DIR=str(tmp_path / "cache"),
        POETRY_DATA_DIR=str(tmp_path / "data"),
        POETRY_VIRTUALENVS_IN_PROJECT="true",
        POETRY_NO_INTERACTION="1",
        PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
    )
    source = ["source", "add", "--priority=primary", "bodega", f"{bodega.url}simple/"]
    run([poetry, *source], env, project, bodega)
    run([poetry, "env", "use", BASE_PYTHON], env, project, bodega)
    run([poetry, "lock"], env, project, bodega)
    run([poetry, "install"], env, project, bodega)
    python = project / ".venv" / "bin" / "python"
    assert installed_versions(python, MODULES, tmp_path) == NEWEST
