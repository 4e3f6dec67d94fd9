"""Problems in flight shared by runs gathered side by side, handed out in the runs' order.

A plain semaphore shared by N runs wakes its waiters first come, first served, so every run advances
at once and all of them finish near the end together: a long evaluation stopped halfway holds N
half-done runs and no complete one to publish. `InOrder` gives a free slot to the waiting problem of
the earliest run, so the runs finish largely one after another, each run's slow tail overlapping the
next run's start, with the same number of problems in flight. Not strictly: a worker releases its slot
before it asks for the next one, so when the earliest run has no waiter of its own at that moment, the
slot goes to a later run (with each run's concurrency equal to the slots, about one of them).

    slots = InOrder(16)
    runners = [Runner(..., limiter=slots.slot(rank)) for rank, ... in enumerate(runs)]
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from types import TracebackType


class InOrder:
    """`size` slots; a waiter of a lower rank goes first (among equal ranks, the first to ask)."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"size must be at least 1 (got {size})")
        self._free = size
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()

    def slot(self, rank: int) -> Slot:
        """An async context manager holding one slot at `rank` for each `async with`."""
        return Slot(self, rank)

    async def acquire(self, rank: int) -> None:
        if self._free > 0 and not self._pending():
            self._free -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (rank, next(self._arrivals), future))
        try:
            await future
        except asyncio.CancelledError:
            # Handed the slot just as the waiter was cancelled: pass it on instead of losing it.
            if future.done() and not future.cancelled():
                self.release()
            else:
                future.cancel()  # release() skips it
            raise

    def release(self) -> None:
        while self._waiting:
            _, _, future = heapq.heappop(self._waiting)
            if not future.done():
                future.set_result(None)
                return
        self._free += 1

    def _pending(self) -> bool:
        """Whether anyone still waits (cancelled waiters are dropped on the way)."""
        while self._waiting and self._waiting[0][2].done():
            heapq.heappop(self._waiting)
        return bool(self._waiting)


class Slot:
    """One rank's way into an `InOrder`: `async with slot:` holds a slot for the block."""

    def __init__(self, slots: InOrder, rank: int) -> None:
        self._slots, self._rank = slots, rank

    async def __aenter__(self) -> None:
        await self._slots.acquire(self._rank)

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        self._slots.release()
