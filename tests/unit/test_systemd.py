"""The unit's text: every argument reaches bodega as it was given, whatever it holds."""

import re
import shlex
from pathlib import Path

import pytest

from bodega.errors import ConfigError
from bodega.systemd import closed_to_others, next_steps, render_unit, unit_path


def exec_start(unit: str) -> str:
    found = re.search(r"^ExecStart=(.*)$", unit, re.MULTILINE)
    assert found is not None
    return found.group(1)


def test_arguments_with_spaces_quotes_percent_and_dollar_are_escaped_for_systemd() -> None:
    tricky = ["--config", '/srv/my "cache"/b\\odega 100%.toml', "--upstream", "http://h/$x/"]
    line = exec_start(render_unit("/opt/py 3/bin/python", tricky, user=False, stop_timeout=10))
    # systemd undoes %% and $$ itself; its quoting rules are the shell's for these cases.
    words = [w.replace("%%", "%").replace("$$", "$") for w in shlex.split(line)]
    assert words == [
        "/opt/py 3/bin/python",
        *("-m", "bodega", "serve", *tricky, "--data-dir", "%S/bodega"),
    ]


def test_the_data_dir_specifier_is_the_only_unescaped_percent() -> None:
    line = exec_start(
        render_unit("/usr/bin/python3", ["--port", "3141"], user=True, stop_timeout=1)
    )
    assert re.findall(r"(?<!%)%(?!%)\w", line) == ["%S"]


@pytest.mark.parametrize("word", ["two\nlines", "nul\0byte"])
def test_a_word_the_unit_cannot_hold_is_refused(word: str) -> None:
    with pytest.raises(ConfigError, match="cannot hold"):
        render_unit("/usr/bin/python3", ["--upstream", word], user=False, stop_timeout=1)


def test_python_must_be_an_absolute_path() -> None:
    with pytest.raises(ConfigError, match="absolute path"):
        render_unit("python3", [], user=False, stop_timeout=1)


def test_the_user_unit_lives_in_the_users_config_home(tmp_path: Path) -> None:
    path = unit_path(user=True, environ={"XDG_CONFIG_HOME": str(tmp_path)})
    assert path == tmp_path / "systemd" / "user" / "bodega.service"
    assert unit_path(user=False) == Path("/etc/systemd/system/bodega.service")


def test_next_steps_name_the_right_manager() -> None:
    assert next_steps(user=False) == ["systemctl daemon-reload", "systemctl enable --now bodega"]
    assert next_steps(user=True)[1] == "systemctl --user enable --now bodega"


def test_closed_to_others_finds_the_first_folder_others_cannot_enter(tmp_path: Path) -> None:
    open_folder = tmp_path / "open"
    closed = open_folder / "home"
    python = closed / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.touch()
    tmp_path.chmod(0o755)
    open_folder.chmod(0o755)
    closed.chmod(0o700)
    above = [p for p in tmp_path.parents if not p.stat().st_mode & 0o001]
    assert closed_to_others([python]) == (above[-1] if above else closed)
    closed.chmod(0o711)  # others may pass through, as DynamicUser needs
    assert closed_to_others([python]) == (above[-1] if above else None)
