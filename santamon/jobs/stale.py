"""Silent agents: a missing heartbeat means failure or tampering, so each silence is an alert."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from .. import timeutil
from ..domain.agents import stale_alert
from ..store import Liveness, Store

log = logging.getLogger(__name__)


async def check_stale_agents(store: Store, liveness: Liveness, stale_after: float,
                             started_ns: int, clock: Callable[[], int] = timeutil.now_ns) -> str:
    cutoff_ns = clock() - int(stale_after * 1e9)
    if started_ns > cutoff_ns:
        # Agents get the full threshold counted from the server's start: a silence that was
        # only the server being down is not the agent's.
        return "waiting for the threshold to pass since the server started"
    # Heartbeats acknowledged but not yet written count: an agent that just beat is not silent.
    await liveness.flush()
    agents = await store.mark_stale_agents(
        timeutil.format_utc(cutoff_ns),
        functools.partial(stale_alert, threshold_seconds=stale_after))
    for agent_id in agents:
        log.warning("agent %s is stale: no heartbeat for over %gs", agent_id, stale_after)
    return f"{len(agents)} agent(s) newly stale"
