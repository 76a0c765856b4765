"""`./dev`, the entry point a new user runs first: it says what it does, refuses a Python that
is too old, rebuilds a venv an older Python made, and passes other commands to bodega.

Each test runs a copy of the script in a folder of its own, never the repository's .venv."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DEV = Path(__file__).parents[2] / "dev"


def old_python(path: Path) -> Path:
    """A stand-in for Python 3.10: it says so, and fails the version check as 3.10 would."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('#!/bin/sh\n[ "$1" = -V ] && echo "Python 3.10.12" && exit 0\nexit 1\n')
    path.chmod(0o755)
    return path


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    folder = tmp_path / "bodega"
    folder.mkdir()
    shutil.copy(DEV, folder / "dev")
    (folder / "pyproject.toml").write_text("")
    return folder


def run_dev(checkout: Path, *args: str, python: Path | str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "VIRTUAL_ENV"))}
    # No index: the only install the tests reach fails at once, and nothing leaves the box.
    environ |= {"PYTHON": str(python), "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": ""}
    return subprocess.run(
        [str(checkout / "dev"), *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_python_older_than_3_11_is_refused_with_what_to_do(checkout: Path) -> None:
    python = old_python(checkout / "old" / "python3")
    result = run_dev(checkout, "serve", python=python)
    assert result.returncode == 1
    assert result.stderr == (
        f"dev: bodega needs Python >= 3.11, and {python} is Python 3.10.12;"
        " install a newer one and name it: PYTHON=python3.12 ./dev ...\n"
    )
    assert not (checkout / ".venv").exists()


def test_a_venv_an_older_python_made_is_rebuilt_and_it_says_why(checkout: Path) -> None:
    old_python(checkout / ".venv" / "bin" / "python")
    result = run_dev(checkout, "serve", python=sys.executable)
    assert result.stderr.startswith(
        "dev: .venv runs Python 3.10.12; bodega needs Python >= 3.11: rebuilding .venv\n"
        f"dev: creating .venv with Python {sys.version.split()[0]} ({sys.executable})\n"
        "dev: installing bodega and its dependencies into .venv"
    )
    rebuilt = subprocess.run(
        [str(checkout / ".venv" / "bin" / "python"), "-c", "import sys; print(sys.version_info)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert f"major={sys.version_info.major}, minor={sys.version_info.minor}" in rebuilt.stdout


def test_other_commands_go_to_bodega(checkout: Path) -> None:
    venv_bin = checkout / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "python").symlink_to(sys.executable)
    (venv_bin / "bodega").write_text('#!/bin/sh\necho "bodega got: $*"\n')
    (venv_bin / "bodega").chmod(0o755)
    (checkout / ".venv" / ".installed").touch()  # after pyproject.toml: installed already
    result = run_dev(checkout, "cache", "stats", "--data-dir", "x", python=sys.executable)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "bodega got: cache stats --data-dir x\n"
    assert result.stderr == ""


def test_no_command_shows_the_usage(checkout: Path) -> None:
    result = run_dev(checkout, python=sys.executable)
    assert result.returncode == 2
    assert "./dev cache stats" in result.stderr
