"""Hosted indexes' records on PostgreSQL (storage.metadata.HostedStore), for bodegas that
share one database: every replica takes uploads into the same index.

A filename goes into `hosted_filenames` in the same transaction as its file, and that
table's key decides, as in SQLite (sqlite_hosted.py): of two uploads of one filename, on
one replica or two, the second's insert waits for the first's transaction and then finds
the row, so exactly one commits. Rows there are never deleted, so a filename is never
accepted twice.
"""

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeAlias, TypeVar

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from bodega.storage.metadata import HostedFile, HostedProject

if TYPE_CHECKING:
    from bodega.storage.postgres import PostgresMetadataStore

T = TypeVar("T")
Db: TypeAlias = "PoolConnectionProxy[asyncpg.Record]"

_FILE_COLUMNS = (
    "project, version, filename, sha256, md5, blake2b_256, size, uploaded_at,"
    " requires_python, metadata_sha256, yanked, yank_reason, attestations"
)
_ADD_FILE = f"""
INSERT INTO hosted_files (index_id, {_FILE_COLUMNS})
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
"""  # noqa: S608 (constant column names)
_PROJECT_COLUMNS = "project, name, status, status_reason"
# Every blob a hosted file keeps, of every index: excluded from eviction and pruning
# (postgres.py's _BLOBS_BY_ACCESS) and from `cache verify`'s adoption.
HOSTED_KEYS = """
SELECT sha256 FROM hosted_files
UNION SELECT metadata_sha256 FROM hosted_files WHERE metadata_sha256 IS NOT NULL
"""


class PostgresHostedStore:
    def __init__(self, store: "PostgresMetadataStore", name: str) -> None:
        self._store = store
        self.name = name

    async def _run(self, work: Callable[[Db, int], Awaitable[T]]) -> T:
        return await self._store._run_in(self.name, work)

    async def add_hosted_file(self, file: HostedFile, name: str) -> bool:
        """As the Protocol says. Should the connection break after the commit, before its
        answer, the store's one more try finds the filename taken and answers False: the
        uploader is told of a conflict for a file that was kept (and sees it listed)."""

        async def work(db: Db, index_id: int) -> bool:
            async with db.transaction():
                taken = await db.fetch(
                    "INSERT INTO hosted_filenames VALUES ($1, $2)"
                    " ON CONFLICT DO NOTHING RETURNING 1",
                    index_id,
                    file.filename,
                )
                if not taken:
                    return False
                await db.execute(
                    "INSERT INTO hosted_projects (index_id, project, name) VALUES ($1, $2, $3)"
                    " ON CONFLICT DO NOTHING",
                    index_id,
                    file.project,
                    name,
                )
                await db.execute(
                    _ADD_FILE,
                    index_id,
                    file.project,
                    file.version,
                    file.filename,
                    file.sha256,
                    file.md5,
                    file.blake2b_256,
                    file.size,
                    file.uploaded_at,
                    file.requires_python,
                    file.metadata_sha256,
                    file.yanked,
                    file.yank_reason,
                    file.attestations,
                )
                return True

        return await self._run(work)

    async def accept_filename(self, filename: str) -> bool:
        async def work(db: Db, index_id: int) -> bool:
            taken = await db.fetch(
                "INSERT INTO hosted_filenames VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1",
                index_id,
                filename,
            )
            return bool(taken)

        return await self._run(work)

    async def was_accepted(self, filename: str) -> bool:
        async def work(db: Db, index_id: int) -> bool:
            found = await db.fetchval(
                "SELECT 1 FROM hosted_filenames WHERE index_id = $1 AND filename = $2",
                index_id,
                filename,
            )
            return found is not None

        return await self._run(work)

    async def hosted_files(self, project: str) -> list[HostedFile]:
        async def work(db: Db, index_id: int) -> list[HostedFile]:
            return await _files(db, index_id, project, None, None)

        return await self._run(work)

    async def hosted_project(self, project: str) -> HostedProject | None:
        async def work(db: Db, index_id: int) -> HostedProject | None:
            row = await db.fetchrow(
                f"SELECT {_PROJECT_COLUMNS} FROM hosted_projects"  # noqa: S608 (constants)
                " WHERE index_id = $1 AND project = $2",
                index_id,
                project,
            )
            return None if row is None else HostedProject(*row)

        return await self._run(work)

    async def hosted_projects(self) -> list[HostedProject]:
        async def work(db: Db, index_id: int) -> list[HostedProject]:
            rows = await db.fetch(
                # COLLATE "C": ordered bytewise, as SQLite orders them, whatever the
                # database's collation.
                f"SELECT {_PROJECT_COLUMNS} FROM hosted_projects"  # noqa: S608 (constants)
                ' WHERE index_id = $1 ORDER BY project COLLATE "C"',
                index_id,
            )
            return [HostedProject(*row) for row in rows]

        return await self._run(work)

    async def set_yanked(
        self, project: str, version: str | None, filename: str | None, reason: str | None
    ) -> int:
        async def work(db: Db, index_id: int) -> int:
            where, parameters = _where(index_id, project, version, filename, first=3)
            rows = await db.fetch(
                f"UPDATE hosted_files SET yanked = $1, yank_reason = $2"  # noqa: S608
                f" WHERE {where} RETURNING 1",
                reason is not None,
                reason or "",
                *parameters,
            )
            return len(rows)

        return await self._run(work)

    async def delete_hosted_files(
        self, project: str, version: str | None, filename: str | None
    ) -> list[HostedFile]:
        async def work(db: Db, index_id: int) -> list[HostedFile]:
            where, parameters = _where(index_id, project, version, filename)
            async with db.transaction():
                rows = await db.fetch(
                    f"DELETE FROM hosted_files WHERE {where}"  # noqa: S608 (constants)
                    f" RETURNING seq, {_FILE_COLUMNS}",
                    *parameters,
                )
                if version is None and filename is None:
                    await db.execute(
                        "DELETE FROM hosted_projects WHERE index_id = $1 AND project = $2",
                        index_id,
                        project,
                    )
            return [_file(tuple(row)[1:]) for row in sorted(rows, key=lambda row: row[0])]

        return await self._run(work)

    async def set_project_status(
        self, project: str, status: str | None, reason: str | None
    ) -> bool:
        async def work(db: Db, index_id: int) -> bool:
            rows = await db.fetch(
                "UPDATE hosted_projects SET status = $1, status_reason = $2"
                " WHERE index_id = $3 AND project = $4 RETURNING 1",
                status,
                reason,
                index_id,
                project,
            )
            return bool(rows)

        return await self._run(work)

    async def reserve(self, project: str) -> None:
        async def work(db: Db, index_id: int) -> None:
            await db.execute(
                "INSERT INTO hosted_reserved VALUES ($1, $2) ON CONFLICT DO NOTHING",
                index_id,
                project,
            )

        await self._run(work)

    async def release_reservation(self, project: str) -> bool:
        async def work(db: Db, index_id: int) -> bool:
            rows = await db.fetch(
                "DELETE FROM hosted_reserved WHERE index_id = $1 AND project = $2 RETURNING 1",
                index_id,
                project,
            )
            return bool(rows)

        return await self._run(work)

    async def reservations(self) -> set[str]:
        async def work(db: Db, index_id: int) -> set[str]:
            rows = await db.fetch(
                "SELECT project FROM hosted_reserved WHERE index_id = $1", index_id
            )
            return {row[0] for row in rows}

        return await self._run(work)

    async def hosted_blob_keys(self) -> set[str]:
        async def work(db: Db, index_id: int) -> set[str]:
            return {row[0] for row in await db.fetch(HOSTED_KEYS)}

        return await self._run(work)


def _where(
    index_id: int, project: str, version: str | None, filename: str | None, *, first: int = 1
) -> tuple[str, tuple[object, ...]]:
    """The WHERE clause choosing a project's files (of a version, or one), its parameters
    numbered from `first`."""
    clauses = ["index_id = $%d", "project = $%d"]
    parameters: list[object] = [index_id, project]
    if version is not None:
        clauses.append("version = $%d")
        parameters.append(version)
    if filename is not None:
        clauses.append("filename = $%d")
        parameters.append(filename)
    numbered = [clause % n for n, clause in enumerate(clauses, start=first)]
    return " AND ".join(numbered), tuple(parameters)


async def _files(
    db: Db, index_id: int, project: str, version: str | None, filename: str | None
) -> list[HostedFile]:
    where, parameters = _where(index_id, project, version, filename)
    rows = await db.fetch(
        f"SELECT {_FILE_COLUMNS} FROM hosted_files WHERE {where} ORDER BY seq",  # noqa: S608
        *parameters,
    )
    return [_file(row) for row in rows]


def _file(row: "asyncpg.Record | tuple[object, ...]") -> HostedFile:
    return HostedFile(*row)
