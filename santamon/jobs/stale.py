"""Silent agents: a missing heartbeat means failure or tampering, so each silence is an alert."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from .. import timeutil
from ..domain.silences import stale_alert_unless_held, stale_summary_marked
from ..store import Liveness, Store

log = logging.getLogger(__name__)

# Beyond this many agents in one check (or as soon as they get one alert), one log line names
# them all.
LOGGED_ONE_BY_ONE = 10


async def check_stale_agents(store: Store, liveness: Liveness, stale_after: float,
                             started_ns: int, clock: Callable[[], int] = timeutil.now_ns, *,
                             summary_over: int = 0, held_elsewhere: float = 0.0) -> str:
    """Mark silent agents stale; more than `summary_over` alerts due at once (if not 0) become
    one alert for all their agents. An agent in a maintenance window raises none and is not
    counted; a silenced alert is stored on its own (store.common.stale_alerts).

    `held_elsewhere`: how long other processes sharing the database may hold a heartbeat
    they answered before writing it (their flush interval); an agent gets that on top of
    the threshold, so a heartbeat in another process's memory never makes it stale."""
    cutoff_ns = clock() - int((stale_after + held_elsewhere) * 1e9)
    if started_ns > cutoff_ns:
        # Agents get the full threshold counted from the server's start: a silence that was
        # only the server being down is not the agent's.
        return "waiting for the threshold to pass since the server started"
    # Heartbeats acknowledged but not yet written count: an agent that just beat is not silent.
    await liveness.flush()
    # Read at each run, not cached: one small query, and a maintenance window holds the
    # alert from the moment it is made, whichever instance made it.
    silences = await store.list_silences(active_at=timeutil.format_utc(clock()))
    agents = await store.mark_stale_agents(
        timeutil.format_utc(cutoff_ns),
        functools.partial(stale_alert_unless_held, silences=silences,
                          threshold_seconds=stale_after),
        functools.partial(stale_summary_marked, silences=silences, threshold_seconds=stale_after,
                          over=summary_over))
    if len(agents) > LOGGED_ONE_BY_ONE or 0 < summary_over < len(agents):
        more = len(agents) - LOGGED_ONE_BY_ONE
        log.warning("%d agents are stale at once: no heartbeat for over %gs: %s%s",
                    len(agents), stale_after, ", ".join(agents[:LOGGED_ONE_BY_ONE]),
                    f" and {more} more" if more > 0 else "")
    else:
        for agent_id in agents:
            log.warning("agent %s is stale: no heartbeat for over %gs", agent_id, stale_after)
    return f"{len(agents)} agent(s) newly stale"
