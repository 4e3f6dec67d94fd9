"""InOrder: problems in flight shared by runs, handed out in the runs' order."""

from __future__ import annotations

import asyncio

import pytest

from mapcoder_lite.evals.slots import InOrder


def test_a_freed_slot_goes_to_the_lowest_rank_waiting_then_to_the_first_to_ask() -> None:
    async def scenario() -> list[str]:
        slots, order = InOrder(1), []

        async def take(name: str, rank: int) -> None:
            async with slots.slot(rank):
                order.append(name)
                await asyncio.sleep(0.01)

        holder = asyncio.create_task(take("holder", 5))
        await asyncio.sleep(0)  # the holder has the one slot
        waiters = [asyncio.create_task(take(name, rank)) for name, rank in
                   (("late-run", 2), ("early-run", 0), ("middle-run", 1), ("early-run-again", 0))]
        await asyncio.gather(holder, *waiters)
        return order

    assert asyncio.run(scenario()) == ["holder", "early-run", "early-run-again", "middle-run", "late-run"]


def test_a_cancelled_waiter_loses_no_slot_and_a_size_below_one_is_refused() -> None:
    async def scenario() -> int:
        slots, held = InOrder(1), []
        await slots.acquire(0)
        gone = asyncio.create_task(slots.acquire(0))
        await asyncio.sleep(0)
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
        slots.release()
        for _ in range(3):  # the slot is free again, every time
            await asyncio.wait_for(slots.acquire(1), timeout=1)
            held.append(1)
            slots.release()
        return len(held)

    assert asyncio.run(scenario()) == 3
    with pytest.raises(ValueError, match="at least 1"):
        InOrder(0)
