"""PDM: `pdm config pypi.url`, `pdm lock`, `pdm install` (hishel pinned, spec finding 11),
and its `pypi.json_api`, which asks bodega's JSON API for each release's dependencies."""

from pathlib import Path

import pytest

from tests.clients.conftest import served
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


@pytest.mark.parametrize("json_api", [False, True], ids=["simple-api", "json-api"])
def test_pdm_locks_and_installs_through_bodega(
    bodega: BodegaProcess, tmp_path: Path, json_api: bool
) -> None:
    pdm = str(client_tool("pdm", "pdm"))
    project = consumer_project(
        tmp_path,
        "[tool.pdm]\ndistribution = false\n",
    )
    env = isolated_env(
        PDM_CONFIG_FILE=str(tmp_path / "pdm-config.toml"),
        PDM_CACHE_DIR=str(tmp_path / "cache"),
        PDM_CHECK_UPDATE="false",
        PDM_NON_INTERACTIVE="1",
        PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
    )
    run([pdm, "config", "pypi.url", f"{bodega.url}simple"], env, project, bodega)
    if json_api:
        run([pdm, "config", "pypi.json_api", "true"], env, project, bodega)
    run([pdm, "use", "--first", BASE_PYTHON], env, project, bodega)
    run([pdm, "lock"], env, project, bodega)
    run([pdm, "install"], env, project, bodega)
    python = project / ".venv" / "bin" / "python"
    assert installed_versions(python, MODULES, tmp_path) == NEWEST
    if json_api:
        assert served(bodega, "GET /pypi/app/2.0/json")
