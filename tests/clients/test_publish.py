"""Publishing to a hosted index (issue 13) with real publishers, and installing what they
uploaded with real installers through a virtual index (`acme/all` = `root/pypi` +
`acme/private`), where a private name shadows the upstream one whatever its version."""

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
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
from tests.support.distributions import BuiltFile, build_sdist, build_wheel
from tests.support.fake_index import FakeIndex
from tests.support.servers import BodegaProcess, bodega_process

UV = Path(sys.executable).parent / "uv"
# The private acme-lib; upstream publishes a squatter's 9.0 under the same name.
PRIVATE = (build_wheel("acme-lib", "1.0", requires=["liba"]), build_sdist("acme-lib", "1.0"))
SQUATTER = build_wheel("acme-lib", "9.0")


@pytest.fixture
def public() -> Iterator[FakeIndex]:
    with FakeIndex() as index:
        for project, files in published_tree().items():
            for file in files:
                index.add(project, file)
        index.add("acme-lib", SQUATTER)
        yield index


@pytest.fixture
def bodega(public: FakeIndex, tmp_path: Path) -> Iterator[BodegaProcess]:
    config = tmp_path / "bodega.toml"
    config.write_text(
        'default_index = "root/pypi"\n'
        '[indexes."root/pypi"]\n'
        'type = "mirror"\n'
        f'upstream = "{public.simple_url}"\n'
        '[indexes."acme/private"]\n'
        'type = "hosted"\n'
        'reserved = ["acme-lib"]\n'
        'upload = ["ci"]\n'
        '[indexes."acme/all"]\n'
        'type = "virtual"\n'
        'bases = ["root/pypi", "acme/private"]\n'
    )
    proxies = {k: v for k, v in isolated_env().items() if k.upper().endswith("_PROXY")}
    with bodega_process(
        tmp_path / "data", public.simple_url, "--config", str(config), env=proxies
    ) as server:
        yield server


@pytest.fixture
def token(bodega: BodegaProcess, tmp_path: Path) -> tuple[str, ...]:
    """Credentials of `ci`, who may upload to acme/private, made beside the running server,
    as publisher options."""
    made = make_token_with_cli(
        tmp_path / "data", "ci", config=tmp_path / "bodega.toml", indexes=["acme/private"]
    )
    return ("-u", "__token__", "-p", made)


def _dist(tmp_path: Path, files: tuple[BuiltFile, ...]) -> list[str]:
    dist = tmp_path / "dist"
    dist.mkdir(exist_ok=True)
    for built in files:
        (dist / built.filename).write_bytes(built.data)
    return [str(dist / built.filename) for built in files]


def _pip_installs_the_private_one(bodega: BodegaProcess, public: FakeIndex, tmp_path: Path) -> None:
    python = new_venv(tmp_path / "venv")
    pip = [str(client_tool("pip-current", "python")), "-m", "pip", "--python", str(python)]
    index = ["--index-url", f"{bodega.url}acme/all/+simple/", "--trusted-host", "127.0.0.1"]
    run([*pip, "install", *index, "acme-lib", "app"], pip_env(tmp_path / "c"), tmp_path, bodega)
    versions = installed_versions(python, (*MODULES, "acme_lib"), tmp_path)
    assert versions == {**NEWEST, "acme_lib": "1.0"}
    assert public.count("GET", SQUATTER.filename) == 0
    assert public.count("GET", "/acme-lib/") == 0


def test_twine_uploads_and_pip_installs_the_private_name(
    bodega: BodegaProcess, public: FakeIndex, tmp_path: Path, token: tuple[str, ...]
) -> None:
    twine = str(client_tool("twine", "twine"))
    url = ["--repository-url", f"{bodega.url}acme/private/"]
    files = _dist(tmp_path, PRIVATE)
    env = isolated_env(TWINE_NON_INTERACTIVE="1", HOME=str(tmp_path))
    run([twine, "upload", *url, *token, "--disable-progress-bar", *files], env, tmp_path, bodega)
    _pip_installs_the_private_one(bodega, public, tmp_path)


def test_twine_shows_the_reason_of_a_refusal(
    bodega: BodegaProcess, tmp_path: Path, token: tuple[str, ...]
) -> None:
    twine = str(client_tool("twine", "twine"))
    url = ["--repository-url", f"{bodega.url}acme/private/"]
    files = _dist(tmp_path, PRIVATE[:1])
    env = isolated_env(TWINE_NON_INTERACTIVE="1", HOME=str(tmp_path))
    run([twine, "upload", *url, *token, "--disable-progress-bar", *files], env, tmp_path, bodega)
    again = subprocess.run(
        [twine, "upload", *url, *token, "--disable-progress-bar", *files],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert again.returncode != 0
    assert "File already exists" in again.stdout + again.stderr


def test_twine_without_the_upload_right_is_refused_and_nothing_stored(
    bodega: BodegaProcess, tmp_path: Path
) -> None:
    twine = str(client_tool("twine", "twine"))
    url = ["--repository-url", f"{bodega.url}acme/private/"]
    files = _dist(tmp_path, PRIVATE[:1])
    env = isolated_env(TWINE_NON_INTERACTIVE="1", HOME=str(tmp_path))
    config = tmp_path / "bodega.toml"
    reader = make_token_with_cli(
        tmp_path / "data", "reader", config=config, indexes=["acme/private"], scope=Action.READ
    )
    anonymous = ("-u", "__token__", "-p", "bodega_wrong_token")
    for credentials, status in ((anonymous, "401"), (("-u", "__token__", "-p", reader), "403")):
        refused = subprocess.run(
            [twine, "upload", *url, *credentials, "--disable-progress-bar", *files],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert refused.returncode != 0
        assert status in refused.stdout + refused.stderr
    page = httpx.get(f"{bodega.url}acme/private/+simple/acme-lib/", trust_env=False)
    assert PRIVATE[0].filename not in page.text


def test_uv_publishes_and_installs_the_private_name(
    bodega: BodegaProcess, public: FakeIndex, tmp_path: Path, token: tuple[str, ...]
) -> None:
    files = _dist(tmp_path, PRIVATE)
    publish = [str(UV), "publish", "--publish-url", f"{bodega.url}acme/private/", *token]
    run([*publish, *files], uv_env(tmp_path / "cache"), tmp_path, bodega)
    python = new_venv(tmp_path / "venv")
    command = [str(UV), "pip", "install", "--python", str(python)]
    command += ["--default-index", f"{bodega.url}acme/all/+simple/", "acme-lib", "app"]
    run(command, uv_env(tmp_path / "cache"), tmp_path, bodega)
    versions = installed_versions(python, (*MODULES, "acme_lib"), tmp_path)
    assert versions == {**NEWEST, "acme_lib": "1.0"}
    assert public.count("GET", SQUATTER.filename) == 0


def _publisher_project(tmp_path: Path) -> Path:
    """A project whose dist/ holds the private acme-lib, as its build left it."""
    project = tmp_path / "acme-lib"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "acme-lib"\nversion = "1.0"\n'
        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'
    )
    dist = project / "dist"
    dist.mkdir()
    for built in PRIVATE:
        (dist / built.filename).write_bytes(built.data)
    return project


def test_poetry_publishes_to_a_named_repository(
    bodega: BodegaProcess, public: FakeIndex, tmp_path: Path, token: tuple[str, ...]
) -> None:
    poetry = str(client_tool("poetry", "poetry"))
    project = _publisher_project(tmp_path)
    env = isolated_env(
        POETRY_CONFIG_DIR=str(tmp_path / "config"),
        POETRY_CACHE_DIR=str(tmp_path / "cache"),
        POETRY_DATA_DIR=str(tmp_path / "data"),
        POETRY_NO_INTERACTION="1",
        PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
        POETRY_REPOSITORIES_ACME_URL=f"{bodega.url}acme/private/",
        POETRY_HTTP_BASIC_ACME_USERNAME="__token__",
        POETRY_HTTP_BASIC_ACME_PASSWORD=token[3],
    )
    run([poetry, "publish", "-r", "acme"], env, project, bodega)
    _pip_installs_the_private_one(bodega, public, tmp_path)


def test_pdm_publishes_to_a_repository_url(
    bodega: BodegaProcess, public: FakeIndex, tmp_path: Path, token: tuple[str, ...]
) -> None:
    pdm = str(client_tool("pdm", "pdm"))
    project = _publisher_project(tmp_path)
    env = isolated_env(
        PDM_HOME=str(tmp_path / "pdm-home"),
        PDM_CACHE_DIR=str(tmp_path / "pdm-cache"),
        PDM_CONFIG_FILE=str(tmp_path / "pdm-config.toml"),
        PDM_NON_INTERACTIVE="1",
        PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
    )
    publish = [pdm, "publish", "--no-build", "-r", f"{bodega.url}acme/private/", *token[:2]]
    run([*publish, "-P", token[3]], env, project, bodega)
    _pip_installs_the_private_one(bodega, public, tmp_path)
