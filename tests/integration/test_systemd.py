"""`bodega service install`: the unit systemd would load (checked by systemd-analyze), written
with a backup, and its exact command speaking the readiness protocol on a real socket."""

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bodega.userfiles import backup_path
from tests.support.distributions import build_wheel
from tests.support.fake_index import FakeIndex

UNUSED_UPSTREAM = "http://127.0.0.1:9/simple/"  # loopback; never contacted by these tests
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_systemd_analyze = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None,
    reason="systemd-analyze is missing (./dev test installs Debian's systemd when run as root)",
)


def bodega(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("BODEGA_")}
    return subprocess.run(
        [sys.executable, "-m", "bodega", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
        env={**environ, **(env or {})},
    )


def printed_unit(*args: str) -> str:
    result = bodega("service", "install", "--print", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def analyze(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    assert SYSTEMD_ANALYZE is not None
    return subprocess.run(
        [SYSTEMD_ANALYZE, *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def exec_start(unit: str) -> list[str]:
    """ExecStart= as the words systemd would run, %S standing for itself."""
    found = re.search(r"^ExecStart=(.*)$", unit, re.MULTILINE)
    assert found is not None
    return shlex.split(found.group(1))


@pytest.fixture
def user_runtime_dir(tmp_path: Path) -> Path:
    """An XDG_RUNTIME_DIR, which `systemd-analyze --user` needs to build its test manager."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    return runtime


# ------------------------------------------------------------------------------ the unit


def test_the_system_unit_runs_bodega_directly_as_a_hardened_notify_service() -> None:
    unit = printed_unit()
    assert exec_start(unit)[:4] == [sys.executable, "-m", "bodega", "serve"]
    for line in (
        "Type=notify",
        "Restart=on-failure",
        "DynamicUser=yes",
        "StateDirectory=bodega",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=read-only",
        "PrivateTmp=yes",
        "WantedBy=multi-user.target",
    ):
        assert f"\n{line}\n" in unit
    assert exec_start(unit)[-2:] == ["--data-dir", "%S/bodega"]  # the state directory


def test_options_given_go_into_the_command_and_the_stop_timeout_follows_shutdown() -> None:
    unit = printed_unit("--port", "3999", "--offline", "--shutdown-timeout", "50")
    assert exec_start(unit)[4:] == [
        *("--port", "3999", "--offline", "--shutdown-timeout", "50"),
        *("--data-dir", "%S/bodega"),
    ]
    assert "\nTimeoutStopSec=80\n" in unit  # systemd waits longer than bodega may take


def test_an_option_that_cannot_work_is_one_line_and_prints_no_unit() -> None:
    result = bodega("service", "install", "--print", "--port", "http")
    assert result.returncode != 0
    assert result.stdout == ""
    assert result.stderr.strip().endswith("--port: 'http' is not a valid int")


def test_data_dir_is_the_state_directory_so_it_is_not_an_option() -> None:
    result = bodega("service", "install", "--print", "--data-dir", "/srv/elsewhere")
    assert result.returncode == 2
    assert "No such option" in result.stderr
    assert "--data-dir" in result.stderr


@needs_systemd_analyze
def test_systemd_analyze_verifies_the_system_unit_without_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "bodega.service"
    path.write_text(printed_unit("--upstream", UNUSED_UPSTREAM))
    result = analyze("verify", str(path))
    assert (result.returncode, result.stderr) == (0, "")


@needs_systemd_analyze
def test_systemd_analyze_rates_the_system_unit_exposure_ok(tmp_path: Path) -> None:
    path = tmp_path / "bodega.service"
    path.write_text(printed_unit())
    result = analyze("security", "--offline=yes", "--threshold=20", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    level = re.search(r"Overall exposure level for bodega.service: ([0-9.]+)", result.stdout)
    assert level is not None, result.stdout
    assert float(level.group(1)) <= 2.0  # systemd calls < 2 "OK", the best of its bands


@needs_systemd_analyze
def test_systemd_analyze_verifies_the_user_unit_without_a_warning(
    tmp_path: Path, user_runtime_dir: Path
) -> None:
    path = tmp_path / "bodega.service"
    unit = printed_unit("--user")
    assert "\nWantedBy=default.target\n" in unit
    path.write_text(unit)
    result = analyze("--user", "verify", str(path), env={"XDG_RUNTIME_DIR": str(user_runtime_dir)})
    assert (result.returncode, result.stderr) == (0, "")


# ------------------------------------------------------------------------------ writing it


def test_install_user_writes_the_unit_where_the_user_manager_looks(tmp_path: Path) -> None:
    config_home = tmp_path / "config"
    result = bodega("service", "install", "--user", env={"XDG_CONFIG_HOME": str(config_home)})
    assert result.returncode == 0, result.stderr
    unit = config_home / "systemd" / "user" / "bodega.service"
    assert unit.read_text() == printed_unit("--user")
    assert "systemctl --user enable --now bodega" in result.stdout
    again = bodega("service", "install", "--user", env={"XDG_CONFIG_HOME": str(config_home)})
    assert f"unchanged: {unit}" in again.stdout


def test_install_keeps_the_unit_it_replaces(tmp_path: Path) -> None:
    config_home = tmp_path / "config"
    unit = config_home / "systemd" / "user" / "bodega.service"
    unit.parent.mkdir(parents=True)
    unit.write_text("[Service]\nExecStart=/usr/bin/hand-made\n")
    env = {"XDG_CONFIG_HOME": str(config_home)}
    result = bodega("service", "install", "--user", "--port", "3999", env=env)
    assert result.returncode == 0, result.stderr
    assert "--port 3999" in unit.read_text()
    assert backup_path(unit).read_text() == "[Service]\nExecStart=/usr/bin/hand-made\n"


# ------------------------------------------------------------------------------ a closed home


@pytest.fixture
def venv_in_a_closed_home(tmp_path: Path) -> Path:
    """A virtual environment under a mode-700 home folder that runs this bodega: its own
    Python, with bodega and its dependencies reached through a .pth file."""
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    venv = home / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    import bodega

    reach = [str(Path(bodega.__file__).parents[1]), *(p for p in sys.path if "site-packages" in p)]
    (site_packages,) = venv.glob("lib/python*/site-packages")
    (site_packages / "this-bodega.pth").write_text("\n".join(reach) + "\n")
    return venv / "bin" / "python"


def test_a_system_unit_for_a_venv_under_a_closed_home_says_where_to_install_instead(
    venv_in_a_closed_home: Path, tmp_path: Path
) -> None:
    printed = subprocess.run(
        [str(venv_in_a_closed_home), "-m", "bodega", "service", "install", "--print"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert printed.returncode == 0, printed.stderr
    assert exec_start(printed.stdout)[0] == str(venv_in_a_closed_home)
    closed = re.search(r"cannot enter (\S+) \(mode 700\)", printed.stderr)
    assert closed is not None, printed.stderr
    assert venv_in_a_closed_home.is_relative_to(closed.group(1))
    assert printed.stderr.startswith("warning: the service could not start")
    assert "/opt/bodega" in printed.stderr

    written = subprocess.run(
        [str(venv_in_a_closed_home), "-m", "bodega", "service", "install"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert written.returncode == 1
    assert written.stderr.startswith("Error: the service could not start")  # nothing written


def test_a_user_unit_for_a_venv_in_the_users_own_home_is_fine(
    venv_in_a_closed_home: Path,
) -> None:
    printed = subprocess.run(
        [str(venv_in_a_closed_home), "-m", "bodega", "service", "install", "--print", "--user"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert printed.returncode == 0
    assert printed.stderr == ""


def test_a_system_unit_for_a_venv_open_to_everyone_has_no_warning() -> None:
    result = bodega("service", "install", "--print")
    assert result.returncode == 0
    if not any(
        not folder.stat().st_mode & 0o001 for folder in Path(sys.executable).absolute().parents
    ):
        assert result.stderr == ""


# ------------------------------------------------------------------------------ READY=1


@pytest.fixture
def notify_listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """The service manager's end of NOTIFY_SOCKET: a datagram socket bound to a file."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        path = str(tmp_path / "notify")
        sock.bind(path)
        sock.settimeout(30)
        yield sock, path


def test_the_units_command_says_ready_once_serving_and_stopping_on_sigterm(
    tmp_path: Path, fake_index: FakeIndex, notify_listener: tuple[socket.socket, str]
) -> None:
    fake_index.add("demo", build_wheel("demo", "1.0"))
    listener, address = notify_listener
    unit = printed_unit("--user", "--port", "0", "--upstream", fake_index.simple_url)
    state_dir = tmp_path / "state"
    command = [word.replace("%S", str(state_dir)) for word in exec_start(unit)]
    environ = {k: v for k, v in os.environ.items() if not k.startswith("BODEGA_")}
    process = subprocess.Popen(
        command,
        env={**environ, "NOTIFY_SOCKET": address},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        ready = listener.recv(4096).decode()
        assert ready.splitlines()[0] == "READY=1"
        found = re.search(r"STATUS=serving at (\S+)", ready)
        assert found is not None, ready
        # Ready means serving: the first request after READY=1 is answered.
        page = httpx.get(found.group(1) + "demo/", trust_env=False, timeout=10)
        assert page.status_code == 200
        assert (state_dir / "bodega" / "bodega.sqlite3").is_file()
        process.send_signal(signal.SIGTERM)
        assert listener.recv(4096) == b"STOPPING=1"
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
