"""The index model: what a simple repository says about a project and its files.

Field names follow the specs; each cites the PEP that brought it.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from packaging.utils import NormalizedName


@dataclass(frozen=True, slots=True)
class DistributionFile:
    """One file of a project, as an index page lists it."""

    filename: str
    url: str  # where upstream keeps it: absolute, already resolved against the page
    hashes: dict[str, str] = field(default_factory=dict)  # PEP 503 / 691, lower-case hex
    requires_python: str | None = None  # PEP 503 data-requires-python, unescaped
    yanked: bool | str = False  # PEP 592: False, True, or the reason
    core_metadata: bool | dict[str, str] = False  # PEP 658/714: False, True, or its hashes
    size: int | None = None  # PEP 700
    upload_time: str | None = None  # PEP 700, ISO 8601 UTC
    provenance: str | None = None  # PEP 740
    gpg_sig: bool | None = None  # PEP 503, optional

    @property
    def sha256(self) -> str | None:
        return self.hashes.get("sha256")

    @property
    def metadata_sha256(self) -> str | None:
        if isinstance(self.core_metadata, dict):
            return self.core_metadata.get("sha256")
        return None

    @property
    def is_yanked(self) -> bool:
        return self.yanked is not False


@dataclass(frozen=True, slots=True)
class ProjectStatus:
    """PEP 792 project status."""

    status: str
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ProjectPage:
    """A project's page: its files and what the index says about the project."""

    name: NormalizedName
    files: tuple[DistributionFile, ...]
    versions: tuple[str, ...] = ()  # PEP 700; empty when upstream did not say
    status: ProjectStatus | None = None  # PEP 792
    last_serial: int | None = None  # warehouse's X-PyPI-Last-Serial / meta._last-serial
    _by_filename: dict[str, DistributionFile] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        # File requests look files up by name on every hit; build the index once.
        self._by_filename.update((f.filename, f) for f in self.files)

    def file_named(self, filename: str) -> DistributionFile | None:
        return self._by_filename.get(filename)

    def with_core_metadata(self, found: Mapping[str, str]) -> "ProjectPage":
        """This page with the METADATA sha256s bodega extracted itself (filename -> sha256)
        on files whose upstream entry offered none; upstream's own word always wins."""
        if not any(f.filename in found and not f.core_metadata for f in self.files):
            return self
        files = tuple(
            replace(f, core_metadata={"sha256": found[f.filename]})
            if f.filename in found and not f.core_metadata
            else f
            for f in self.files
        )
        return replace(self, files=files)

    def to_record(self) -> dict[str, Any]:
        """A JSON-ready form for the metadata store."""
        return {
            "name": self.name,
            "versions": list(self.versions),
            "status": None if self.status is None else [self.status.status, self.status.reason],
            "last_serial": self.last_serial,
            "files": [_file_record(f) for f in self.files],
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "ProjectPage":
        status = record.get("status")
        return cls(
            name=NormalizedName(record["name"]),
            versions=tuple(record.get("versions", ())),
            status=None if status is None else ProjectStatus(status[0], status[1]),
            last_serial=record.get("last_serial"),
            files=tuple(DistributionFile(**f) for f in record["files"]),
        )


def _file_record(file: DistributionFile) -> dict[str, Any]:
    return {name: getattr(file, name) for name in DistributionFile.__slots__}
