"""Indexes: which mirror serves a project of an index.

A mirror index has its own parts (pages, root list, search, catalog, core metadata) over one
upstream; blobs, their records and the file cache are shared by every index, so a file is
stored once whichever index fetched it. A virtual index owns no parts: for each project the
first of its bases that has it serves it whole, versions and files alike (uv's `first-index`,
the rule that keeps a name on a private base from being answered by a public one), and a
route pins a name to one base. Only `merge = true` unites the bases' pages, as pip's
`--extra-index-url` does, with the risk that brings.

"Has it" means the base answered a page: upstream's 404 (or an offline mirror that holds no
copy) passes to the next base, and that answer is remembered for the base's TTL so a name
every request finds in the last base does not ask the first ones each time. An upstream
that fails does not pass: the request fails as it would on that mirror alone, because
falling through would serve a name from a base that never should have had it.

Hosted indexes come first, whatever the base order and routes: a name a hosted base has
or reserves is served from that base alone (no dependency confusion), unless the virtual
index says `merge = true`, which unites it with the mirrors' pages as any other name.
"""

import contextlib
import dataclasses
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from bodega.core.indexes import (
    HostedIndex,
    IndexSpec,
    MirrorIndex,
    VirtualIndex,
    hosted_names,
    merge_pages,
    mirror_names,
)
from bodega.core.model import DistributionFile
from bodega.core.releases import latest_version, releases_of
from bodega.core.search import Query
from bodega.errors import NotFound
from bodega.proxy.catalog import Catalog
from bodega.proxy.core_metadata import CoreMetadataExtractor
from bodega.proxy.hosted import HostedProjects
from bodega.proxy.pages import CachedPage, ClientRefresh, ProjectPages
from bodega.proxy.policy import Policies
from bodega.proxy.release_metadata import ReleaseMetadata
from bodega.proxy.root import RootList
from bodega.proxy.search import Hit, ProjectSearch
from bodega.proxy.telemetry import CacheOutcome
from bodega.storage.metadata import HostedFile
from bodega.upstream import Upstream

_ABSENT_ENTRIES = 10_000  # (base, project) pairs remembered as absent


@dataclass(frozen=True, slots=True)
class Mirror:
    """One mirror index's parts."""

    spec: MirrorIndex
    upstream: Upstream
    pages: ProjectPages
    root: RootList
    search: ProjectSearch
    catalog: Catalog
    core_metadata: CoreMetadataExtractor
    release_metadata: ReleaseMetadata

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True, slots=True)
class ServedPage:
    """A project page as an index serves it, and the pages that render and date it."""

    index: str  # the index asked for, by its name
    cached: CachedPage
    outcome: CacheOutcome
    pages: ProjectPages | HostedProjects  # renders it
    max_age: int
    source: str = ""  # the index the project comes from (a virtual index's base)


class Indexes:
    def __init__(
        self,
        specs: Sequence[IndexSpec],
        mirrors: Mapping[str, Mirror],
        unions: Mapping[str, RootList],
        default: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        policies: Policies | None = None,
        hosted: Mapping[str, HostedProjects] | None = None,
    ) -> None:
        self._specs = {spec.name: spec for spec in specs}
        self._mirrors = dict(mirrors)
        self._hosted = dict(hosted or {})
        for each in self._hosted.values():
            each.shadowed_by = functools.partial(self._shadowing, each.name)
        # A virtual index's root list (its bases' as one), a hosted one's.
        self._unions = dict(unions)
        self.default = default
        self._clock = clock
        self._absent: dict[tuple[str, str], float] = {}  # (base, project) -> until
        self.policies = policies  # what each index hides (issue 15); None: nothing

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._specs)

    @property
    def mirrors(self) -> tuple[Mirror, ...]:
        return tuple(self._mirrors.values())

    def spec(self, name: str) -> IndexSpec:
        """The index a path names ("" for the default one); NotFound for no such index."""
        spec = self._specs.get(name or self.default)
        if spec is None:
            raise NotFound(f"no index named {name}")
        return spec

    def mirror(self, name: str) -> Mirror:
        """A mirror index's parts; NotFound when `name` is no mirror."""
        mirror = self._mirrors.get(name or self.default)
        if mirror is None:
            raise NotFound(f"{name} is not a mirror index")
        return mirror

    def hosted(self, name: str) -> HostedProjects:
        """A hosted index's projects; NotFound when `name` is no hosted index."""
        hosted = self._hosted.get(name or self.default)
        if hosted is None:
            raise NotFound(f"{name or self.default} is not a hosted index")
        return hosted

    def hosted_of(self, name: str) -> tuple[HostedProjects, ...]:
        """The hosted indexes an index serves from, in base order (each once)."""
        names = hosted_names(self._specs, self.spec(name).name)
        return tuple(self._hosted[hosted] for hosted in names)

    async def claimed_by(self, name: str, project: str) -> HostedProjects | None:
        """The first hosted index this index serves from that has or reserves the
        project: the only one that may serve it (unless the index merges)."""
        for hosted in self.hosted_of(name):
            if await hosted.claims(project):
                return hosted
        return None

    async def _shadowing(self, hosted: str, project: str) -> str | None:
        """The first mirror that a virtual index over the hosted index `hosted` serves
        from and that has the project, by name; None when none has it."""
        mirrors: dict[str, Mirror] = {}
        for name, spec in self._specs.items():
            if isinstance(spec, VirtualIndex) and hosted in hosted_names(self._specs, name):
                mirrors.update((mirror.name, mirror) for mirror in self.mirrors_of(name))
        for mirror in mirrors.values():
            try:
                await mirror.pages.get(project)
            except NotFound:
                continue
            return mirror.name
        return None

    def mirrors_of(self, name: str) -> tuple[Mirror, ...]:
        """The mirrors an index serves from, in order (each once)."""
        names = mirror_names(self._specs, self.spec(name).name)
        return tuple(self._mirrors[mirror] for mirror in names)

    async def serving(self, name: str, project: str) -> Mirror:
        """The mirror that serves a (normalized) project of this index; NotFound when no
        base has it."""
        spec = self.spec(name)
        if isinstance(spec, MirrorIndex):
            return self._mirrors[spec.name]
        if isinstance(spec, HostedIndex):
            raise NotFound(f"{spec.name} is a hosted index, no mirror")
        if (hosted := await self.claimed_by(spec.name, project)) is not None:
            # Dependency confusion: no mirror answers for a name a hosted base holds.
            raise NotFound(f"{project} comes from {hosted.name} on {spec.name}, no mirror")
        for mirror in await self._having(spec, project, first_only=True):
            return mirror
        raise NotFound(f"no base of {spec.name} has a project named {project}")

    async def search(self, name: str, query: Query) -> list[Hit]:
        """Search every mirror the index serves from; a name found in several shows once,
        as the first base that has it describes it."""
        hits: dict[str, Hit] = {}
        spec = self.spec(name)
        for mirror in self.mirrors_of(name):
            for hit in await mirror.search.search(query):
                if hit.key not in hits:
                    hits[hit.key] = await self._visible_hit(spec.name, mirror, hit)
        return list(hits.values())

    async def _visible_hit(self, name: str, mirror: Mirror, hit: Hit) -> Hit:
        """The hit with the latest version this index shows: one its policy hides is not
        named, and with no page held to judge by, no version is named at all."""
        governing = self._governing(name, mirror)
        if self.policies is None or not self.policies.governs(governing):
            return hit
        held = await mirror.pages.held(hit.key)
        if held is None:
            return dataclasses.replace(hit, version=None)
        governed = await self.policies.govern(governing, held, is_answer=False)
        version = latest_version(releases_of(governed.cached.page))
        return dataclasses.replace(hit, version=version)

    def root_list(self, name: str) -> RootList:
        """The list of every project the index serves: a virtual index's unites its bases'
        (a name a route pins to a base that lacks it is listed all the same)."""
        spec = self.spec(name)
        if isinstance(spec, MirrorIndex):
            return self._mirrors[spec.name].root
        return self._unions[spec.name]

    async def page(self, name: str, project: str, refresh: ClientRefresh) -> ServedPage:
        """The project's page as this index serves it: its mirror's, or with `merge = true`
        the union of every base's that has it."""
        spec = self.spec(name)
        if isinstance(spec, VirtualIndex) and spec.merge:
            served = await self._merged_page(spec, project, refresh)
            mirrors = (mirror.name for mirror in self.mirrors_of(spec.name))
            return await self._governed(served, tuple(dict.fromkeys((spec.name, *mirrors))))
        hosted = await self._hosted_source(spec, project)
        if hosted is not None:
            # Uploaded on purpose by the team: no supply-chain policy of this index hides it.
            found = await hosted.page(project)
            return ServedPage(spec.name, found, CacheOutcome.HIT, hosted, 0, hosted.name)
        mirror = await self.serving(name, project)
        cached, outcome = await mirror.pages.lookup(project, refresh)
        max_age = mirror.pages.max_age(cached)
        served = ServedPage(spec.name, cached, outcome, mirror.pages, max_age, mirror.name)
        return await self._governed(served, self._governing(spec.name, mirror))

    async def visible_page(self, name: str, project: str) -> tuple[Mirror, CachedPage, int]:
        """The page of the mirror that serves the project, as this index shows it (its
        policy applied), and how long a client may cache it: for the UI's project page."""
        spec = self.spec(name)
        mirror = await self.serving(name, project)
        cached = await mirror.pages.get(project)
        served = ServedPage(
            spec.name, cached, CacheOutcome.HIT, mirror.pages, mirror.pages.max_age(cached)
        )
        governed = await self._governed(served, self._governing(spec.name, mirror))
        return mirror, governed.cached, governed.max_age

    async def file(
        self, name: str, project: str, filename: str
    ) -> tuple[Mirror, DistributionFile] | tuple[HostedProjects, HostedFile]:
        """The file as listed by the index (hosted, or the mirror) that serves it here."""
        spec = self.spec(name)
        hosted = await self._hosted_source(spec, project)
        if hosted is not None:
            return hosted, await hosted.find_file(project, filename)
        if isinstance(spec, VirtualIndex) and spec.merge:
            for hosted in self.hosted_of(spec.name):
                if await hosted.claims(project):
                    with contextlib.suppress(NotFound):
                        return hosted, await hosted.find_file(project, filename)
            for mirror in await self._having(spec, project, first_only=False):
                if (await mirror.pages.get(project)).page.file_named(filename) is not None:
                    return mirror, await self._allowed_file(spec.name, mirror, project, filename)
        mirror = await self.serving(name, project)
        return mirror, await self._allowed_file(spec.name, mirror, project, filename)

    async def _allowed_file(
        self, name: str, mirror: Mirror, project: str, filename: str
    ) -> DistributionFile:
        """The file as listed, unless the index's policy hides it (PolicyBlocked); a file
        upstream removed is still found for its exact URL while `serve_removed` holds."""
        governing = self._governing(name, mirror)
        try:
            file = await mirror.pages.find_file(project, filename)
        except NotFound:
            if self.policies is None or await _is_quarantined(mirror, project):
                raise
            return await self.policies.removed_file(governing, project, filename)
        if self.policies is not None:
            await self.policies.check_file(governing, project, file)
        return file

    def _governing(self, name: str, mirror: Mirror | None = None) -> tuple[str, ...]:
        """The indexes whose policies govern what `name` serves from `mirror`: the one
        asked, then the mirror (a virtual index obeys its bases' rules too)."""
        if mirror is None or mirror.name == name:
            return (name,)
        return (name, mirror.name)

    async def _governed(self, served: ServedPage, governing: tuple[str, ...]) -> ServedPage:
        if self.policies is None:
            return served
        governed = await self.policies.govern(governing, served.cached)
        if governed.cached is served.cached and governed.max_age is None:
            return served
        max_age = served.max_age
        if governed.max_age is not None:
            max_age = min(max_age, governed.max_age)
        return ServedPage(
            served.index, governed.cached, served.outcome, served.pages, max_age, served.source
        )

    async def hosted_source(self, name: str, project: str) -> HostedProjects | None:
        """The hosted index that alone serves the project on index `name`, if any."""
        return await self._hosted_source(self.spec(name), project)

    async def _hosted_source(self, spec: IndexSpec, project: str) -> HostedProjects | None:
        """The hosted index that alone serves the project here, if any (never when the
        index merges: then hosted pages are merged like the others)."""
        if isinstance(spec, HostedIndex):
            return self._hosted[spec.name]
        if isinstance(spec, VirtualIndex) and not spec.merge:
            return await self.claimed_by(spec.name, project)
        return None

    async def _merged_page(
        self, spec: VirtualIndex, project: str, refresh: ClientRefresh
    ) -> ServedPage:
        hosted_pages = []
        for hosted in self.hosted_of(spec.name):
            with contextlib.suppress(NotFound):
                hosted_pages.append(await hosted.page(project))
        mirrors = await self._having(spec, project, first_only=False)
        if not mirrors and hosted_pages:
            page = merge_pages([found.page for found in hosted_pages])
            merged_hosted = CachedPage(page, None, None, hosted_pages[0].fetched_at)
            hosted = self.hosted_of(spec.name)[0]
            return ServedPage(spec.name, merged_hosted, CacheOutcome.HIT, hosted, 0)
        if not mirrors:
            raise NotFound(f"no base of {spec.name} has a project named {project}")
        looked_up = [await mirror.pages.lookup(project, refresh) for mirror in mirrors]
        cached = [found for found, _ in looked_up]
        page = merge_pages([found.page for found in hosted_pages + cached])
        merged = CachedPage(
            page,
            etag=None,
            last_modified=None,
            fetched_at=min(found.fetched_at for found in cached),
            is_stale=any(found.is_stale for found in cached),
        )
        outcomes = [outcome for _, outcome in looked_up]
        outcome = CacheOutcome.MISS if CacheOutcome.MISS in outcomes else outcomes[0]
        max_age = min(m.pages.max_age(found) for m, found in zip(mirrors, cached, strict=True))
        max_age = 0 if hosted_pages else max_age
        return ServedPage(spec.name, merged, outcome, mirrors[0].pages, max_age)

    async def _having(self, spec: VirtualIndex, project: str, *, first_only: bool) -> list[Mirror]:
        """The mirrors, in base order, that have the project (routes applied)."""
        having: list[Mirror] = []
        for base in spec.candidates(project):
            if isinstance(self._specs[base], HostedIndex) or self._is_absent(base, project):
                continue  # hosted bases are asked first, by their own rule
            try:
                mirror = await self.serving(base, project)
                await mirror.pages.get(project)
            except NotFound:
                self._note_absent(base, project, self._ttl(base))
                continue
            if mirror not in having:
                having.append(mirror)
            if first_only:
                break
        return having

    def _ttl(self, base: str) -> float:
        return min((mirror.pages.ttl for mirror in self.mirrors_of(base)), default=0.0)

    def _is_absent(self, base: str, project: str) -> bool:
        until = self._absent.get((base, project))
        if until is None:
            return False
        if until > self._clock():
            return True
        del self._absent[base, project]
        return False

    def _note_absent(self, base: str, project: str, ttl: float) -> None:
        if ttl <= 0:
            return
        if len(self._absent) >= _ABSENT_ENTRIES:
            self._absent.pop(next(iter(self._absent)))
        self._absent[base, project] = self._clock() + ttl


async def _is_quarantined(mirror: Mirror, project: str) -> bool:
    """PEP 792: nothing of a quarantined project is offered, removed files included."""
    try:
        page = (await mirror.pages.get(project)).page
    except NotFound:
        return False
    return page.status is not None and page.status.status == "quarantined"
