"""`bodega prefetch`: warm a bodega's cache with every file a lock file pins.

It works through the HTTP API of a running bodega, like any installer would: the server's
single-flight downloads, hash checks and size limit apply unchanged, nothing else has to
open the data dir (a server holds its lock), and a cache can be warmed from another host.
For each pin it reads the project page (JSON, PEP 691), picks the pinned files (by hash
when the lock records hashes, else every file of the version), and fetches each file and
its core metadata (PEP 658). A HEAD first tells whether bodega already has the file
(`X-Bodega-Cache: HIT`), so cached files are not sent again.
"""

import asyncio
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

import aiohttp
from packaging.utils import NormalizedName
from packaging.version import InvalidVersion, Version

from bodega.core.filenames import version_of
from bodega.core.lockfiles import Pin
from bodega.core.model import DistributionFile, ProjectPage
from bodega.core.parsing import JSON_V1, PageFormatError, parse_project_page
from bodega.errors import ConfigError

_CHUNK = 256 * 1024


class State(StrEnum):
    CACHED = "already cached"
    FETCHED = "fetched"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one pinned file (or of a pin that could not be resolved to files)."""

    name: str  # a filename, or the pin when no file could be found for it
    state: State
    size: int = 0  # bytes fetched
    error: str = ""


async def prefetch(
    base_url: str,
    pins: Iterable[Pin],
    *,
    jobs: int,
    on_total: Callable[[int], None],
    on_outcome: Callable[[Outcome], None],
) -> list[Outcome]:
    """Fetch every pinned file through the bodega at `base_url`; `on_total` gets the number
    of files once the pages are read, `on_outcome` each file's result as it lands."""
    base_url = base_url if base_url.endswith("/") else base_url + "/"
    by_project: dict[NormalizedName, list[Pin]] = defaultdict(list)
    for pin in pins:
        by_project[pin.project].append(pin)
    limit = asyncio.Semaphore(jobs)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=120)
    # bodega is a nearby service: a proxy the environment sets for the internet has no
    # business between it and this command.
    async with aiohttp.ClientSession(timeout=timeout, trust_env=False) as session:
        await _check_bodega(session, base_url)
        fetcher = _Fetcher(session, base_url, limit)
        resolved = await asyncio.gather(
            *(fetcher.resolve(project, wanted) for project, wanted in by_project.items())
        )
        files = [file for found, _ in resolved for file in found]
        outcomes = [outcome for _, unresolved in resolved for outcome in unresolved]
        on_total(len(files) + len(outcomes))
        for outcome in outcomes:
            on_outcome(outcome)

        async def fetch_and_report(file: DistributionFile) -> Outcome:
            outcome = await fetcher.fetch(file)
            on_outcome(outcome)
            return outcome

        outcomes += await asyncio.gather(*(fetch_and_report(file) for file in files))
    return outcomes


async def _check_bodega(session: aiohttp.ClientSession, base_url: str) -> None:
    """One clear line when nothing (or no bodega) answers at `base_url`, rather than a
    failure per pin."""
    try:
        async with session.get(f"{base_url}-/health") as response:
            if response.status == 200:
                return
            problem = f"{base_url}-/health answered {response.status}"
    except (aiohttp.ClientError, TimeoutError) as error:
        problem = _reason(error)
    raise ConfigError(f"no bodega answers at {base_url} ({problem}); start one or pass --url")


class _Fetcher:
    def __init__(
        self, session: aiohttp.ClientSession, base_url: str, limit: asyncio.Semaphore
    ) -> None:
        self._session = session
        self._base_url = base_url
        self._limit = limit

    async def resolve(
        self, project: NormalizedName, pins: list[Pin]
    ) -> tuple[list[DistributionFile], list[Outcome]]:
        """The files the pins name, and a failure for each pin that names none."""
        url = f"{self._base_url}simple/{project}/"
        try:
            async with self._limit, self._session.get(url, headers={"Accept": JSON_V1}) as got:
                if got.status != 200:
                    raise _Failed(f"{url} answered {got.status}")
                page = parse_project_page(await got.read(), got.content_type, url, project)
        except (_Failed, PageFormatError, aiohttp.ClientError, TimeoutError) as error:
            return [], [Outcome(str(pin), State.FAILED, error=_reason(error)) for pin in pins]
        files: list[DistributionFile] = []
        failures: list[Outcome] = []
        for pin in pins:
            found, problem = _select(page, pin)
            files += [file for file in found if file not in files]
            if problem:
                failures.append(Outcome(str(pin), State.FAILED, error=problem))
        return files, failures

    async def fetch(self, file: DistributionFile) -> Outcome:
        urls = [file.url] + ([file.url + ".metadata"] if file.core_metadata else [])
        size, was_cached = 0, True
        try:
            async with self._limit:
                for url in urls:
                    fetched = await self._fetch_one(url)
                    size += fetched
                    was_cached = was_cached and fetched == 0
        except (_Failed, aiohttp.ClientError, TimeoutError) as error:
            return Outcome(file.filename, State.FAILED, error=_reason(error))
        return Outcome(file.filename, State.CACHED if was_cached else State.FETCHED, size)

    async def _fetch_one(self, url: str) -> int:
        """Bytes fetched into the cache; 0 when bodega had the file already."""
        async with self._session.head(url) as head:
            if head.status == 200 and head.headers.get("X-Bodega-Cache") == "HIT":
                return 0
        size = 0
        async with self._session.get(url) as got:
            if got.status != 200:
                raise _Failed(f"{url.rsplit('/', 1)[-1]}: bodega answered {got.status}")
            # bodega holds the last byte back until the hash matches and drops the connection
            # otherwise, so a body read to its end is a verified, cached file.
            async for chunk in got.content.iter_chunked(_CHUNK):
                size += len(chunk)
        return size


class _Failed(Exception):
    """A pinned file that could not be fetched; reported, never raised out of prefetch."""


def _select(page: ProjectPage, pin: Pin) -> tuple[list[DistributionFile], str]:
    """The pin's files on the page, and what is missing ("" when nothing is)."""
    if pin.hashes:
        found = [file for file in page.files if file.sha256 in pin.hashes]
        missing = len(pin.hashes) - len({file.sha256 for file in found})
        if missing:
            return found, f"{missing} pinned file(s) (by sha256) are not on the index"
        return found, ""
    found = [file for file in page.files if _same_version(version_of(file.filename), pin.version)]
    return found, "" if found else f"no files of version {pin.version} on the index"


def _same_version(found: str | None, pinned: str) -> bool:
    if found is None:
        return False
    try:
        return Version(found) == Version(pinned)
    except InvalidVersion:
        return found == pinned


def _reason(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "timed out"
    return str(error) or type(error).__name__
