"""uv: `uv pip install`, a project whose default index is bodega (`uv lock` + `uv sync`),
`--refresh` seeing a new upstream release, and lazy metadata for a large wheel that
upstream offers no metadata for (spec finding 8)."""

import sys
import time
from pathlib import Path

import httpx

from tests.clients.conftest import served
from tests.support.clients import (
    MODULES,
    NEWEST,
    consumer_project,
    installed_versions,
    new_venv,
    run,
    uv_env,
)
from tests.support.distributions import BuiltFile, build_wheel
from tests.support.fake_index import FakeIndex, RecordedRequest
from tests.support.servers import BodegaProcess, bodega_process

UV = Path(sys.executable).parent / "uv"  # the dev extra pins uv
JSON = "application/vnd.pypi.simple.v1+json"


def test_uv_pip_install_installs_the_newest_versions(bodega: BodegaProcess, tmp_path: Path) -> None:
    python = new_venv(tmp_path / "venv")
    command = [str(UV), "pip", "install", "--python", str(python)]
    command += ["--default-index", f"{bodega.url}simple/", "app"]
    run(command, uv_env(tmp_path / "cache"), tmp_path, bodega)
    assert installed_versions(python, MODULES, tmp_path) == NEWEST


def test_uv_lock_and_sync_a_project_and_refresh_sees_a_new_release(
    bodega: BodegaProcess, fake_index: FakeIndex, tmp_path: Path
) -> None:
    project = consumer_project(
        tmp_path,
        "[tool.uv]\n"
        "package = false\n"
        "[[tool.uv.index]]\n"
        'name = "bodega"\n'
        f'url = "{bodega.url}simple/"\n'
        "default = true\n",
    )
    # The project's own [tool.uv] must be read, so no UV_NO_CONFIG: an empty user config
    # directory keeps this machine's uv.toml out instead.
    env = uv_env(tmp_path / "cache", XDG_CONFIG_HOME=str(tmp_path / "config"))
    del env["UV_NO_CONFIG"]
    python = ["--python", sys.executable]
    run([str(UV), "lock", *python], env, project, bodega)
    run([str(UV), "sync", *python], env, project, bodega)
    venv_python = project / ".venv" / "bin" / "python"
    assert installed_versions(venv_python, MODULES, tmp_path) == NEWEST

    fake_index.add("app", build_wheel("app", "3.0", requires=["liba>=1", "libb"]))
    run([str(UV), "lock", "--upgrade", "--refresh", *python], env, project, bodega)
    lock = (project / "uv.lock").read_text()
    assert 'name = "app"\nversion = "3.0"' in lock


def test_uv_resolves_a_large_wheel_without_metadata_upstream_then_reads_only_its_metadata(
    fake_index: FakeIndex, tmp_path: Path
) -> None:
    """Upstream has no .metadata. The cold page is answered at once, without it (issue 11:
    no client waits for bodega's own extraction), so uv reads the wheel lazily through
    bodega, which fetches it from upstream at most once whole; once bodega has extracted
    the METADATA, the page advertises it and a fresh uv reads only that."""
    large = build_wheel("big", "1.0", requires=["small"], payload_size=8_000_000)
    fake_index.add("big", large, serve_metadata=False)
    fake_index.add("small", build_wheel("small", "1.0"), serve_metadata=False)
    with bodega_process(tmp_path / "data", fake_index.simple_url) as server:
        command = [str(UV), "pip", "install", "--dry-run", "--python", sys.executable]
        command += ["--default-index", f"{server.url}simple/", "big"]
        run(command, uv_env(tmp_path / "cold"), tmp_path, server)
        whole = [r for r in wheel_requests(fake_index, large) if "Range" not in r.headers]
        assert len(whole) <= 1
        _wait_until_advertised(f"{server.url}simple/big/", large.filename)
        seen = len(wheel_requests(fake_index, large))
        run(command, uv_env(tmp_path / "fresh"), tmp_path, server)
        assert served(server, f"GET /files/big/{large.filename}.metadata")
    assert len(wheel_requests(fake_index, large)) == seen


def wheel_requests(fake_index: FakeIndex, file: BuiltFile) -> list[RecordedRequest]:
    return [r for r in fake_index.requests if r.path.endswith("/" + file.filename)]


def _wait_until_advertised(page_url: str, filename: str) -> None:
    deadline = time.monotonic() + 30  # a bound on a wait, not a measured result
    while True:
        page = httpx.get(page_url, headers={"Accept": JSON}, trust_env=False).json()
        if next(f["core-metadata"] for f in page["files"] if f["filename"] == filename):
            return
        assert time.monotonic() < deadline, f"{filename}'s metadata never advertised"
        time.sleep(0.05)
