"""Supply-chain policy's records on PostgreSQL (storage.metadata.PolicyStore): `bodega allow`
writes them from anywhere, and every replica reads them per request through a short cache."""

import dataclasses
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias, TypeVar

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from packaging.utils import NormalizedName

from bodega.core.model import DistributionFile
from bodega.core.policy import Exemption
from bodega.storage.metadata import NewExemption
from bodega.storage.postgres_order import InOrder

T = TypeVar("T")
Db: TypeAlias = "PoolConnectionProxy[asyncpg.Record]"
Runner: TypeAlias = Callable[[Callable[[Db], Awaitable[Any]]], Awaitable[Any]]

_EXEMPTION_COLUMNS = (
    "id, index_name, project, version, reason, created_by, created_at, until, revoked_at"
)
# The one recorded already when this is a second try of the same write (see add_exemption).
_ADD_EXEMPTION = f"""
WITH found AS (
  SELECT {_EXEMPTION_COLUMNS} FROM policy_exemptions
  WHERE index_name = $1 AND project = $2 AND version IS NOT DISTINCT FROM $3 AND reason = $4
    AND created_by = $5 AND created_at = $6 AND until IS NOT DISTINCT FROM $7
  LIMIT 1
), added AS (
  INSERT INTO policy_exemptions
    (index_name, project, version, reason, created_by, created_at, until)
  SELECT $1, $2, $3, $4, $5, $6, $7 WHERE NOT EXISTS (SELECT 1 FROM found)
  RETURNING {_EXEMPTION_COLUMNS}
)
SELECT * FROM added UNION ALL SELECT * FROM found
"""  # noqa: S608 (constant column names)
# coalesce: a second revocation keeps the first time.
_REVOKE = f"""
UPDATE policy_exemptions SET revoked_at = coalesce(revoked_at, $1)
WHERE id = $2 RETURNING {_EXEMPTION_COLUMNS}
"""  # noqa: S608 (constant column names)
_EXEMPTIONS = f"SELECT {_EXEMPTION_COLUMNS} FROM policy_exemptions"  # noqa: S608 (constants)


class PostgresPolicyStore:
    def __init__(self, run: Runner, in_order: InOrder) -> None:
        self._run = run
        # A removal is recorded behind the page that showed it; the file's next request
        # must find it.
        self._in_order = in_order

    async def _run_on_file(
        self, index: str, project: str, filename: str, work: Callable[[Db], Awaitable[Any]]
    ) -> Any:
        async with self._in_order.hold(("removed", index, project, filename)):
            return await self._run(work)

    async def add_exemption(self, exemption: NewExemption) -> Exemption:
        async def work(db: Db) -> Exemption:
            row = await db.fetchrow(_ADD_EXEMPTION, *dataclasses.astuple(exemption))
            assert row is not None
            return _exemption(row)

        added: Exemption = await self._run(work)
        return added

    async def exemptions(self) -> list[Exemption]:
        async def work(db: Db) -> list[Exemption]:
            return [_exemption(row) for row in await db.fetch(_EXEMPTIONS + " ORDER BY id")]

        found: list[Exemption] = await self._run(work)
        return found

    async def revoke_exemption(self, exemption_id: int, revoked_at: float) -> Exemption | None:
        async def work(db: Db) -> Exemption | None:
            row = await db.fetchrow(
                _REVOKE,
                revoked_at,
                exemption_id,
            )
            return None if row is None else _exemption(row)

        revoked: Exemption | None = await self._run(work)
        return revoked

    async def put_removed_file(
        self, index: str, project: str, file: DistributionFile, removed_at: float
    ) -> None:
        record = json.dumps(dataclasses.asdict(file))

        async def work(db: Db) -> None:
            await db.execute(
                "INSERT INTO policy_removed_files"
                " (index_name, project, filename, record, removed_at)"
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                index,
                project,
                file.filename,
                record,
                removed_at,
            )

        await self._run_on_file(index, project, file.filename, work)

    async def removed_file(
        self, index: str, project: str, filename: str
    ) -> DistributionFile | None:
        async def work(db: Db) -> Any:
            return await db.fetchval(
                "SELECT record FROM policy_removed_files"
                " WHERE index_name = $1 AND project = $2 AND filename = $3",
                index,
                project,
                filename,
            )

        record = await self._run_on_file(index, project, filename, work)
        return None if record is None else DistributionFile(**json.loads(record))

    async def restored_file(self, index: str, project: str, filename: str) -> None:
        async def work(db: Db) -> None:
            await db.execute(
                "DELETE FROM policy_removed_files"
                " WHERE index_name = $1 AND project = $2 AND filename = $3",
                index,
                project,
                filename,
            )

        await self._run_on_file(index, project, filename, work)


def _exemption(row: "asyncpg.Record") -> Exemption:
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
