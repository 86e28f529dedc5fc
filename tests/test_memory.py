"""santamon/memory.py: the free pages go back to the system, and never on the event loop."""

from __future__ import annotations

import asyncio
import threading

from santamon import memory
from santamon.tasks import cancel_and_wait


async def test_the_trim_runs_again_and_again_on_a_thread_beside_the_event_loop(monkeypatch):
    real = memory._malloc_trim()  # glibc's; None elsewhere
    loop, three = asyncio.get_running_loop(), asyncio.Event()
    threads: list[int] = []

    def malloc_trim(pad: int) -> int:
        threads.append(threading.get_ident())
        if len(threads) == 3:
            loop.call_soon_threadsafe(three.set)
        return real(pad) if real is not None else 0

    monkeypatch.setattr(memory, "_malloc_trim", lambda: malloc_trim)
    trimming = asyncio.create_task(memory.trim_forever(interval=0.001))
    try:
        await asyncio.wait_for(three.wait(), 10)
    finally:
        await cancel_and_wait(trimming)
    assert threading.get_ident() not in threads
