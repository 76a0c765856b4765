"""pip, the oldest supported (23.2) and the current release: install, hash-checked download,
--refresh-package and `pip index versions` through bodega."""

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.clients import (
    MODULES,
    NEWEST,
    client_tool,
    installed_versions,
    isolated_env,
    new_venv,
    pip_env,
    run,
)
from tests.support.distributions import BuiltFile, build_wheel
from tests.support.fake_index import FakeIndex
from tests.support.servers import BodegaProcess, bodega_process

PIPS = ["pip-oldest", "pip-current"]


def pip(client: str) -> list[str]:
    return [str(client_tool(client, "python")), "-m", "pip"]


@contextmanager
def bodega_revalidating_after(
    seconds: float, fake_index: FakeIndex, tmp_path: Path
) -> Iterator[BodegaProcess]:
    """As the `bodega` fixture, with this --revalidate-after."""
    proxies = {k: v for k, v in isolated_env().items() if k.upper().endswith("_PROXY")}
    args = ["--index-ttl", "600", "--revalidate-after", str(seconds)]
    with bodega_process(tmp_path / "data", fake_index.simple_url, *args, env=proxies) as server:
        yield server


def index(server: BodegaProcess) -> list[str]:
    # --trusted-host: pip caches pages over plain http only for trusted hosts (spec 33).
    return ["--index-url", f"{server.url}simple/", "--trusted-host", "127.0.0.1"]


@pytest.mark.parametrize("client", PIPS)
def test_pip_installs_the_newest_versions_with_dependencies(
    client: str, bodega: BodegaProcess, tmp_path: Path
) -> None:
    python = new_venv(tmp_path / "venv")
    command = [*pip(client), "--python", str(python), "install", *index(bodega), "app"]
    run(command, pip_env(tmp_path / "cache"), tmp_path, bodega)
    assert installed_versions(python, MODULES, tmp_path) == NEWEST


@pytest.mark.parametrize("client", PIPS)
def test_pip_installs_through_a_bodega_with_two_workers(
    client: str, fake_index: FakeIndex, published: dict[str, list[BuiltFile]], tmp_path: Path
) -> None:
    proxies = {k: v for k, v in isolated_env().items() if k.upper().endswith("_PROXY")}
    data = tmp_path / "data"
    with bodega_process(data, fake_index.simple_url, "--workers", "2", env=proxies) as server:
        python = new_venv(tmp_path / "venv")
        command = [*pip(client), "--python", str(python), "install", *index(server), "app"]
        run(command, pip_env(tmp_path / "cache"), tmp_path, server)
    assert installed_versions(python, MODULES, tmp_path) == NEWEST
    for files in published.values():  # each file fetched from upstream once at most
        for file in files:
            assert fake_index.count("GET", file.filename) <= 1


@pytest.mark.parametrize("client", PIPS)
def test_pip_downloads_with_require_hashes(
    client: str,
    bodega: BodegaProcess,
    published: dict[str, list[BuiltFile]],
    tmp_path: Path,
) -> None:
    wanted = {name: f"{name}-{version}-py3-none-any.whl" for name, version in NEWEST.items()}
    lines = []
    for project, filename in wanted.items():
        file = next(f for f in published[project] if f.filename == filename)
        lines.append(f"{project}=={NEWEST[project]} --hash=sha256:{file.sha256}")
    (tmp_path / "requirements.txt").write_text("\n".join(lines) + "\n")
    command = [*pip(client), "download", "--require-hashes", "-r", "requirements.txt"]
    command += [*index(bodega), "--dest", "out"]
    run(command, pip_env(tmp_path / "cache"), tmp_path, bodega)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(wanted.values())


@pytest.mark.parametrize("client", PIPS)
def test_pip_sees_a_new_upstream_release_when_it_asks_to_refresh(
    client: str, fake_index: FakeIndex, published: dict[str, list[BuiltFile]], tmp_path: Path
) -> None:
    env = pip_env(tmp_path / "cache")
    with bodega_revalidating_after(0, fake_index, tmp_path) as server:
        command = [*pip(client), "download", "--no-deps", *index(server), "--dest", "out", "app"]
        run(command, env, tmp_path, server)
        fake_index.add("app", build_wheel("app", "3.0"))
        # pip 26 keeps the page for its max-age unless told to refresh; pip 23.2 always
        # revalidates with max-age=0. With --revalidate-after 0 bodega then asks upstream
        # (spec 32).
        refresh = ["--refresh-package", "app"] if client == "pip-current" else []
        run([*command, *refresh], env, tmp_path, server)
    assert (tmp_path / "out" / "app-3.0-py3-none-any.whl").is_file()


def test_old_pip_warm_runs_ask_upstream_for_no_page_within_revalidate_after(
    fake_index: FakeIndex, published: dict[str, list[BuiltFile]], tmp_path: Path
) -> None:
    """pip 23.2 sends `Cache-Control: max-age=0` on every index request (issue 11: its warm
    install re-fetched every page): within --revalidate-after, bodega answers from cache."""
    env = pip_env(tmp_path / "cache")
    with bodega_revalidating_after(3600, fake_index, tmp_path) as server:
        command = [*pip("pip-oldest"), "download", *index(server), "--dest", "out", "app"]
        run(command, env, tmp_path, server)
        pages_asked = [r.path for r in fake_index.requests if r.server == "pages"]
        run(command, env, tmp_path, server)
    assert sorted(pages_asked) == sorted(f"/simple/{name}/" for name in MODULES)
    assert [r.path for r in fake_index.requests if r.server == "pages"] == pages_asked


@pytest.mark.parametrize("client", PIPS)
def test_pip_index_versions_lists_every_release(
    client: str, bodega: BodegaProcess, tmp_path: Path
) -> None:
    command = [*pip(client), "index", "versions", *index(bodega), "liba"]
    output = run(command, pip_env(tmp_path / "cache"), tmp_path, bodega)
    assert "liba (1.1)" in output
    assert "1.1, 1.0, 0.9" in output


def test_pip_skips_a_yanked_release_unless_pinned_to_it(
    bodega: BodegaProcess, fake_index: FakeIndex, tmp_path: Path
) -> None:
    # PEP 592 (spec 14): bodega keeps data-yanked with its reason.
    fake_index.add("libb", build_wheel("libb", "2.0"), yanked="broken build")
    env = pip_env(tmp_path / "cache")
    command = [*pip("pip-current"), "download", "--no-deps", *index(bodega), "--dest", "out"]
    run([*command, "libb"], env, tmp_path, bodega)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["libb-1.0-py3-none-any.whl"]
    result = subprocess.run(
        [*command, "libb==2.0"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "yanked" in result.stderr.lower()
    assert "broken build" in result.stderr
    assert (tmp_path / "out" / "libb-2.0-py3-none-any.whl").is_file()
