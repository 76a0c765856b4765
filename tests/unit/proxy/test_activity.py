"""Client activity: background work waits while clients are served, and no longer than its
deadline. The waits here are bounds on a wait, never measured results."""

import asyncio

from bodega.proxy.activity import ClientActivity

QUIET = 0.02


async def test_a_server_that_has_served_nobody_is_quiet() -> None:
    activity = ClientActivity(quiet=QUIET)
    await asyncio.wait_for(activity.until_quiet(activity.now() + 60), 1)


async def test_background_work_waits_for_the_last_request_and_the_quiet_after_it() -> None:
    activity = ClientActivity(quiet=QUIET)
    activity.started()
    activity.started()
    waiter = asyncio.ensure_future(activity.until_quiet(activity.now() + 60))
    activity.ended()
    await asyncio.sleep(QUIET * 3)
    assert not waiter.done()  # one request is still in flight
    activity.ended()
    ended_at = activity.now()
    await asyncio.wait_for(waiter, 5)
    assert activity.now() - ended_at >= QUIET * 0.9  # the quiet after it, too (timer slack)


async def test_a_request_within_the_quiet_spell_starts_it_again() -> None:
    activity = ClientActivity(quiet=QUIET * 5)
    activity.started()
    activity.ended()
    waiter = asyncio.ensure_future(activity.until_quiet(activity.now() + 60))
    await asyncio.sleep(QUIET)
    activity.started()  # before the spell is over
    await asyncio.sleep(QUIET * 8)
    assert not waiter.done()
    activity.ended()
    await asyncio.wait_for(waiter, 5)


async def test_a_server_never_quiet_lets_the_work_go_ahead_at_its_deadline() -> None:
    activity = ClientActivity(quiet=QUIET)
    activity.started()  # never ends
    await asyncio.wait_for(activity.until_quiet(activity.now() + QUIET), 5)
    await asyncio.wait_for(activity.until_quiet(activity.now() - 1), 1)  # past: at once
