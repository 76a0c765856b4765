"""Supply-chain policy's records in memory, for unit tests and the contract suite only:
what storage/sqlite_policy.py keeps, with the same meaning."""

import dataclasses

from packaging.utils import NormalizedName

from bodega.core.model import DistributionFile
from bodega.core.policy import Exemption
from bodega.storage.metadata import NewExemption, RemovedFile


class MemoryPolicyStore:
    def __init__(self) -> None:
        self._exemptions: dict[int, Exemption] = {}
        # (index, project, filename) -> the file and when it was first removed
        self._removed: dict[tuple[str, str, str], tuple[DistributionFile, float]] = {}

    async def add_exemption(self, exemption: NewExemption) -> Exemption:
        for found in self._exemptions.values():
            if NewExemption.of(found) == exemption:
                return found
        made = Exemption(
            len(self._exemptions) + 1,
            exemption.index,
            NormalizedName(exemption.project),
            exemption.version,
            exemption.reason,
            exemption.created_by,
            exemption.created_at,
            exemption.until,
        )
        self._exemptions[made.id] = made
        return made

    async def exemptions(self) -> list[Exemption]:
        return list(self._exemptions.values())

    async def revoke_exemption(self, exemption_id: int, revoked_at: float) -> Exemption | None:
        found = self._exemptions.get(exemption_id)
        if found is not None and found.revoked_at is None:
            found = self._exemptions[exemption_id] = dataclasses.replace(
                found, revoked_at=revoked_at
            )
        return found

    async def put_removed_file(
        self, index: str, project: str, file: DistributionFile, removed_at: float
    ) -> None:
        self._removed.setdefault((index, project, file.filename), (file, removed_at))

    async def removed_file(
        self, index: str, project: str, filename: str
    ) -> DistributionFile | None:
        found = self._removed.get((index, project, filename))
        return None if found is None else found[0]

    def removed_files(self) -> list[RemovedFile]:
        return [
            RemovedFile(index, project, file, removed_at)
            for (index, project, _), (file, removed_at) in sorted(self._removed.items())
        ]

    async def restored_file(self, index: str, project: str, filename: str) -> None:
        self._removed.pop((index, project, filename), None)
