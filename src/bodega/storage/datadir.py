"""The data directory: created on first use, checked writable, locked to one server."""

import fcntl
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import IO

from bodega.errors import ConfigError


def open_data_dir(data_dir: Path, spool_dir: Path) -> IO[bytes]:
    """Create the data dir if needed, check it is writable, lock it, clear leftover spools.

    Spool files are downloads that never finished (a crash, a kill -9): never visible as
    blobs, so they are only garbage. The returned lock is held until it is closed.
    """
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        probe = data_dir / ".write-probe"
        probe.write_bytes(b"ok")
        probe.unlink()
        lock = _lock(data_dir)
        if spool_dir.exists():
            shutil.rmtree(spool_dir)
        spool_dir.mkdir()
    except OSError as error:
        raise ConfigError(f"data dir {data_dir} is unusable: {error.strerror or error}") from None
    return lock


def _lock(data_dir: Path) -> IO[bytes]:
    """An exclusive lock that one serving bodega holds on its data dir for its lifetime.

    Single-flight downloads and spool clean-up assume one server per data dir.
    """
    handle = open(data_dir / "lock", "ab")  # noqa: SIM115 - held until the server stops
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise ConfigError(f"data dir {data_dir} is in use by another bodega") from None
    handle.truncate(0)
    handle.write(f"{os.getpid()}\n".encode())
    handle.flush()
    return handle


def remove_entries(folder: Path, *, keep: Callable[[str], bool]) -> None:
    """Remove what `folder` holds (files and whole folders) but the names `keep` accepts;
    a folder that is not there holds nothing."""
    try:
        entries = list(folder.iterdir())
    except FileNotFoundError:
        return
    for entry in entries:
        if keep(entry.name):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink(missing_ok=True)
