"""The service's own background loops (polls, flushes, checkpoints) all stop the same way."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel a background loop and wait until it has ended: its CancelledError is how it
    ends, not an error. Nothing to do for a loop never started."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
