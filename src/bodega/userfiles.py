"""Files bodega writes outside its data dir for the user (client configs, a systemd unit):
written whole and atomically, with what was there before kept beside them, so `undo` can put
it back and nothing the user had is lost."""

import os
import tempfile
from pathlib import Path

BACKUP_SUFFIX = ".bodega-backup"  # the file as it was before bodega first wrote it
CREATED_SUFFIX = ".bodega-created"  # marks a file that did not exist before bodega wrote it


def backup_path(path: Path) -> Path:
    return path.with_name(path.name + BACKUP_SUFFIX)


def created_marker(path: Path) -> Path:
    return path.with_name(path.name + CREATED_SUFFIX)


def write_keeping_original(path: Path, text: str) -> bool:
    """Write `text` to `path`, first keeping the original (once); False when nothing changed.

    Only the first write keeps a backup: after several writes, undo still restores the file
    as it was before bodega ever touched it.
    """
    if path.is_file() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    if not backup_path(path).exists() and not created_marker(path).exists():
        if path.exists():
            _write_atomically(backup_path(path), path.read_bytes(), path.stat().st_mode)
        else:
            created_marker(path).touch()
    _write_atomically(path, text.encode(), path.stat().st_mode if path.exists() else None)
    return True


def restore_original(path: Path) -> bool:
    """Put back what was there before bodega wrote `path`; False when bodega never did."""
    backup, marker = backup_path(path), created_marker(path)
    if backup.exists():
        os.replace(backup, path)
        return True
    if marker.exists():
        path.unlink(missing_ok=True)
        marker.unlink()
        return True
    return False


def _write_atomically(path: Path, data: bytes, mode: int | None) -> None:
    # A temp file in the same folder, then a rename: a crash leaves the old file or the new
    # one, never half of either.
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(name, mode if mode is not None else 0o644)
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
