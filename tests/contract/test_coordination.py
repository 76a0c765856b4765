"""The coordination ports' contracts (proxy/coordination.py), run on every implementation:
in-process ones, the shared ones of issue 14 (duties and fetch locks on PostgreSQL), and
those --workers share through the data dir's lock files. Shared fetch locks are tried as two
processes sharing one cache (the `sharing` fixture)."""

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from bodega.proxy.coordination import (
    EVICTION,
    BlobLeases,
    Duties,
    FetchLocks,
    Flights,
    LocalBlobLeases,
    LocalDuties,
    LocalFetchLocks,
)
from bodega.proxy.singleflight import SingleFlight
from bodega.storage import file_coordination
from bodega.storage.file_coordination import FileDuties, FileFetchLocks
from bodega.storage.postgres_duties import PostgresDuties
from bodega.storage.postgres_fetches import RETRY_MOST, PostgresFetchLocks
from tests.support.postgres import PostgresCluster

FLIGHTS: dict[str, Callable[[], Flights[int]]] = {"in-process": SingleFlight}
LEASES: dict[str, Callable[[], BlobLeases]] = {"in-process": LocalBlobLeases}
DUTIES: dict[str, Callable[[], Duties]] = {"in-process": LocalDuties}
KEY = "a" * 64


@pytest.fixture(params=list(FLIGHTS))
async def flights(request: pytest.FixtureRequest) -> Flights[int]:
    made: Flights[int] = FLIGHTS[request.param]()
    return made


@pytest.fixture(params=list(LEASES))
def leases(request: pytest.FixtureRequest) -> BlobLeases:
    return LEASES[request.param]()


@pytest.fixture(params=[*DUTIES, "file", "postgres"])
async def duties(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Duties]:
    if request.param == "file":
        workers = FileDuties(tmp_path)
        yield workers
        await workers.close()
        return
    if request.param != "postgres":
        yield DUTIES[request.param]()
        return
    # Asked for here, not as an argument: only the PostgreSQL runs start the server.
    shared = PostgresDuties(request.getfixturevalue("postgres_dsn"))
    try:
        yield shared
    finally:
        await shared.close()


@pytest.fixture(params=["in-process", "file", "postgres"])
async def fetch_locks(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FetchLocks]:
    if request.param == "in-process":
        yield LocalFetchLocks()
        return
    if request.param == "file":
        workers = FileFetchLocks(tmp_path)
        yield workers
        await workers.close()
        return
    shared = PostgresFetchLocks(request.getfixturevalue("postgres_dsn"))
    try:
        yield shared
    finally:
        await shared.close()


SharedLocks = PostgresFetchLocks | FileFetchLocks


@dataclass(frozen=True)
class Sharing:
    """Fetch locks of processes that share one cache: replicas on one database, or workers
    on one data dir (their locks belong to an open file, not a process, so two in this
    process conflict as two workers do; tests/integration/test_workers.py runs real ones)."""

    make: Callable[[float | None], SharedLocks]  # another process's locks (wait_most)
    retry_most: float  # the longest a waiter sleeps between tries
    notifies: bool  # a waiter is woken as the holder lets go, not at its next try


@pytest.fixture(params=["replicas", "workers"])
async def sharing(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Sharing]:
    made: list[SharedLocks] = []

    def make(wait_most: float | None = None) -> SharedLocks:
        bound = {} if wait_most is None else {"wait_most": wait_most}
        if request.param == "replicas":
            locks: SharedLocks = PostgresFetchLocks(
                request.getfixturevalue("postgres_dsn"), **bound
            )
        else:
            locks = FileFetchLocks(tmp_path, **bound)
        made.append(locks)
        return locks

    if request.param == "replicas":
        yield Sharing(make, RETRY_MOST, notifies=True)
    else:
        yield Sharing(make, file_coordination.RETRY_MOST, notifies=False)
    for locks in made:
        await locks.close()  # again, for some: closing twice does nothing


# ------------------------------------------------------------------------------- flights


async def test_callers_of_one_key_share_one_run(flights: Flights[int]) -> None:
    runs = 0
    release = asyncio.Event()

    async def work() -> int:
        nonlocal runs
        runs += 1
        await release.wait()
        return 42

    callers = [asyncio.ensure_future(flights.call("demo", work)) for _ in range(5)]
    await asyncio.sleep(0)
    assert flights.running("demo") is not None
    release.set()
    assert await asyncio.gather(*callers) == [42] * 5
    assert runs == 1
    assert flights.running("demo") is None
    await flights.close()


async def test_other_keys_run_their_own_work(flights: Flights[int]) -> None:
    async def work(value: int) -> int:
        return value

    assert await flights.call("a", lambda: work(1)) == 1
    assert await flights.call("b", lambda: work(2)) == 2
    await flights.close()


async def test_a_caller_that_goes_away_does_not_cancel_the_work(flights: Flights[int]) -> None:
    release = asyncio.Event()

    async def work() -> int:
        await release.wait()
        return 7

    leaving = asyncio.ensure_future(flights.call("demo", work))
    staying = asyncio.ensure_future(flights.call("demo", work))
    await asyncio.sleep(0)
    leaving.cancel()
    release.set()
    assert await staying == 7
    assert leaving.cancelled()
    await flights.close()


async def test_a_failure_reaches_every_caller_and_the_next_call_runs_anew(
    flights: Flights[int],
) -> None:
    attempts = 0

    async def work() -> int:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise RuntimeError("upstream broke")
        return attempts

    first = [asyncio.ensure_future(flights.call("demo", work)) for _ in range(3)]
    results = await asyncio.gather(*first, return_exceptions=True)
    assert all(isinstance(result, RuntimeError) for result in results)
    assert await flights.call("demo", work) == 2
    await flights.close()


async def test_close_cancels_the_work_left(flights: Flights[int]) -> None:
    async def forever() -> int:
        await asyncio.Event().wait()
        return 0

    running = flights.run("demo", forever)
    await flights.close()
    assert running.cancelled()


# ---------------------------------------------------------------------------- blob leases


async def test_a_leased_blob_is_not_held_for_deletion_until_released(leases: BlobLeases) -> None:
    assert await leases.acquire("k")
    assert await leases.acquire("k")
    leases.release("k")
    async with leases.deleting("k") as is_held:
        assert not is_held  # one lease is left
    assert not leases.is_deleting("k")
    leases.release("k")
    async with leases.deleting("k") as is_held:
        assert is_held
        assert leases.is_deleting("k")
    assert not leases.is_deleting("k")


async def test_a_blob_being_deleted_is_not_leased_and_waiters_go_on_after(
    leases: BlobLeases,
) -> None:
    assert await leases.acquire("other")  # other blobs are not concerned
    waited: asyncio.Future[None] | None = None
    async with leases.deleting("k") as is_held:
        assert is_held
        assert not await leases.acquire("k")
        waited = asyncio.ensure_future(leases.wait_until_deleted("k"))
        await asyncio.sleep(0)
        assert not waited.done()
        async with leases.deleting("k") as again:
            assert not again  # one deletion at a time
    await waited
    assert await leases.acquire("k")
    leases.release("k")
    leases.release("other")


async def test_waiting_for_no_deletion_returns_at_once(leases: BlobLeases) -> None:
    await asyncio.wait_for(leases.wait_until_deleted("k"), 5.0)


# -------------------------------------------------------------------------------- duties


async def test_a_duty_held_here_runs_and_says_so(duties: Duties) -> None:
    ran: list[str] = []

    async def work() -> None:
        ran.append(EVICTION)

    assert await duties.run(EVICTION, work)
    assert ran == [EVICTION]


async def test_a_duty_s_failure_reaches_its_caller(duties: Duties) -> None:
    async def work() -> None:
        raise RuntimeError("a failed pass")

    with pytest.raises(RuntimeError, match="a failed pass"):
        await duties.run(EVICTION, work)


# --------------------------------------------------------------------------- fetch locks


async def test_a_fetch_lock_is_held_and_let_go_again(fetch_locks: FetchLocks) -> None:
    for _ in range(2):  # let go: the same key is taken again at once
        async with fetch_locks.fetching(KEY) as is_shared:
            assert isinstance(is_shared, bool)
        async with fetch_locks.fetching("b" * 64):
            pass


async def test_the_in_process_lock_says_no_one_else_stores_blobs() -> None:
    async with LocalFetchLocks().fetching(KEY) as is_shared:
        assert not is_shared  # the embedded cache never looks in the store twice


async def test_another_process_waits_while_one_fetches_then_goes_on(sharing: Sharing) -> None:
    first, second = sharing.make(None), sharing.make(None)
    order: list[str] = []
    async with first.fetching(KEY) as is_shared:
        assert is_shared  # another process may have stored it: look in the store first
        waiting = asyncio.ensure_future(_hold(second, KEY, order))
        await asyncio.sleep(3 * sharing.retry_most)  # long past the waiter's retries
        assert not waiting.done()
        async with second.fetching("b" * 64):  # other blobs are not held up
            pass
        order.append("first lets go")
        let_go = time.monotonic()
    await asyncio.wait_for(waiting, 5.0)
    assert order == ["first lets go", "second fetches"]
    if sharing.notifies:  # woken by the notification, not at its next try
        assert time.monotonic() - let_go < sharing.retry_most / 2


async def test_a_process_that_dies_while_fetching_frees_its_lock(sharing: Sharing) -> None:
    first, second = sharing.make(None), sharing.make(None)
    order: list[str] = []
    holding = first.fetching(KEY)
    await holding.__aenter__()  # never left: the process dies in the middle
    waiting = asyncio.ensure_future(_hold(second, KEY, order))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    await first.close()  # its connection or descriptor ends, as a kill -9's would
    await asyncio.wait_for(waiting, 2 * sharing.retry_most + 1.0)
    assert order == ["second fetches"]


async def test_a_process_waits_so_long_for_another_then_fetches_beside_it(
    sharing: Sharing,
) -> None:
    first, impatient = sharing.make(None), sharing.make(0.5)
    async with first.fetching(KEY):
        started = time.monotonic()
        async with impatient.fetching(KEY) as is_shared:
            assert is_shared
            assert 0.5 <= time.monotonic() - started < 2.0


async def test_a_cancelled_fetch_lets_go(sharing: Sharing) -> None:
    first, second = sharing.make(None), sharing.make(None)
    entered = asyncio.Event()

    async def fetch_forever() -> None:
        async with first.fetching(KEY):
            entered.set()
            await asyncio.Event().wait()

    fetch = asyncio.ensure_future(fetch_forever())
    await entered.wait()
    fetch.cancel()
    await asyncio.gather(fetch, return_exceptions=True)
    order: list[str] = []
    await asyncio.wait_for(_hold(second, KEY, order), 1.0)


async def test_without_its_database_a_replica_fetches_anyway(
    postgres_cluster: PostgresCluster,
) -> None:
    locks = PostgresFetchLocks(postgres_cluster.dsn)
    try:
        async with locks.fetching(KEY):
            pass
        postgres_cluster.stop()
        started = time.monotonic()
        async with locks.fetching(KEY) as is_shared:  # logged, not failed
            assert is_shared
        assert time.monotonic() - started < 5.0
        postgres_cluster.start()
        async with locks.fetching(KEY):  # a new connection once it is back
            pass
    finally:
        await locks.close()


# ------------------------------------------------------------------------ duties of workers


async def test_one_worker_runs_the_duties_until_it_ends_then_another_takes_them(
    tmp_path: Path,
) -> None:
    first, second = FileDuties(tmp_path), FileDuties(tmp_path)
    ran: list[str] = []

    def work(who: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            ran.append(who)

        return run

    try:
        assert await first.run(EVICTION, work("first"))
        assert not await second.run(EVICTION, work("second"))
        assert await first.run(EVICTION, work("first"))  # it keeps them
        await first.close()  # it ends
        assert await second.run(EVICTION, work("second"))
        assert ran == ["first", "first", "second"]
    finally:
        await second.close()


async def _hold(locks: FetchLocks, key: str, order: list[str]) -> None:
    async with locks.fetching(key):
        order.append("second fetches")
