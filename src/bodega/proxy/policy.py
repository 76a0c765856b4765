"""Supply-chain policy applied: what each index hides of the pages and files it serves, the
break-glass exemptions that lift it, what upstream yanked or removed, and the audit trail
and metrics that say so (issue 15; the rules themselves are core.policy's).

The indexes that govern a request are the one asked and the mirror that serves the project
(a virtual index over root/pypi obeys root/pypi's rules too), each with its own exemptions.
Exemptions are read from the store at most once a second, so `bodega allow` in another
process takes effect within a second, with no restart.
"""

import asyncio
import logging
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from bodega.core.model import DistributionFile, ProjectPage
from bodega.core.policy import (
    NO_POLICY,
    SERVE_REMOVED,
    Exemption,
    FilteredPage,
    Governing,
    IndexPolicy,
    filter_page,
    judge,
    seconds_until,
)
from bodega.errors import NotFound, PolicyBlocked, StorageError
from bodega.proxy.pages import CachedPage
from bodega.proxy.telemetry import Telemetry
from bodega.storage.audit import AuditTrail
from bodega.storage.metadata import NewExemption, PolicyStore

log = logging.getLogger(__name__)

EXEMPTIONS_TTL = 1.0  # seconds: how late another process's `bodega allow` may show
RECENT_BLOCKS = 50  # the /+policy page's "last blocks"
_FILTERED_ENTRIES = 256  # filtered pages kept with their renderings
_IN_THREAD_FILES = 200  # pages filtered off the loop: thousands of files take milliseconds
_FilteredKey = tuple[tuple[str, ...], str, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class Block:
    """A file an index hid, as the /+policy page lists it."""

    at: float  # epoch seconds
    index: str
    project: str
    filename: str
    rule: str
    reason: str


@dataclass(frozen=True, slots=True)
class Governed:
    """A page as an index shows it: the filtered copy (with renderings of its own), and
    the longest a client may cache it before the hidden set changes by itself."""

    cached: CachedPage
    max_age: int | None  # None: time alone changes nothing
    hidden: int  # files hidden


class Policies:
    def __init__(
        self,
        policies: Mapping[str, IndexPolicy],
        store: PolicyStore,
        audit: AuditTrail,
        telemetry: Telemetry,
        *,
        clock: Callable[[], float] = time.time,
        exemptions_ttl: float = EXEMPTIONS_TTL,
    ) -> None:
        self._policies = dict(policies)
        self._store = store
        self._audit = audit
        self._telemetry = telemetry
        self._clock = clock
        self._exemptions_ttl = exemptions_ttl
        self._exemptions: list[Exemption] = []
        self._exemptions_read_at = -float("inf")
        self._reading: asyncio.Future[list[Exemption]] | None = None
        # (indexes, project, hidden filenames) -> (the page filtered, the filtered copy)
        self._filtered: OrderedDict[_FilteredKey, tuple[ProjectPage, CachedPage]] = OrderedDict()
        # (indexes, project) -> (the page, its exemptions, what filtering it gave)
        self._filterings: OrderedDict[
            tuple[tuple[str, ...], str],
            tuple[ProjectPage, tuple[Exemption, ...], FilteredPage],
        ] = OrderedDict()
        self._logged_hidden: OrderedDict[tuple[str, str], tuple[str, ...]] = OrderedDict()
        self.recent: deque[Block] = deque(maxlen=RECENT_BLOCKS)
        self._writes: set[asyncio.Task[None]] = set()

    def of(self, index: str) -> IndexPolicy:
        return self._policies.get(index, NO_POLICY)

    def governs(self, names: Sequence[str]) -> bool:
        """Whether any of the indexes hides anything (else pages pass untouched)."""
        return any(self.of(name).hides_anything for name in names)

    async def exemptions(self) -> list[Exemption]:
        """Every exemption (revoked and expired too), as read at most a second ago."""
        if self._clock() - self._exemptions_read_at < self._exemptions_ttl:
            return self._exemptions
        if self._reading is None:
            self._reading = asyncio.ensure_future(self._read_exemptions())
        reading = self._reading
        try:
            return await asyncio.shield(reading)
        finally:
            if reading.done() and self._reading is reading:
                self._reading = None

    async def _read_exemptions(self) -> list[Exemption]:
        try:
            self._exemptions = await self._store.exemptions()
        except StorageError as error:
            # The last ones read still hold; a locked database is no reason to fail pages.
            log.warning("could not read exemptions: %s", error)
        self._exemptions_read_at = self._clock()
        return self._exemptions

    async def govern(
        self, names: Sequence[str], cached: CachedPage, *, is_answer: bool = True
    ) -> Governed:
        """The page as the indexes `names` (asked first) show it. An answer (a page served,
        not one search reads a version from) is counted and audited."""
        if not self.governs(names):
            return Governed(cached, None, 0)
        now = self._clock()
        filtered = await self._filter(names, cached.page, now)
        if is_answer:
            self._count(names[0], filtered)
        max_age = seconds_until(filtered.next_change, now)
        if not filtered.hidden:
            return Governed(cached, max_age, 0)
        if is_answer:
            self._log_hidden(names[0], filtered)
        return Governed(self._copy(names, cached, filtered), max_age, len(filtered.hidden))

    def active_exemptions(self) -> list[tuple[dict[str, str], float]]:
        """(labels, count) of the exemptions in force per index, as last read."""
        now = self._clock()
        counts = Counter(e.index for e in self._exemptions if e.is_active(now))
        return [({"index": name}, float(counts[name])) for name in sorted(counts)]

    async def check_file(self, names: Sequence[str], project: str, file: DistributionFile) -> None:
        """PolicyBlocked (a 404 naming the rule) when the indexes hide the file."""
        if not self.governs(names):
            return
        verdict = judge(await self._chain(names), project, file, self._clock())
        if verdict.hidden is None:
            return
        rule, reason = verdict.hidden.rule, verdict.hidden.reason
        self._telemetry.index(names[0]).policy_blocked[rule] += 1
        self._block("blocked", Block(self._clock(), names[0], project, file.filename, rule, reason))
        raise PolicyBlocked(f"{file.filename} is hidden by {names[0]}'s policy: {reason}", rule)

    async def removed_file(
        self, names: Sequence[str], project: str, filename: str
    ) -> DistributionFile:
        """A file upstream removed from the page, for its exact URL (lock files pin it)
        while `serve_removed` holds for every index of `names`; NotFound when there is
        none, PolicyBlocked when an index refuses it."""
        mirror = names[-1]
        try:
            file = await self._store.removed_file(mirror, project, filename)
        except StorageError as error:
            raise NotFound(f"{project} has no file {filename} ({error})") from error
        if file is None:
            raise NotFound(f"{project} has no file {filename}")
        view = self._telemetry.index(names[0])
        if not all(self.of(name).serve_removed for name in names):
            view.policy_removed_files["refused"] += 1
            reason = "upstream removed it, and this index serves no removed file"
            block = Block(self._clock(), names[0], project, filename, SERVE_REMOVED, reason)
            self._block("removed_refused", block)
            raise PolicyBlocked(f"{filename}: {reason}", SERVE_REMOVED)
        view.policy_removed_files["served"] += 1
        self._record("removed_served", index=names[0], project=project, filename=filename)
        await self.check_file(names, project, file)
        return file

    def upstream_changed(self, mirror: str, old: ProjectPage, new: ProjectPage) -> None:
        """Revalidation brought a new page: record what upstream yanked, removed or
        quarantined since the last one (an outage never gets here: stale-if-error keeps
        the old page, and a page emptied without a reason is taken for a broken upstream)."""
        view = self._telemetry.index(mirror)
        project = new.name
        for file in new.files:
            before = old.file_named(file.filename)
            if before is None:
                self._write(self._store.restored_file(mirror, project, file.filename))
            elif file.is_yanked and not before.is_yanked:
                view.policy_upstream_changes["yanked"] += 1
                reason = file.yanked if isinstance(file.yanked, str) else ""
                self._record(
                    "upstream_yanked",
                    index=mirror,
                    project=project,
                    filename=file.filename,
                    reason=reason,
                )
        now = self._clock()
        for file in old.files:
            if new.file_named(file.filename) is None:
                view.policy_upstream_changes["removed"] += 1
                self._record(
                    "upstream_removed", index=mirror, project=project, filename=file.filename
                )
                self._write(self._store.put_removed_file(mirror, project, file, now))
        status = new.status.status if new.status is not None else None
        was = old.status.status if old.status is not None else None
        if status == "quarantined" and was != "quarantined":
            view.policy_upstream_changes["quarantined"] += 1
            why = new.status.reason if new.status is not None else None
            self._record("upstream_quarantined", index=mirror, project=project, reason=why)

    async def add_exemption(self, exemption: NewExemption) -> Exemption:
        made = await self._store.add_exemption(exemption)
        self._record("exemption_added", **_exemption_fields(made))
        self._exemptions_read_at = -float("inf")
        return made

    async def revoke_exemption(self, exemption_id: int) -> Exemption | None:
        revoked = await self._store.revoke_exemption(exemption_id, self._clock())
        if revoked is not None:
            self._record("exemption_revoked", **_exemption_fields(revoked))
        self._exemptions_read_at = -float("inf")
        return revoked

    async def close(self) -> None:
        await asyncio.gather(*self._writes)

    # ------------------------------------------------------------------------------ inside

    async def _filter(self, names: Sequence[str], page: ProjectPage, now: float) -> FilteredPage:
        """filter_page, done again only when the page, the project's exemptions or the time
        of the next change say it would come out otherwise: parsing every filename's
        version on each request would cost a large project milliseconds per page."""
        chain = await self._chain(names)
        exemptions = tuple(e for _, found in chain for e in found if e.project == page.name)
        key = (tuple(names), page.name)
        known = self._filterings.get(key)
        if known is not None:
            known_page, known_exemptions, filtered = known
            change = filtered.next_change
            if (
                known_page is page
                and known_exemptions == exemptions
                and (change is None or now < change)
            ):
                self._filterings.move_to_end(key)
                return filtered
        if len(page.files) > _IN_THREAD_FILES:
            filtered = await asyncio.to_thread(filter_page, page, chain, now)
        else:
            filtered = filter_page(page, chain, now)
        self._filterings[key] = (page, exemptions, filtered)
        while len(self._filterings) > _FILTERED_ENTRIES:
            self._filterings.popitem(last=False)
        return filtered

    async def _chain(self, names: Sequence[str]) -> list[Governing]:
        every = await self.exemptions()
        return [
            (self.of(name), [e for e in every if e.index == name])
            for name in names
            if self.of(name).hides_anything
        ]

    def _count(self, index: str, filtered: FilteredPage) -> None:
        view = self._telemetry.index(index)
        for _, hidden in filtered.hidden:
            view.policy_hidden[hidden.rule] += 1
        view.policy_without_upload_time += filtered.without_upload_time

    def _copy(self, names: Sequence[str], cached: CachedPage, filtered: FilteredPage) -> CachedPage:
        """The filtered page as a CachedPage of its own, kept while the same page hides the
        same files, so its renderings (and their ETags) are made once, not per request."""
        key = (tuple(names), cached.page.name, tuple(file.filename for file, _ in filtered.hidden))
        found = self._filtered.get(key)
        if found is not None and found[0] is cached.page:
            self._filtered.move_to_end(key)
            copy = found[1]
        else:
            copy = CachedPage(filtered.page, cached.etag, cached.last_modified, cached.fetched_at)
            self._filtered[key] = (cached.page, copy)
            while len(self._filtered) > _FILTERED_ENTRIES:
                self._filtered.popitem(last=False)
        copy.is_stale, copy.origin, copy.fetched_at = (
            cached.is_stale,
            cached.origin,
            cached.fetched_at,
        )
        return copy

    def _log_hidden(self, index: str, filtered: FilteredPage) -> None:
        """One audit line when an index starts hiding a set of a project's files, not one
        per request for the same page."""
        key = (index, filtered.page.name)
        names = tuple(file.filename for file, _ in filtered.hidden)
        if self._logged_hidden.get(key) == names:
            return
        self._logged_hidden[key] = names
        self._logged_hidden.move_to_end(key)
        while len(self._logged_hidden) > _FILTERED_ENTRIES:
            self._logged_hidden.popitem(last=False)
        now = self._clock()
        for file, hidden in filtered.hidden:
            block = Block(now, index, filtered.page.name, file.filename, hidden.rule, hidden.reason)
            self._block("hidden", block)

    def _block(self, event: str, block: Block) -> None:
        self.recent.appendleft(block)
        self._record(
            event,
            index=block.index,
            project=block.project,
            filename=block.filename,
            rule=block.rule,
            reason=block.reason,
        )

    def _record(self, event: str, **fields: object) -> None:
        self._audit.record({"time": _iso(self._clock()), "event": event, **fields})

    def _write(self, operation: Awaitable[None]) -> None:
        async def write() -> None:
            try:
                await operation
            except StorageError as error:
                log.warning("could not record an upstream change: %s", error)

        task = asyncio.ensure_future(write())
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)


def _exemption_fields(exemption: Exemption) -> dict[str, object]:
    return {
        "id": exemption.id,
        "index": exemption.index,
        "project": exemption.project,
        "version": exemption.version,
        "reason": exemption.reason,
        "by": exemption.created_by,
        "until": None if exemption.until is None else _iso(exemption.until),
    }


def _iso(moment: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))
