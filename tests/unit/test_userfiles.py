"""Files written for the user: the original kept once, put back exactly by undo."""

import stat
from pathlib import Path

from bodega.userfiles import (
    backup_path,
    created_marker,
    restore_original,
    write_keeping_original,
)


def test_the_first_original_is_kept_across_writes_and_restored(tmp_path: Path) -> None:
    path = tmp_path / "pip.conf"
    path.write_text("original\n")
    path.chmod(0o600)
    assert write_keeping_original(path, "first\n") is True
    assert write_keeping_original(path, "second\n") is True
    assert backup_path(path).read_text() == "original\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # the user's permissions stay
    assert restore_original(path) is True
    assert path.read_text() == "original\n"
    assert not backup_path(path).exists()


def test_writing_the_same_text_again_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "uv.toml"
    assert write_keeping_original(path, "x = 1\n") is True
    assert write_keeping_original(path, "x = 1\n") is False


def test_a_file_that_did_not_exist_is_removed_by_undo(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "uv.toml"
    write_keeping_original(path, "x = 1\n")
    assert created_marker(path).exists()
    assert restore_original(path) is True
    assert not path.exists()
    assert not created_marker(path).exists()


def test_undo_without_a_write_does_nothing(tmp_path: Path) -> None:
    path = tmp_path / "pip.conf"
    path.write_text("mine\n")
    assert restore_original(path) is False
    assert path.read_text() == "mine\n"


def test_no_temporary_file_is_left_behind(tmp_path: Path) -> None:
    path = tmp_path / "pip.conf"
    write_keeping_original(path, "a\n")
    write_keeping_original(path, "b\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pip.conf", "pip.conf.bodega-created"]
