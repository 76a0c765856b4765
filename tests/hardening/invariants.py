"""The cache's invariants, checked directly on a data dir and its SQLite database.

`bodega cache verify` (built on another branch) will check the same; until it is merged the
crash tests assert these themselves.
"""

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from bodega.core.model import ProjectPage


@dataclass(frozen=True)
class CacheState:
    blobs: set[str]  # keys of blob files present
    rows: set[str]  # keys the database records
    pages: set[str]

    @property
    def orphans(self) -> set[str]:
        """Verified blobs with no row yet: adopted by `cache verify`, served meanwhile."""
        return self.blobs - self.rows


def check_invariants(data_dir: Path) -> CacheState:
    """Asserts invariants 1 and 2 on a stopped or running bodega's data dir."""
    root = data_dir / "blobs" / "sha256"
    blobs = set()
    for path in root.rglob("*") if root.exists() else ():
        if path.is_dir():
            continue
        key = path.name
        # Layout sha256/<2>/<2>/<hex>, and nothing else in it: no temp or partial files.
        assert path.relative_to(root).parts == (key[:2], key[2:4], key), path
        # Verify, then publish: every visible blob hashes to its name.
        assert _sha256(path) == key, f"blob {key} does not hash to its name"
        blobs.add(key)
    with sqlite3.connect(f"file:{data_dir / 'bodega.sqlite3'}?mode=ro", uri=True) as db:
        rows = {row[0] for row in db.execute("SELECT key FROM blobs")}
        pages = set()
        for project, record in db.execute("SELECT project, record FROM pages"):
            ProjectPage.from_record(json.loads(record))  # every stored page reads back
            pages.add(project)
    db.close()
    assert rows <= blobs, f"rows without their blob: {rows - blobs}"
    return CacheState(blobs, rows, pages)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
