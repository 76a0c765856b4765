"""Filling in search results behind the answer stays bounded: a few at a time, a few waiting,
each project once an hour."""

import asyncio
from typing import Any, cast

from bodega.errors import NotFound
from bodega.proxy.search_details import DetailsFiller


class HeldPages:
    """Project pages that answer (NotFound) only when released, counting who asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.release = asyncio.Event()

    async def get(self, project: str) -> Any:
        self.asked.append(project)
        await self.release.wait()
        raise NotFound(f"{project} is not on the index")


async def settle() -> None:
    for _ in range(20):  # every ready task runs to its next wait
        await asyncio.sleep(0)


def filler(pages: HeldPages, clock: list[float]) -> DetailsFiller:
    return DetailsFiller(cast(Any, pages), cast(Any, None), cast(Any, None), clock=lambda: clock[0])


async def test_four_at_a_time_and_the_rest_wait() -> None:
    pages, clock = HeldPages(), [0.0]
    details = filler(pages, clock)
    details.fill([f"p{i}" for i in range(6)])
    await settle()
    assert pages.asked == ["p0", "p1", "p2", "p3"]
    pages.release.set()
    await settle()
    assert sorted(pages.asked) == [f"p{i}" for i in range(6)]
    await details.close()


async def test_a_project_is_tried_again_only_after_an_hour() -> None:
    pages, clock = HeldPages(), [0.0]
    pages.release.set()
    details = filler(pages, clock)
    details.fill(["a"])
    await settle()
    details.fill(["a"])
    clock[0] = 3599.0
    details.fill(["a"])
    await settle()
    assert pages.asked == ["a"]
    clock[0] = 3601.0
    details.fill(["a"])
    await settle()
    assert pages.asked == ["a", "a"]
    await details.close()


async def test_fills_beyond_the_waiting_room_are_dropped_and_close_cancels_the_rest() -> None:
    pages, clock = HeldPages(), [0.0]
    details = filler(pages, clock)
    details.fill([f"p{i}" for i in range(100)])
    await settle()
    await details.close()
    pages.release.set()
    await settle()
    assert len(pages.asked) == 4  # the four running when it closed; none started after
    details.fill(["p99"])  # dropped earlier, so not marked as tried: a later search asks
    await settle()
    assert pages.asked[-1] == "p99"
    await details.close()
