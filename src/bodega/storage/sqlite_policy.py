"""Supply-chain policy's records on SQLite (storage.metadata.PolicyStore), through the
metadata store's one worker thread: `bodega allow` writes them beside a running server
(WAL), which reads them per request through a short cache."""

import dataclasses
import json
import sqlite3
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from packaging.utils import NormalizedName

from bodega.core.model import DistributionFile
from bodega.core.policy import Exemption
from bodega.storage.metadata import NewExemption

T = TypeVar("T")

_EXEMPTION_COLUMNS = (
    "id, index_name, project, version, reason, created_by, created_at, until, revoked_at"
)
_ADD_EXEMPTION = f"""
INSERT INTO policy_exemptions (index_name, project, version, reason, created_by, created_at, until)
VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING {_EXEMPTION_COLUMNS}
"""  # noqa: S608 (constant column names)
_EXEMPTIONS = f"SELECT {_EXEMPTION_COLUMNS} FROM policy_exemptions"  # noqa: S608 (constants)
_SAME_EXEMPTION = (
    _EXEMPTIONS + " WHERE index_name = ? AND project = ? AND version IS ? AND reason = ?"
    " AND created_by = ? AND created_at = ? AND until IS ? LIMIT 1"
)


class Runner(Protocol):
    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T: ...


class SqlitePolicyStore:
    def __init__(self, worker: Runner) -> None:
        self._worker = worker

    async def add_exemption(self, exemption: NewExemption) -> Exemption:
        fields = dataclasses.astuple(exemption)

        def work(db: sqlite3.Connection) -> Exemption:
            with db:
                row = db.execute(_SAME_EXEMPTION, fields).fetchone()
                if row is None:
                    row = db.execute(_ADD_EXEMPTION, fields).fetchone()
            return _exemption(row)

        return await self._worker.run(work)

    async def exemptions(self) -> list[Exemption]:
        def work(db: sqlite3.Connection) -> list[Exemption]:
            return [_exemption(row) for row in db.execute(_EXEMPTIONS + " ORDER BY id")]

        return await self._worker.run(work)

    async def revoke_exemption(self, exemption_id: int, revoked_at: float) -> Exemption | None:
        def work(db: sqlite3.Connection) -> Exemption | None:
            with db:
                db.execute(
                    "UPDATE policy_exemptions SET revoked_at = ?"
                    " WHERE id = ? AND revoked_at IS NULL",
                    (revoked_at, exemption_id),
                )
                row = db.execute(_EXEMPTIONS + " WHERE id = ?", (exemption_id,)).fetchone()
            return None if row is None else _exemption(row)

        return await self._worker.run(work)

    async def put_removed_file(
        self, index: str, project: str, file: DistributionFile, removed_at: float
    ) -> None:
        record = json.dumps(dataclasses.asdict(file))

        def work(db: sqlite3.Connection) -> None:
            with db:
                db.execute(
                    "INSERT OR IGNORE INTO policy_removed_files"
                    " (index_name, project, filename, record, removed_at) VALUES (?, ?, ?, ?, ?)",
                    (index, project, file.filename, record, removed_at),
                )

        await self._worker.run(work)

    async def removed_file(
        self, index: str, project: str, filename: str
    ) -> DistributionFile | None:
        def work(db: sqlite3.Connection) -> Any:
            return db.execute(
                "SELECT record FROM policy_removed_files"
                " WHERE index_name = ? AND project = ? AND filename = ?",
                (index, project, filename),
            ).fetchone()

        row = await self._worker.run(work)
        return None if row is None else DistributionFile(**json.loads(row[0]))

    async def restored_file(self, index: str, project: str, filename: str) -> None:
        def work(db: sqlite3.Connection) -> None:
            with db:
                db.execute(
                    "DELETE FROM policy_removed_files"
                    " WHERE index_name = ? AND project = ? AND filename = ?",
                    (index, project, filename),
                )

        await self._worker.run(work)


def _exemption(row: tuple[Any, ...]) -> Exemption:
    exemption_id, index, project, version, reason, by, created_at, until, revoked_at = row
    return Exemption(
        exemption_id,
        index,
        NormalizedName(project),
        version,
        reason,
        by,
        created_at,
        until,
        revoked_at,
    )
