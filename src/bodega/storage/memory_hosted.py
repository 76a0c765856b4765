"""Hosted indexes' records in memory, for unit tests and the contract suites only: what
SQLite keeps, with the same meaning (tests/contract/test_metadata_hosted.py)."""

from dataclasses import dataclass, field, replace

from bodega.storage.metadata import HostedFile, HostedProject


@dataclass
class _HostedData:
    projects: dict[str, HostedProject] = field(default_factory=dict)
    files: dict[str, HostedFile] = field(default_factory=dict)  # by filename, upload order
    accepted: set[str] = field(default_factory=set)
    reserved: set[str] = field(default_factory=set)


class MemoryHostedStores:
    """Every hosted index's records."""

    def __init__(self) -> None:
        self._indexes: dict[str, _HostedData] = {}

    def hosted(self, name: str) -> "MemoryHostedStore":
        return MemoryHostedStore(self, self._indexes.setdefault(name, _HostedData()))

    def names(self) -> list[str]:
        return sorted(self._indexes)

    def accepted_filenames(self, name: str) -> list[str]:
        data = self._indexes.get(name)
        return sorted(data.accepted) if data is not None else []

    def blob_keys(self) -> set[str]:
        keys: set[str] = set()
        for data in self._indexes.values():
            for file in data.files.values():
                keys.add(file.sha256)
                if file.metadata_sha256 is not None:
                    keys.add(file.metadata_sha256)
        return keys


class MemoryHostedStore:
    def __init__(self, stores: MemoryHostedStores, data: _HostedData) -> None:
        self._stores = stores
        self._data = data

    async def add_hosted_file(self, file: HostedFile, name: str) -> bool:
        if file.filename in self._data.accepted:
            return False
        self._data.accepted.add(file.filename)
        self._data.projects.setdefault(file.project, HostedProject(file.project, name))
        self._data.files[file.filename] = file
        return True

    async def accept_filename(self, filename: str) -> bool:
        if filename in self._data.accepted:
            return False
        self._data.accepted.add(filename)
        return True

    async def was_accepted(self, filename: str) -> bool:
        return filename in self._data.accepted

    async def hosted_files(self, project: str) -> list[HostedFile]:
        return [file for file in self._data.files.values() if file.project == project]

    async def hosted_project(self, project: str) -> HostedProject | None:
        return self._data.projects.get(project)

    async def hosted_projects(self) -> list[HostedProject]:
        return [self._data.projects[key] for key in sorted(self._data.projects)]

    async def set_yanked(
        self, project: str, version: str | None, filename: str | None, reason: str | None
    ) -> int:
        matched = self._matching(project, version, filename)
        for file in matched:
            self._data.files[file.filename] = replace(
                file, yanked=reason is not None, yank_reason=reason or ""
            )
        return len(matched)

    async def delete_hosted_files(
        self, project: str, version: str | None, filename: str | None
    ) -> list[HostedFile]:
        matched = self._matching(project, version, filename)
        for file in matched:
            del self._data.files[file.filename]
        if version is None and filename is None:
            self._data.projects.pop(project, None)
        return matched

    async def set_project_status(
        self, project: str, status: str | None, reason: str | None
    ) -> bool:
        found = self._data.projects.get(project)
        if found is None:
            return False
        self._data.projects[project] = replace(found, status=status, status_reason=reason)
        return True

    async def reserve(self, project: str) -> None:
        self._data.reserved.add(project)

    async def release_reservation(self, project: str) -> bool:
        if project not in self._data.reserved:
            return False
        self._data.reserved.discard(project)
        return True

    async def reservations(self) -> set[str]:
        return set(self._data.reserved)

    async def hosted_blob_keys(self) -> set[str]:
        return self._stores.blob_keys()

    def _matching(
        self, project: str, version: str | None, filename: str | None
    ) -> list[HostedFile]:
        return [
            file
            for file in self._data.files.values()
            if file.project == project
            and (version is None or file.version == version)
            and (filename is None or file.filename == filename)
        ]
