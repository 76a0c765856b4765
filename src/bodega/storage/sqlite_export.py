"""Everything the SQLite store holds, listed whole (storage.metadata.MetadataExport), for
`bodega migrate`; reads on the store's worker thread, beside a running server (WAL)."""

import json
import sqlite3

from bodega.core.model import DistributionFile
from bodega.storage.metadata import RemovedFile, StoredBlob
from bodega.storage.sqlite_policy import Runner

# The tables whose rows belong to an index by its number: an index with none is no index.
_SCOPED_TABLES = (
    "pages",
    "root",
    "search_names",
    "search_details",
    "search_downloads",
    "search_state",
    "core_metadata",
    "hosted_projects",
    "hosted_filenames",
    "hosted_reserved",
)


class SqliteExport:
    def __init__(self, worker: Runner) -> None:
        self._worker = worker

    async def index_names(self) -> list[str]:
        # Constant table names, no input.
        used = " UNION ".join(f"SELECT index_id FROM {table}" for table in _SCOPED_TABLES)  # noqa: S608
        query = f"SELECT name FROM indexes WHERE id IN ({used}) ORDER BY name"  # noqa: S608
        return await self._column(query)

    async def page_projects(self, index: str) -> list[str]:
        return await self._scoped("SELECT project FROM pages", index, "project")

    async def search_names(self, index: str) -> list[tuple[str, str]]:
        def work(db: sqlite3.Connection) -> list[tuple[str, str]]:
            rows = db.execute(
                "SELECT names.key, names.name FROM search_names AS names"
                " JOIN indexes ON indexes.id = names.index_id"
                " WHERE indexes.name = ? ORDER BY names.key",
                (index,),
            )
            return [(key, name) for key, name in rows]

        return await self._worker.run(work)

    async def search_detail_keys(self, index: str) -> list[str]:
        return await self._scoped("SELECT key FROM search_details", index, "key")

    async def download_counts(self, index: str) -> dict[str, int]:
        def work(db: sqlite3.Connection) -> dict[str, int]:
            rows = db.execute(
                "SELECT counts.key, counts.count FROM search_downloads AS counts"
                " JOIN indexes ON indexes.id = counts.index_id WHERE indexes.name = ?",
                (index,),
            )
            return {key: int(count) for key, count in rows}

        return await self._worker.run(work)

    async def core_metadata_projects(self, index: str) -> list[str]:
        return await self._scoped("SELECT DISTINCT project FROM core_metadata", index, "project")

    async def blob_records(self) -> list[StoredBlob]:
        def work(db: sqlite3.Connection) -> list[StoredBlob]:
            rows = db.execute("SELECT key, size, accessed_at FROM blobs ORDER BY key")
            return [StoredBlob(*row) for row in rows]

        return await self._worker.run(work)

    async def file_digest_keys(self) -> list[str]:
        return await self._column("SELECT sha256 FROM file_digests ORDER BY sha256")

    async def removed_files(self) -> list[RemovedFile]:
        def work(db: sqlite3.Connection) -> list[RemovedFile]:
            rows = db.execute(
                "SELECT index_name, project, record, removed_at FROM policy_removed_files"
                " ORDER BY index_name, project, filename"
            )
            return [
                RemovedFile(index, project, _file(record), removed_at)
                for index, project, record, removed_at in rows
            ]

        return await self._worker.run(work)

    async def accepted_filenames(self, index: str) -> list[str]:
        return await self._scoped("SELECT filename FROM hosted_filenames", index, "filename")

    async def _scoped(self, select: str, index: str, order: str) -> list[str]:
        """`select`'s one column, of the rows of the index `index`."""
        # Constant SQL from this module; the index's name is a parameter.
        where = "WHERE index_id = (SELECT id FROM indexes WHERE name = ?)"
        query = f"{select} {where} ORDER BY {order}"
        return await self._column(query, (index,))

    async def _column(self, query: str, parameters: tuple[str, ...] = ()) -> list[str]:
        def work(db: sqlite3.Connection) -> list[str]:
            return [row[0] for row in db.execute(query, parameters)]

        return await self._worker.run(work)


def _file(record: str) -> DistributionFile:
    # As sqlite_policy.py writes it: the dataclass's fields as JSON.
    return DistributionFile(**json.loads(record))
