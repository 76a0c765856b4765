"""Pipenv with PIPENV_PYPI_MIRROR: `pipenv lock` + `pipenv sync`. Its hash probe asks
`<mirror>/<project>/` with `Accept: */*`, which a mirror URL ending in "/" turns into
`/simple//<project>/` (spec finding 2, item 4)."""

from pathlib import Path

import pytest

from tests.clients.conftest import served
from tests.support.clients import (
    BASE_PYTHON,
    MODULES,
    NEWEST,
    client_tool,
    installed_versions,
    pip_env,
    run,
)
from tests.support.servers import BodegaProcess


@pytest.mark.timeout(400)  # Pipenv runs its resolver in subprocesses: over a minute here
def test_pipenv_locks_and_syncs_through_a_mirror_url(bodega: BodegaProcess, tmp_path: Path) -> None:
    pipenv = str(client_tool("pipenv", "pipenv"))
    project = tmp_path / "project"
    project.mkdir()
    # No [[source]]: Pipenv then uses its default, which the mirror variable replaces.
    (project / "Pipfile").write_text('[packages]\napp = "*"\n')
    env = pip_env(
        tmp_path / "pip-cache",
        PIPENV_PYPI_MIRROR=f"{bodega.url}simple/",
        PIPENV_VENV_IN_PROJECT="1",
        PIPENV_CACHE_DIR=str(tmp_path / "pipenv-cache"),
        PIPENV_NOSPIN="1",
        PIPENV_YES="1",
        PIPENV_IGNORE_VIRTUALENVS="1",
        WORKON_HOME=str(tmp_path / "venvs"),
    )
    run([pipenv, "--python", BASE_PYTHON], env, project, bodega, timeout=180)
    run([pipenv, "lock"], env, project, bodega, timeout=180)
    run([pipenv, "sync"], env, project, bodega, timeout=180)
    python = project / ".venv" / "bin" / "python"
    assert installed_versions(python, MODULES, tmp_path) == NEWEST
    assert served(bodega, "GET /simple//app/")
