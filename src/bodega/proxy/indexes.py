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
"""

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from bodega.core.indexes import IndexSpec, MirrorIndex, VirtualIndex, merge_pages, mirror_names
from bodega.core.model import DistributionFile
from bodega.core.search import Query
from bodega.errors import NotFound
from bodega.proxy.catalog import Catalog
from bodega.proxy.core_metadata import CoreMetadataExtractor
from bodega.proxy.pages import CachedPage, ClientRefresh, ProjectPages
from bodega.proxy.release_metadata import ReleaseMetadata
from bodega.proxy.root import RootList
from bodega.proxy.search import Hit, ProjectSearch
from bodega.proxy.telemetry import CacheOutcome
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
    pages: ProjectPages  # renders it (and says how long it may be cached)
    max_age: int


class Indexes:
    def __init__(
        self,
        specs: Sequence[IndexSpec],
        mirrors: Mapping[str, Mirror],
        unions: Mapping[str, RootList],
        default: str,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._specs = {spec.name: spec for spec in specs}
        self._mirrors = dict(mirrors)
        self._unions = dict(unions)  # a virtual index's root list, its bases' as one
        self.default = default
        self._clock = clock
        self._absent: dict[tuple[str, str], float] = {}  # (base, project) -> until

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
        for mirror in await self._having(spec, project, first_only=True):
            return mirror
        raise NotFound(f"no base of {spec.name} has a project named {project}")

    async def search(self, name: str, query: Query) -> list[Hit]:
        """Search every mirror the index serves from; a name found in several shows once,
        as the first base that has it describes it."""
        hits: dict[str, Hit] = {}
        for mirror in self.mirrors_of(name):
            for hit in await mirror.search.search(query):
                hits.setdefault(hit.key, hit)
        return list(hits.values())

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
            return await self._merged_page(spec, project, refresh)
        mirror = await self.serving(name, project)
        cached, outcome = await mirror.pages.lookup(project, refresh)
        return ServedPage(spec.name, cached, outcome, mirror.pages, mirror.pages.max_age(cached))

    async def file(self, name: str, project: str, filename: str) -> tuple[Mirror, DistributionFile]:
        """The file as listed by the mirror that serves it for this index."""
        spec = self.spec(name)
        if isinstance(spec, VirtualIndex) and spec.merge:
            for mirror in await self._having(spec, project, first_only=False):
                if (await mirror.pages.get(project)).page.file_named(filename) is not None:
                    return mirror, await mirror.pages.find_file(project, filename)
        mirror = await self.serving(name, project)
        return mirror, await mirror.pages.find_file(project, filename)

    async def _merged_page(
        self, spec: VirtualIndex, project: str, refresh: ClientRefresh
    ) -> ServedPage:
        mirrors = await self._having(spec, project, first_only=False)
        if not mirrors:
            raise NotFound(f"no base of {spec.name} has a project named {project}")
        looked_up = [await mirror.pages.lookup(project, refresh) for mirror in mirrors]
        cached = [found for found, _ in looked_up]
        page = merge_pages([found.page for found in cached])
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
        return ServedPage(spec.name, merged, outcome, mirrors[0].pages, max_age)

    async def _having(self, spec: VirtualIndex, project: str, *, first_only: bool) -> list[Mirror]:
        """The mirrors, in base order, that have the project (routes applied)."""
        having: list[Mirror] = []
        for base in spec.candidates(project):
            if self._is_absent(base, project):
                continue
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
