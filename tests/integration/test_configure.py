"""`bodega configure` as a user runs it, in a home folder of the test's own, and the real pip
and uv then installing through bodega with nothing but the files it wrote."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bodega.userfiles import backup_path
from tests.support.distributions import build_wheel
from tests.support.fake_index import FakeIndex
from tests.support.servers import BodegaProcess, bodega_process

UV = Path(sys.executable).parent / "uv"
DEAD_PROXY = "http://127.0.0.1:9"
_STRIPPED_PREFIXES = ("PIP_", "UV_", "BODEGA_", "XDG_")
_STRIPPED = {"VIRTUAL_ENV", "PYTHONPATH", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"}


class Home:
    """A user's home for the test: config folders inside it, and no machine-wide config.

    XDG_CONFIG_DIRS points at an empty folder, so neither pip nor uv reads the machine's
    /etc/xdg files; PIP_CONFIG_FILE stays unset, since any value of it hides the user file
    that is under test. Proxies point at a closed loopback port, so nothing leaves the box.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.config = root / ".config"
        (root / "empty").mkdir(parents=True)
        self.pip_conf = self.config / "pip" / "pip.conf"
        self.uv_toml = self.config / "uv" / "uv.toml"

    def environ(self, **extra: str) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.upper().startswith(_STRIPPED_PREFIXES) and key.upper() not in _STRIPPED
        }
        env |= {"HOME": str(self.root), "XDG_CONFIG_HOME": str(self.config)}
        env |= {"XDG_CONFIG_DIRS": str(self.root / "empty"), "XDG_CACHE_HOME": str(self.root)}
        for name in ("HTTP_PROXY", "HTTPS_PROXY"):
            env[name] = env[name.lower()] = DEAD_PROXY
        env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1"
        return env | extra

    def run(self, *command: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(command),
            env=self.environ(**extra),
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )

    def bodega(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return self.run(sys.executable, "-m", "bodega", *args, **extra)


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path / "home")


@pytest.fixture
def server(tmp_path: Path, fake_index: FakeIndex) -> Iterator[BodegaProcess]:
    fake_index.add("demo", build_wheel("demo", "1.0"))
    environ = {k: v for k, v in os.environ.items() if not k.startswith("BODEGA_")}
    with bodega_process(tmp_path / "data", fake_index.simple_url, env=environ) as process:
        yield process


def succeeded(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result.stdout


# ------------------------------------------------------------------------------ printing


def test_prints_every_clients_settings_and_writes_nothing(home: Home) -> None:
    out = succeeded(home.bodega("configure", "--url", "http://127.0.0.1:3141/simple/"))
    assert f"# pip and pip-tools: {home.pip_conf}\n[global]\n" in out
    assert "index-url = http://127.0.0.1:3141/simple/" in out
    assert "[search]\nindex = http://127.0.0.1:3141/pypi" in out
    assert f'# uv: {home.uv_toml}\n[[index]]\nurl = "http://127.0.0.1:3141/simple/"' in out
    assert "poetry source add --priority=primary bodega http://127.0.0.1:3141/simple/" in out
    assert "pdm config pypi.url http://127.0.0.1:3141/simple/" in out
    assert "export PIPENV_PYPI_MIRROR=http://127.0.0.1:3141/simple/" in out
    assert not home.config.exists()


def test_the_default_url_is_this_bodegas_host_and_port(home: Home) -> None:
    out = succeeded(home.bodega("configure", BODEGA_HOST="0.0.0.0", BODEGA_PORT="3999"))
    assert "index-url = http://127.0.0.1:3999/simple/" in out


def test_url_is_the_base_url_and_every_client_gets_its_simple_index(home: Home) -> None:
    out = succeeded(home.bodega("configure", "--url", "http://cache.example:3141/"))
    index = "http://cache.example:3141/simple/"
    assert f"index-url = {index}\ntrusted-host = cache.example\n" in out
    assert "[search]\nindex = http://cache.example:3141/pypi" in out
    assert f'[[index]]\nurl = "{index}"' in out
    assert f"pdm config pypi.url {index}" in out
    # An index URL is read as the base URL above it: the same files either way.
    assert succeeded(home.bodega("configure", "--url", index)) == out


def test_index_points_every_client_at_that_index(home: Home) -> None:
    out = succeeded(
        home.bodega("configure", "--url", "http://cache.example:3141/", "--index", "team/all")
    )
    index = "http://cache.example:3141/team/all/+simple/"
    assert f"index-url = {index}\n" in out
    assert "[search]\nindex = http://cache.example:3141/team/all/\n" in out  # XML-RPC at the index
    assert f'[[index]]\nurl = "{index}"' in out
    assert f"export PIPENV_PYPI_MIRROR={index}" in out
    # An index's own URL is read as the base URL above it, too.
    same = home.bodega("configure", "--url", index, "--index", "team/all")
    assert succeeded(same) == out


def test_an_index_that_is_no_index_name_is_refused(home: Home) -> None:
    result = home.bodega("configure", "--index", "../etc")
    assert result.returncode != 0
    assert "index" in result.stderr
    assert not home.config.exists()


def test_client_narrows_what_is_printed(home: Home) -> None:
    out = succeeded(home.bodega("configure", "--client", "pdm"))
    assert out.strip() == "# PDM:\npdm config pypi.url http://127.0.0.1:3141/simple/"


# ------------------------------------------------------------------------------ real clients


def test_pip_installs_through_bodega_with_only_the_written_pip_conf(
    home: Home, server: BodegaProcess, fake_index: FakeIndex
) -> None:
    succeeded(
        home.bodega("configure", "--write", "--client", "pip", "--url", server.url + "simple/")
    )
    listed = succeeded(home.run(sys.executable, "-m", "pip", "config", "list"))
    assert f"global.index-url='{server.url}simple/'" in listed
    download = home.run(
        *(sys.executable, "-m", "pip", "download", "--no-deps", "--dest", "out", "demo==1.0"),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    succeeded(download)
    assert (home.root / "out" / "demo-1.0-py3-none-any.whl").is_file()
    assert fake_index.count("GET", "/demo-1.0-py3-none-any.whl") == 1  # fetched via bodega


def test_uv_resolves_through_bodega_with_only_the_written_uv_toml(
    home: Home, server: BodegaProcess, fake_index: FakeIndex
) -> None:
    succeeded(
        home.bodega("configure", "--write", "--client", "uv", "--url", server.url + "simple/")
    )
    (home.root / "requirements.in").write_text("demo\n")
    compiled = home.run(
        *(str(UV), "pip", "compile", "--python", sys.executable, "requirements.in"),
        UV_CACHE_DIR=str(home.root / "uv-cache"),
        UV_PYTHON_DOWNLOADS="never",
    )
    assert "demo==1.0" in succeeded(compiled)
    assert fake_index.count("GET", "/simple/demo/") >= 1  # asked through bodega


# ------------------------------------------------------------------------------ write and undo


def test_write_keeps_the_original_and_undo_puts_it_back(home: Home) -> None:
    original = "# my settings\n[global]\ntimeout = 60\n"
    home.pip_conf.parent.mkdir(parents=True)
    home.pip_conf.write_text(original)

    wrote = succeeded(home.bodega("configure", "--write"))
    assert f"wrote {home.pip_conf} (the original is kept as pip.conf.bodega-backup)" in wrote
    assert "timeout = 60" in home.pip_conf.read_text()
    assert backup_path(home.pip_conf).read_text() == original
    assert home.uv_toml.is_file()  # there was none: created

    again = succeeded(home.bodega("configure", "--write"))
    assert f"unchanged: {home.pip_conf}" in again
    assert backup_path(home.pip_conf).read_text() == original

    undone = succeeded(home.bodega("configure", "--undo"))
    assert f"restored {home.pip_conf}" in undone
    assert home.pip_conf.read_text() == original
    assert not backup_path(home.pip_conf).exists()
    assert not home.uv_toml.exists()  # bodega created it, so undo removes it
    assert sorted(p.name for p in home.uv_toml.parent.iterdir()) == []

    assert "nothing to undo" in succeeded(home.bodega("configure", "--undo"))


def test_a_uv_toml_with_another_default_index_is_refused_and_left_alone(home: Home) -> None:
    mine = '[[index]]\nurl = "http://127.0.0.1:9/simple/"\ndefault = true\n'
    home.uv_toml.parent.mkdir(parents=True)
    home.uv_toml.write_text(mine)
    result = home.bodega("configure", "--write")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"Error: {home.uv_toml} already names a default index; remove it there, then run this again"
    )
    assert home.uv_toml.read_text() == mine
    assert not home.pip_conf.exists()  # nothing is written when any file is refused


# ------------------------------------------------------------------------------ extras

PIP_WITH_EXTRAS = (
    "[global]\ntimeout = 60\nextra-index-url = http://127.0.0.1:9/simple/\n"
    "[install]\nfind-links = /srv/wheels\n"
)
UV_WITH_EXTRAS = 'extra-index-url = ["http://127.0.0.1:9/simple/"]\nnative-tls = true\n'


def with_extras(home: Home) -> None:
    home.pip_conf.parent.mkdir(parents=True)
    home.pip_conf.write_text(PIP_WITH_EXTRAS)
    home.uv_toml.parent.mkdir(parents=True)
    home.uv_toml.write_text(UV_WITH_EXTRAS)


def test_write_warns_of_extra_indexes_that_go_around_bodega_and_keeps_them(home: Home) -> None:
    with_extras(home)
    result = home.bodega("configure", "--write")
    succeeded(result)
    assert (
        f"warning: {home.pip_conf} has [global] extra-index-url = http://127.0.0.1:9/simple/:"
        " pip searches it besides bodega" in result.stderr
    )
    assert f"warning: {home.pip_conf} has [install] find-links = /srv/wheels" in result.stderr
    assert f"warning: {home.uv_toml} has extra-index-url = " in result.stderr
    assert "--comment-out-extras" in result.stderr
    assert "extra-index-url = http://127.0.0.1:9/simple/" in home.pip_conf.read_text()
    assert home.uv_toml.read_text().startswith(UV_WITH_EXTRAS)


def test_comment_out_extras_leaves_bodega_alone_and_undo_restores_them(home: Home) -> None:
    with_extras(home)
    result = home.bodega("configure", "--write", "--comment-out-extras")
    succeeded(result)
    assert f"commented out in {home.pip_conf}: [install] find-links = /srv/wheels" in result.stderr
    assert "warning" not in result.stderr
    listed = succeeded(home.run(sys.executable, "-m", "pip", "config", "list"))
    assert "extra-index-url" not in listed
    assert "find-links" not in listed
    assert "# extra-index-url = http://127.0.0.1:9/simple/\n" in home.pip_conf.read_text()
    assert '# extra-index-url = ["http://127.0.0.1:9/simple/"]\n' in home.uv_toml.read_text()

    succeeded(home.bodega("configure", "--undo"))
    assert home.pip_conf.read_text() == PIP_WITH_EXTRAS
    assert home.uv_toml.read_text() == UV_WITH_EXTRAS


def test_comment_out_extras_needs_write(home: Home) -> None:
    result = home.bodega("configure", "--comment-out-extras")
    assert result.returncode == 2
    assert "--comment-out-extras goes with --write" in result.stderr


def test_extra_indexes_set_in_the_environment_are_warned_of(home: Home) -> None:
    result = home.bodega("configure", PIP_EXTRA_INDEX_URL="http://127.0.0.1:9/simple/")
    assert "warning: the environment sets PIP_EXTRA_INDEX_URL" in succeeded(result) + result.stderr
