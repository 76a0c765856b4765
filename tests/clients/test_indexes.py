"""Several indexes in one bodega (issue 12): pip and uv through a virtual index whose first
base is a mirror of a second upstream (GPU wheels, routed by name) and whose second base is
the default mirror. Two real upstreams on loopback, with one name on both."""

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

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
from tests.support.distributions import build_wheel
from tests.support.fake_index import FakeIndex
from tests.support.servers import BodegaProcess, bodega_process

UV = Path(sys.executable).parent / "uv"
INSTALLED = {**NEWEST, "torch": "2.0", "shared": "1.0"}


@pytest.fixture
def public() -> Iterator[FakeIndex]:
    """The default mirror's upstream: the published tree, a squatter's `torch` with a
    higher version, `torchvision`, and its own `shared`."""
    with FakeIndex() as index:
        for project, files in published_tree().items():
            for file in files:
                index.add(project, file)
        index.add("torch", build_wheel("torch", "9.0"))
        index.add("torchvision", build_wheel("torchvision", "1.0"))
        index.add("shared", build_wheel("shared", "2.0"))
        yield index


@pytest.fixture
def gpu() -> Iterator[FakeIndex]:
    """The second upstream: `torch` and the first base's `shared`."""
    with FakeIndex() as index:
        index.add("torch", build_wheel("torch", "2.0"))
        index.add("shared", build_wheel("shared", "1.0"))
        yield index


@pytest.fixture
def bodega(public: FakeIndex, gpu: FakeIndex, tmp_path: Path) -> Iterator[BodegaProcess]:
    config = tmp_path / "bodega.toml"
    config.write_text(
        'default_index = "root/pypi"\n'
        '[indexes."root/pypi"]\n'
        'type = "mirror"\n'
        f'upstream = "{public.simple_url}"\n'
        '[indexes."team/torch"]\n'
        'type = "mirror"\n'
        f'upstream = "{gpu.simple_url}"\n'
        "index_ttl = 3600\n"
        '[indexes."team/all"]\n'
        'type = "virtual"\n'
        'bases = ["team/torch", "root/pypi"]\n'
        'routes = { "torch*" = "team/torch" }\n'
    )
    proxies = {k: v for k, v in isolated_env().items() if k.upper().endswith("_PROXY")}
    with bodega_process(
        tmp_path / "data", public.simple_url, "--config", str(config), env=proxies
    ) as server:
        yield server


def test_pip_installs_routed_projects_from_one_upstream_and_the_rest_from_the_other(
    bodega: BodegaProcess, gpu: FakeIndex, tmp_path: Path
) -> None:
    python = new_venv(tmp_path / "venv")
    pip = [str(client_tool("pip-current", "python")), "-m", "pip", "--python", str(python)]
    index = ["--index-url", f"{bodega.url}team/all/+simple/", "--trusted-host", "127.0.0.1"]
    run(
        [*pip, "install", *index, "app", "torch", "shared"],
        pip_env(tmp_path / "c"),
        tmp_path,
        bodega,
    )
    modules = (*MODULES, "torch", "shared")
    assert installed_versions(python, modules, tmp_path) == INSTALLED
    assert gpu.count("GET", "torch-2.0-py3-none-any.whl") == 1


def test_uv_installs_through_the_virtual_index_the_same(
    bodega: BodegaProcess, tmp_path: Path
) -> None:
    python = new_venv(tmp_path / "venv")
    command = [str(UV), "pip", "install", "--python", str(python)]
    command += ["--default-index", f"{bodega.url}team/all/+simple/", "app", "torch", "shared"]
    run(command, uv_env(tmp_path / "cache"), tmp_path, bodega)
    modules = (*MODULES, "torch", "shared")
    assert installed_versions(python, modules, tmp_path) == INSTALLED


def test_a_name_on_both_upstreams_is_served_whole_from_the_first_base(
    bodega: BodegaProcess,
) -> None:
    page = httpx.get(f"{bodega.url}team/all/+simple/shared/").text
    assert "shared-1.0-py3-none-any.whl" in page
    assert "shared-2.0" not in page
    # The default index is what it was: the first upstream's page.
    assert "shared-2.0-py3-none-any.whl" in httpx.get(f"{bodega.url}simple/shared/").text
    assert "shared-2.0-py3-none-any.whl" in httpx.get(f"{bodega.url}root/pypi/+simple/shared/").text


def test_a_routed_name_comes_only_from_its_base(bodega: BodegaProcess) -> None:
    page = httpx.get(f"{bodega.url}team/all/+simple/torch/").text
    assert "torch-2.0-py3-none-any.whl" in page
    assert "torch-9.0" not in page  # the squatter's higher version never shows
    # torchvision matches `torch*`: pinned to a base that lacks it, it is not found, not
    # looked for elsewhere.
    assert httpx.get(f"{bodega.url}team/all/+simple/torchvision/").status_code == 404
    assert httpx.get(f"{bodega.url}root/pypi/+simple/torchvision/").status_code == 200


def test_an_unknown_index_is_not_found(bodega: BodegaProcess) -> None:
    assert httpx.get(f"{bodega.url}team/none/+simple/torch/").status_code == 404
