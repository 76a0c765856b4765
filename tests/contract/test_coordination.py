"""The coordination ports' contracts (proxy/coordination.py), run on every implementation:
in-process ones, and the shared ones of issue 14 as they come (duties on PostgreSQL)."""

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from bodega.proxy.coordination import (
    EVICTION,
    BlobLeases,
    Duties,
    Flights,
    LocalBlobLeases,
    LocalDuties,
)
from bodega.proxy.singleflight import SingleFlight
from bodega.storage.postgres_duties import PostgresDuties

FLIGHTS: dict[str, Callable[[], Flights[int]]] = {"in-process": SingleFlight}
LEASES: dict[str, Callable[[], BlobLeases]] = {"in-process": LocalBlobLeases}
DUTIES: dict[str, Callable[[], Duties]] = {"in-process": LocalDuties}


@pytest.fixture(params=list(FLIGHTS))
async def flights(request: pytest.FixtureRequest) -> Flights[int]:
    made: Flights[int] = FLIGHTS[request.param]()
    return made


@pytest.fixture(params=list(LEASES))
def leases(request: pytest.FixtureRequest) -> BlobLeases:
    return LEASES[request.param]()


@pytest.fixture(params=[*DUTIES, "postgres"])
async def duties(request: pytest.FixtureRequest) -> AsyncIterator[Duties]:
    if request.param != "postgres":
        yield DUTIES[request.param]()
        return
    # Asked for here, not as an argument: only the PostgreSQL runs start the server.
    shared = PostgresDuties(request.getfixturevalue("postgres_dsn"))
    try:
        yield shared
    finally:
        await shared.close()


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
