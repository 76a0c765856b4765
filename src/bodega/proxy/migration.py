"""`bodega migrate`: an embedded cache (its blob store and SQLite) copied into the shared
backends (an object store and PostgreSQL), through the stores' own Protocols.

Every blob is re-hashed on its way and committed only when its bytes match its key: a
corrupted one is reported and never copied. Records go after the blobs, and a record
that names a blob the target lacks is not copied (nothing at the target points at bytes
it does not have). Resumable: whatever the target already holds is skipped (blobs by a
listing of the target's keys, records by asking the target first), so a second run after
an interruption copies only what is missing, and a run after the source served on copies
what it added. The source is only read, so it may be served meanwhile (SQLite WAL).
"""

import asyncio
import hashlib
from asyncio import FIRST_COMPLETED
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from bodega.errors import InvalidName
from bodega.proxy.crashpoints import CrashPoints
from bodega.storage.blobs import BlobStore, check_key, writing
from bodega.storage.metadata import (
    ExportableMetadataStore,
    HostedStore,
    NewExemption,
    SharedMetadataStore,
)

T = TypeVar("T")

BATCH = 500  # records asked of a store at once
PARALLEL_BLOBS = 4  # blobs copied at once: an object store's latency, not bandwidth, binds
SEARCH_CHUNK = 5000


@dataclass
class Tally:
    """One kind of item: how many were copied, already at the target, gone from the
    source while the copy ran (evicted by a running server), or failed."""

    copied: int = 0
    skipped: int = 0
    gone: int = 0
    failed: int = 0

    @property
    def seen(self) -> int:
        return self.copied + self.skipped + self.gone + self.failed

    def __str__(self) -> str:
        text = f"copied {self.copied}, already there {self.skipped}, failed {self.failed}"
        return text + (f", gone from the source {self.gone}" if self.gone else "")


@dataclass
class MigrationReport:
    tallies: dict[str, Tally] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)  # what, and why

    @property
    def is_complete(self) -> bool:
        return not self.failures

    def tally(self, kind: str) -> Tally:
        return self.tallies.setdefault(kind, Tally())


class _Corrupt(Exception):
    """A blob whose bytes do not hash to its key."""


class Migration:
    """One copy of a cache's blobs and records into other stores."""

    def __init__(
        self,
        source: ExportableMetadataStore,
        source_blobs: BlobStore,
        target: SharedMetadataStore,
        target_blobs: BlobStore,
        *,
        say: Callable[[str], None],
        progress_every: int = 1000,
        crash: CrashPoints = CrashPoints.DISARMED,
    ) -> None:
        self._source = source
        self._export = source.export()
        self._source_blobs = source_blobs
        self._target = target
        self._target_blobs = target_blobs
        self._say = say
        self._every = max(1, progress_every)
        self._crash = crash
        self._report = MigrationReport()
        self._target_keys: set[str] = set()
        self._bad_keys: set[str] = set()  # failed verification or could not be read

    async def run(self) -> MigrationReport:
        await self._copy_blobs()
        await self._copy_blob_records()
        await self._copy_file_digests()
        for index in await self._export.index_names():
            await self._copy_index(index)
        await self._copy_policy()
        await self._copy_accounts()
        return self._report

    def _count(self, kind: str, outcome: str) -> None:
        tally = self._report.tally(kind)
        setattr(tally, outcome, getattr(tally, outcome) + 1)
        if tally.seen % self._every == 0:
            self._say(f"{kind}: {tally.seen} ({tally})")

    def _fail(self, kind: str, what: str, why: str) -> None:
        self._report.failures.append(f"{what}: {why}")
        self._say(f"{kind}: {what}: {why}")
        self._count(kind, "failed")

    # Blobs

    async def _copy_blobs(self) -> None:
        listing = self._target_blobs.keys()  # an async iterator: no dict, whatever SIM118 says
        self._target_keys = {key async for key in listing}
        running: set[asyncio.Task[None]] = set()
        try:
            async for name in self._source_blobs.keys():
                if name in self._target_keys:
                    self._count("blobs", "skipped")
                    continue
                if len(running) >= PARALLEL_BLOBS:
                    done, running = await asyncio.wait(running, return_when=FIRST_COMPLETED)
                    for task in done:
                        task.result()  # the target failing ends the run, with its reason
                running.add(asyncio.create_task(self._copy_one_blob(name)))
            for task in list(running):
                await task
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    async def _copy_one_blob(self, name: str) -> None:
        try:
            key = check_key(name)
        except InvalidName:
            self._fail("blobs", f"blob {name!r}", "not a blob key (not copied)")
            return
        try:
            await self._copy_verified(key)
        except FileNotFoundError:
            self._count("blobs", "gone")
            return
        except _Corrupt as corrupt:
            self._bad_keys.add(key)
            self._fail("blobs", f"blob {key}", f"{corrupt} (not copied)")
            return
        except OSError as error:
            self._bad_keys.add(key)
            self._fail("blobs", f"blob {key}", f"unreadable: {error} (not copied)")
            return
        self._target_keys.add(key)
        self._count("blobs", "copied")
        self._crash.reached("migrate_blob_copied")

    async def _has_blobs(self, keys: Iterable[str | None]) -> bool:
        """Whether the target has every one of `keys`; one the source stored after the
        blobs' pass (a server serving meanwhile) is copied now."""
        for key in keys:
            if key is None or key in self._target_keys:
                continue
            if key not in self._bad_keys:
                await self._copy_one_blob(key)
            if key not in self._target_keys:
                return False
        return True

    async def _copy_verified(self, key: str) -> None:
        digest = hashlib.sha256()
        async with writing(self._target_blobs, key) as writer:
            async for chunk in self._source_blobs.read(key):
                # hashlib lets go of the GIL on large buffers: the loop goes on meanwhile.
                await asyncio.to_thread(digest.update, chunk)
                await writer.write(chunk)
            if digest.hexdigest() != key:
                raise _Corrupt(f"its bytes hash to {digest.hexdigest()}")
            await writer.commit()

    # Records every index shares

    async def _copy_blob_records(self) -> None:
        records = await self._export.blob_records()
        for batch in _batches(records, BATCH):
            there = await self._target.cached_keys([record.key for record in batch])
            for record in batch:
                if record.key in there:
                    self._count("blob records", "skipped")
                elif await self._has_blobs([record.key]):
                    await self._target.record_blob(record.key, record.size, record.accessed_at)
                    await self._target.touch_blobs({record.key: record.accessed_at})
                    self._count("blob records", "copied")
                elif record.key in self._bad_keys:
                    self._fail("blob records", f"blob record {record.key}", "its blob is bad")
                else:
                    self._count("blob records", "gone")  # evicted meanwhile: so is its record

    async def _copy_file_digests(self) -> None:
        # Facts about bytes that outlive the blob: copied whether or not it is still stored.
        for batch in _batches(await self._export.file_digest_keys(), BATCH):
            there = await self._target.file_digests(batch)
            found = await self._source.file_digests([key for key in batch if key not in there])
            for key in batch:
                if key in there:
                    self._count("file digests", "skipped")
                elif key in found:
                    await self._target.put_file_digests(found[key])
                    self._count("file digests", "copied")

    # Each index's records

    async def _copy_index(self, index: str) -> None:
        await self._copy_pages(index)
        await self._copy_root(index)
        await self._copy_search(index)
        await self._copy_core_metadata(index)
        await self._copy_hosted(index, self._source.hosted(index), self._target.hosted(index))

    async def _copy_pages(self, index: str) -> None:
        source, target = self._source.index(index), self._target.index(index)
        for project in await self._export.page_projects(index):
            page = await source.get_page(project)
            there = await target.get_page(project)
            if page is None:
                continue
            # A page the target fetched since (a replica serving already) is newer: kept.
            if there is not None and there.fetched_at >= page.fetched_at:
                self._count("pages", "skipped")
            else:
                await target.put_page(page)
                self._count("pages", "copied")

    async def _copy_root(self, index: str) -> None:
        root = await self._source.index(index).get_root()
        target = self._target.index(index)
        if root is None:
            return
        if not await self._has_blobs(sorted(root.blob_keys)):
            self._fail("root lists", f"the root list of {index}", "its blobs were not copied")
        elif await target.get_root() == root:
            self._count("root lists", "skipped")
        else:
            await target.put_root(root)
            self._count("root lists", "copied")

    async def _copy_search(self, index: str) -> None:
        source, target = self._source.index(index), self._target.index(index)
        root_key = await source.search_root_key()
        names = await self._export.search_names(index)
        if root_key is not None and await target.search_root_key() != root_key:
            sync = await target.start_search_sync()
            try:
                for chunk in _batches(names, SEARCH_CHUNK):
                    await sync.stage(chunk)
                after: str | None = None
                while (after := await sync.merge(after, SEARCH_CHUNK)) is not None:
                    pass
                await sync.finish(root_key)
            except BaseException:
                await sync.abort()
                raise
            self._report.tally("search names").copied += len(names)
        else:
            self._report.tally("search names").skipped += len(names)
        for batch in _batches(await self._export.search_detail_keys(index), BATCH):
            found = await source.get_search_details(batch)
            there = await target.get_search_details(batch)
            for key, details in found.items():
                if there.get(key) == details:
                    self._count("search details", "skipped")
                else:
                    await target.put_search_details(details)
                    self._count("search details", "copied")
        counts = await self._export.download_counts(index)
        for batch in _batches(sorted(counts), BATCH):
            # Added, not set: only what the target lacks, so a second run adds nothing.
            served = await target.get_downloads(batch)
            missing = {key: counts[key] - served.get(key, 0) for key in batch}
            await target.add_downloads({key: n for key, n in missing.items() if n > 0})

    async def _copy_core_metadata(self, index: str) -> None:
        source, target = self._source.index(index), self._target.index(index)
        for project in await self._export.core_metadata_projects(index):
            there = await target.core_metadata_of(project)
            for filename, key in (await source.core_metadata_of(project)).items():
                what = f"the METADATA of {filename} ({index})"
                if there.get(filename) == key:
                    self._count("core metadata", "skipped")
                elif not await self._has_blobs([key]):
                    self._fail("core metadata", what, "its blob was not copied")
                else:
                    await target.put_core_metadata(project, filename, key)
                    self._count("core metadata", "copied")

    async def _copy_hosted(self, index: str, source: HostedStore, target: HostedStore) -> None:
        for project in await source.hosted_projects():
            for file in await source.hosted_files(project.project):
                if not await self._has_blobs([file.sha256, file.metadata_sha256]):
                    # Still recorded: the upload happened, its filename stays taken.
                    problem = f"{file.filename} ({index}): its blob was not copied"
                    self._report.failures.append(problem)
                    self._say(f"hosted files: {problem}")
                if await target.add_hosted_file(file, project.name):
                    self._count("hosted files", "copied")
                else:
                    self._count("hosted files", "skipped")
            there = await target.hosted_project(project.project)
            if there is not None and there != project:
                await target.set_project_status(
                    project.project, project.status, project.status_reason
                )
        for filename in await self._export.accepted_filenames(index):
            # Files deleted at the source: their filenames stay taken, as they were there
            # (a filename is never accepted twice, not even after its file was deleted).
            if await target.accept_filename(filename):
                self._count("deleted files' names", "copied")
        for name in await source.reservations() - await target.reservations():
            await target.reserve(name)
            self._count("reserved names", "copied")

    # Records of the whole store

    async def _copy_policy(self) -> None:
        source, target = self._source.policy(), self._target.policy()
        # An exemption is known by what was asked for: the target numbers its own.
        there = {NewExemption.of(exemption): exemption for exemption in await target.exemptions()}
        for exemption in await source.exemptions():
            made = there.get(NewExemption.of(exemption))
            if made is None:
                made = await target.add_exemption(NewExemption.of(exemption))
                self._count("exemptions", "copied")
            else:
                self._count("exemptions", "skipped")
            if exemption.revoked_at is not None and made.revoked_at is None:
                await target.revoke_exemption(made.id, exemption.revoked_at)
        for removed in await self._export.removed_files():
            if await target.removed_file(removed.index, removed.project, removed.file.filename):
                self._count("removed files", "skipped")
            else:
                await target.put_removed_file(
                    removed.index, removed.project, removed.file, removed.removed_at
                )
                self._count("removed files", "copied")

    async def _copy_accounts(self) -> None:
        source, target = self._source.accounts(), self._target.accounts()
        # add_user and add_token say themselves whether one was there; accounts first, as
        # a token needs its account.
        for user in await source.users():
            self._count("accounts", "copied" if await target.add_user(user) else "skipped")
        for token in await source.tokens():
            if await target.get_token(token.token_id) is not None:
                self._count("tokens", "skipped")
            elif await target.add_token(token):
                self._count("tokens", "copied")
            else:
                self._fail("tokens", f"token {token.token_id}", f"no account {token.user}")
        # Nothing is deleted at the target; a token revoked at the source since an earlier
        # run would stay valid there, so say so.
        kept = {token.token_id for token in await source.tokens()}
        for token in await target.tokens():
            if token.token_id not in kept:
                self._say(
                    f"tokens: {token.token_id} (of {token.user}) is at the target but no longer"
                    " at the source: if it was revoked, revoke it at the target too"
                )


def _batches(items: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
