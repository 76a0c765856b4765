"""Hosted indexes' records in the SQLite store, on its one worker thread.

A filename goes into `hosted_filenames` in the same transaction as its file, and that
table's key decides: of two uploads of one filename, however close, exactly one commits.
Rows there are never deleted, so a filename is never accepted twice.
"""

import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from bodega.storage.metadata import HostedFile, HostedProject

if TYPE_CHECKING:
    from bodega.storage.sqlite import SqliteMetadataStore

T = TypeVar("T")

_FILE_COLUMNS = (
    "project, version, filename, sha256, md5, blake2b_256, size, uploaded_at,"
    " requires_python, metadata_sha256, yanked, yank_reason, attestations"
)
# Every blob a hosted file keeps: excluded from eviction and pruning (sqlite.py) and from
# `cache verify`'s adoption.
HOSTED_KEYS = """
SELECT sha256 FROM hosted_files
UNION SELECT metadata_sha256 FROM hosted_files WHERE metadata_sha256 IS NOT NULL
"""


class SqliteHostedStore:
    def __init__(self, store: "SqliteMetadataStore", name: str) -> None:
        self._store = store
        self.name = name

    async def _run(self, work: Callable[[sqlite3.Connection, int], T]) -> T:
        return await self._store.run_for_index(self.name, work)

    async def add_hosted_file(self, file: HostedFile, name: str) -> bool:
        def work(db: sqlite3.Connection, index_id: int) -> bool:
            with db:
                try:
                    db.execute(
                        "INSERT INTO hosted_filenames VALUES (?, ?)", (index_id, file.filename)
                    )
                except sqlite3.IntegrityError:
                    return False
                db.execute(
                    "INSERT OR IGNORE INTO hosted_projects (index_id, project, name)"
                    " VALUES (?, ?, ?)",
                    (index_id, file.project, name),
                )
                db.execute(
                    f"INSERT INTO hosted_files (index_id, {_FILE_COLUMNS})"  # noqa: S608
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
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
                        int(file.yanked),
                        file.yank_reason,
                        file.attestations,
                    ),
                )
                return True

        return await self._run(work)

    async def accept_filename(self, filename: str) -> bool:
        def work(db: sqlite3.Connection, index_id: int) -> bool:
            with db:
                cursor = db.execute(
                    "INSERT OR IGNORE INTO hosted_filenames VALUES (?, ?)", (index_id, filename)
                )
                return cursor.rowcount > 0

        return await self._run(work)

    async def was_accepted(self, filename: str) -> bool:
        def work(db: sqlite3.Connection, index_id: int) -> bool:
            row = db.execute(
                "SELECT 1 FROM hosted_filenames WHERE index_id = ? AND filename = ?",
                (index_id, filename),
            ).fetchone()
            return row is not None

        return await self._run(work)

    async def hosted_files(self, project: str) -> list[HostedFile]:
        return await self._run(lambda db, index_id: _files(db, index_id, project, None, None))

    async def hosted_project(self, project: str) -> HostedProject | None:
        def work(db: sqlite3.Connection, index_id: int) -> HostedProject | None:
            row = db.execute(
                "SELECT project, name, status, status_reason FROM hosted_projects"
                " WHERE index_id = ? AND project = ?",
                (index_id, project),
            ).fetchone()
            return None if row is None else HostedProject(*row)

        return await self._run(work)

    async def hosted_projects(self) -> list[HostedProject]:
        def work(db: sqlite3.Connection, index_id: int) -> list[HostedProject]:
            rows = db.execute(
                "SELECT project, name, status, status_reason FROM hosted_projects"
                " WHERE index_id = ? ORDER BY project",
                (index_id,),
            )
            return [HostedProject(*row) for row in rows]

        return await self._run(work)

    async def set_yanked(
        self, project: str, version: str | None, filename: str | None, reason: str | None
    ) -> int:
        def work(db: sqlite3.Connection, index_id: int) -> int:
            where, parameters = _where(index_id, project, version, filename)
            with db:
                cursor = db.execute(
                    f"UPDATE hosted_files SET yanked = ?, yank_reason = ? WHERE {where}",  # noqa: S608
                    (int(reason is not None), reason or "", *parameters),
                )
                return cursor.rowcount

        return await self._run(work)

    async def delete_hosted_files(
        self, project: str, version: str | None, filename: str | None
    ) -> list[HostedFile]:
        def work(db: sqlite3.Connection, index_id: int) -> list[HostedFile]:
            where, parameters = _where(index_id, project, version, filename)
            with db:
                deleted = _files(db, index_id, project, version, filename)
                db.execute(f"DELETE FROM hosted_files WHERE {where}", parameters)  # noqa: S608
                if version is None and filename is None:
                    db.execute(
                        "DELETE FROM hosted_projects WHERE index_id = ? AND project = ?",
                        (index_id, project),
                    )
                return deleted

        return await self._run(work)

    async def set_project_status(
        self, project: str, status: str | None, reason: str | None
    ) -> bool:
        def work(db: sqlite3.Connection, index_id: int) -> bool:
            with db:
                cursor = db.execute(
                    "UPDATE hosted_projects SET status = ?, status_reason = ?"
                    " WHERE index_id = ? AND project = ?",
                    (status, reason, index_id, project),
                )
                return cursor.rowcount > 0

        return await self._run(work)

    async def reserve(self, project: str) -> None:
        def work(db: sqlite3.Connection, index_id: int) -> None:
            with db:
                db.execute(
                    "INSERT OR IGNORE INTO hosted_reserved VALUES (?, ?)", (index_id, project)
                )

        await self._run(work)

    async def release_reservation(self, project: str) -> bool:
        def work(db: sqlite3.Connection, index_id: int) -> bool:
            with db:
                cursor = db.execute(
                    "DELETE FROM hosted_reserved WHERE index_id = ? AND project = ?",
                    (index_id, project),
                )
                return cursor.rowcount > 0

        return await self._run(work)

    async def reservations(self) -> set[str]:
        def work(db: sqlite3.Connection, index_id: int) -> set[str]:
            rows = db.execute("SELECT project FROM hosted_reserved WHERE index_id = ?", (index_id,))
            return {row[0] for row in rows}

        return await self._run(work)

    async def hosted_blob_keys(self) -> set[str]:
        def work(db: sqlite3.Connection, index_id: int) -> set[str]:
            return {row[0] for row in db.execute(HOSTED_KEYS)}

        return await self._run(work)


def _where(
    index_id: int, project: str, version: str | None, filename: str | None
) -> tuple[str, tuple[object, ...]]:
    clauses = ["index_id = ?", "project = ?"]
    parameters: list[object] = [index_id, project]
    if version is not None:
        clauses.append("version = ?")
        parameters.append(version)
    if filename is not None:
        clauses.append("filename = ?")
        parameters.append(filename)
    return " AND ".join(clauses), tuple(parameters)


def _files(
    db: sqlite3.Connection,
    index_id: int,
    project: str,
    version: str | None,
    filename: str | None,
) -> list[HostedFile]:
    where, parameters = _where(index_id, project, version, filename)
    rows = db.execute(
        f"SELECT {_FILE_COLUMNS} FROM hosted_files WHERE {where} ORDER BY rowid",  # noqa: S608
        parameters,
    )
    return [_file(row) for row in rows]


def _file(row: tuple[object, ...]) -> HostedFile:
    values = list(row)
    values[10] = bool(values[10])
    return HostedFile(*values)  # type: ignore[arg-type]
