"""The command line as a user runs it: a real `python -m bodega` in a child process."""

import os
import re
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from bodega import __version__
from bodega.config import SETTINGS, env_name
from tests.support.distributions import build_wheel
from tests.support.fake_index import FakeIndex
from tests.support.servers import BodegaProcess, bodega_process

UNUSED_UPSTREAM = "http://127.0.0.1:9/simple/"  # loopback; never contacted by these tests


def clean_environ(**extra: str) -> dict[str, str]:
    """This process's environment without any BODEGA_* setting, plus `extra`."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("BODEGA_")}
    return {**environ, **extra}


def run_bodega(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bodega", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
        env=env or clean_environ(),
    )


def serve(*args: str) -> subprocess.CompletedProcess[str]:
    """`bodega serve` that is expected to refuse to start, so it returns on its own."""
    return run_bodega("serve", *args)


def assert_refused(result: subprocess.CompletedProcess[str], reason: str) -> None:
    """Non-zero exit, no traceback, and exactly one line on stderr that gives the reason."""
    assert result.returncode != 0, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert reason in lines[0]


@pytest.fixture
def listening_port() -> Iterator[int]:
    """A port on 127.0.0.1 that something else is already listening on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


# ------------------------------------------------------------------------------ serving


def test_serves_a_project_page_from_upstream_and_exits_0_on_sigterm(
    tmp_path: Path, fake_index: FakeIndex
) -> None:
    fake_index.add("demo", build_wheel("demo", "1.0"))
    data_dir = tmp_path / "not" / "yet" / "there"
    server = BodegaProcess(
        ["--data-dir", str(data_dir), "--upstream", fake_index.simple_url], clean_environ()
    )
    try:
        assert (data_dir / "bodega.sqlite3").is_file()  # the first start made the data dir
        response = httpx.get(f"{server.url}simple/demo/", trust_env=False, timeout=10)
        assert response.status_code == 200
        assert "demo-1.0-py3-none-any.whl" in response.text
    finally:
        exit_code = server.stop()  # sends SIGTERM
    assert exit_code == 0


def test_the_banner_says_what_is_served_and_says_offline_when_offline(
    tmp_path: Path, fake_index: FakeIndex
) -> None:
    with bodega_process(tmp_path / "online", fake_index.simple_url) as online:
        pass
    with bodega_process(tmp_path / "offline", fake_index.simple_url, "--offline") as offline:
        pass
    assert f"serving {fake_index.simple_url} at {online.url}simple/" in online.banner
    assert "offline" not in online.banner
    assert (
        f"serving offline (never contacting {fake_index.simple_url}), only what is cached,"
        f" at {offline.url}simple/" in offline.banner
    )


def test_refuses_a_data_dir_locked_by_another_running_bodega(
    tmp_path: Path, fake_index: FakeIndex
) -> None:
    with bodega_process(tmp_path / "data", fake_index.simple_url):
        result = serve(
            *("--port", "0", "--upstream", UNUSED_UPSTREAM),
            *("--data-dir", str(tmp_path / "data")),
        )
    assert_refused(result, "in use by another bodega")


# ------------------------------------------------------------------------------ refusing to start


def test_refuses_a_data_dir_that_is_a_regular_file(tmp_path: Path) -> None:
    regular_file = tmp_path / "occupied"
    regular_file.write_text("not a directory\n")
    result = serve("--port", "0", "--upstream", UNUSED_UPSTREAM, "--data-dir", str(regular_file))
    assert_refused(result, f"data dir {regular_file} is unusable")


def test_refuses_a_port_that_is_taken(tmp_path: Path, listening_port: int) -> None:
    result = serve(
        *("--port", str(listening_port), "--upstream", UNUSED_UPSTREAM),
        *("--data-dir", str(tmp_path / "data")),
    )
    assert_refused(result, f"port {listening_port} on 127.0.0.1 is already in use")


def test_refuses_an_upstream_that_is_bodega_itself(tmp_path: Path) -> None:
    upstream = "http://localhost:8765/simple/"  # the same socket as 127.0.0.1:8765
    result = serve("--port", "8765", "--upstream", upstream, "--data-dir", str(tmp_path))
    assert_refused(result, f"upstream {upstream} is this bodega itself")


# ------------------------------------------------------------------------------ init and config


def test_init_creates_the_data_dir_and_database(tmp_path: Path) -> None:
    data_dir = tmp_path / "new" / "data"
    result = run_bodega("init", "--data-dir", str(data_dir))
    assert result.returncode == 0, result.stderr
    with closing(sqlite3.connect(data_dir / "bodega.sqlite3")) as database:
        database.execute("select 1")  # a real database, not just a file


def test_settings_come_from_the_file_named_by_bodega_config(tmp_path: Path) -> None:
    data_dir = tmp_path / "from-file"
    config = tmp_path / "bodega.toml"
    config.write_text(f'[bodega]\ndata-dir = "{data_dir.as_posix()}"\n')
    environ = clean_environ(BODEGA_CONFIG=str(config), BODEGA_UPSTREAM=UNUSED_UPSTREAM)
    result = run_bodega("init", env=environ)
    assert result.returncode == 0, result.stderr
    assert (data_dir / "bodega.sqlite3").is_file()


def test_an_invalid_value_in_the_config_file_is_one_line_naming_file_and_key(
    tmp_path: Path,
) -> None:
    config = tmp_path / "bodega.toml"
    config.write_text('port = "http"\n')
    result = run_bodega("init", "--config", str(config))
    assert_refused(result, f"{config}: port: 'http' is not a valid int")


def test_serve_with_a_bad_indexes_table_prints_every_mistake_and_exits(tmp_path: Path) -> None:
    config = tmp_path / "bodega.toml"
    config.write_text(
        '[indexes."root/pypi"]\ntype = "mirror"\ncolour = "blue"\n'
        '[indexes."team/all"]\ntype = "virtual"\nbases = ["team/gone", "root/pypi"]\n'
        'routes = { "torch*" = "team/gone" }\n'
        '[indexes."team/private"]\ntype = "hosted"\nreserved = "x"\n'
    )
    result = serve("--config", str(config), "--data-dir", str(tmp_path / "data"))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        f"Error: {config}: [indexes.\"root/pypi\"] unknown key 'colour' for a mirror index"
        " (known: type, upstream, index_ttl, revalidate_after, upstream_timeout,"
        " download_deadline, offline, min_release_age, allow, deny, files_without_upload_time,"
        " serve_removed, read, upload)",
        f"{config}: [indexes.\"team/private\"] reserved: 'x' is not a list of project names",
        f"{config}: [indexes.\"team/all\"] bases: no index named 'team/gone'",
    ]
    assert not (tmp_path / "data").exists()  # refused before anything was created


# ------------------------------------------------------------------------------ version and help


def test_version_prints_the_package_version() -> None:
    result = run_bodega("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"bodega, version {__version__}"


def test_help_lists_the_commands() -> None:
    bodega = Path(sys.executable).with_name("bodega")  # the installed console script
    result = subprocess.run(
        [str(bodega), "--help"],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
        env=clean_environ(),
    )
    assert result.returncode == 0
    assert "serve" in result.stdout
    assert "init" in result.stdout


def test_serve_help_lists_every_setting_with_its_env_var() -> None:
    result = run_bodega("serve", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())  # undo click's line wrapping
    for setting in SETTINGS:
        assert f"--{setting.name.replace('_', '-')}" in text
        assert f"[env: {env_name(setting.name)}]" in text
    assert "--config" in text


SERVE_OPTIONS = {f"--{setting.name.replace('_', '-')}" for setting in SETTINGS}
# What each command uses, and so offers; --config and --help come with every one.
COMMAND_OPTIONS = {
    "init": {"--data-dir", "--database"},
    "cache stats": {"--data-dir", "--database", "--max-cache-size", "--index"},
    "cache prune": {"--data-dir", "--database", "--unused-for"},
    "cache verify": {"--data-dir", "--database"},
    "cache forget": {"--data-dir", "--database", "--index"},
    "service install": (SERVE_OPTIONS - {"--data-dir"}) | {"--user", "--print"},
    "serve": SERVE_OPTIONS,
    "allow": {"--data-dir", "--database", "--index", "--reason", "--until", "--list", "--revoke"},
}


def offered_options(help_text: str) -> dict[str, str]:
    """Each option in a --help text, with what follows it on its line (its type)."""
    found = re.findall(r"^  (--[a-z-]+)(?: / --[a-z-]+)?(?: ([A-Z]+))?", help_text, re.MULTILINE)
    return {flag: type_name for flag, type_name in found}


@pytest.mark.parametrize("command", list(COMMAND_OPTIONS))
def test_each_command_offers_only_the_options_it_uses(command: str) -> None:
    result = run_bodega(*command.split(), "--help")
    assert result.returncode == 0, result.stderr
    offered = set(offered_options(result.stdout))
    assert offered == COMMAND_OPTIONS[command] | {"--config", "--help"}


@pytest.mark.parametrize("command", ["serve", "service install"])
def test_options_show_their_type_and_default(command: str) -> None:
    result = run_bodega(*command.split(), "--help")
    options = offered_options(result.stdout)
    assert options["--port"] == "PORT"
    assert options["--index-ttl"] == "SECONDS"
    assert options["--max-cache-size"] == "SIZE"
    assert options["--upstream"] == "URL"
    text = " ".join(result.stdout.split())
    assert "[default: 3141] [env: BODEGA_PORT]" in text
    assert "[default: 600] [env: BODEGA_INDEX_TTL]" in text
    assert "[default: the public index, as pip defines it]" in text
    assert "TEXT" not in result.stdout


def test_prune_takes_a_duration_and_cache_stats_a_size() -> None:
    assert offered_options(run_bodega("cache", "prune", "--help").stdout) == {
        "--unused-for": "DURATION",
        "--config": "FILE",
        "--data-dir": "DIRECTORY",
        "--database": "URL",
        "--help": "",
    }
    stats = run_bodega("cache", "stats", "--help").stdout
    assert offered_options(stats)["--max-cache-size"] == "SIZE"


def test_a_setting_a_command_does_not_use_is_refused_as_an_unknown_option() -> None:
    result = run_bodega("init", "--upstream", UNUSED_UPSTREAM)
    assert result.returncode == 2
    assert "No such option '--upstream'" in result.stderr
