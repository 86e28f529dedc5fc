"""The stale-agent rule: a silent agent means a failure, a network problem or tampering.

Every storage engine marks agents stale and records reconnections inside its own transaction;
what the alert and the note say is decided here, once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import orjson

from .. import timeutil
from .keys import SERVICE_HOST
from .signals import NewSignal

STALE_RULE_ID = "AGENT-STALE"
STALE_SEVERITY = "high"
STALE_TAGS = ("agent-health", "tampering")
# Many agents silent at once (the office's network was cut, the server was unreachable) is one
# event: one alert that names them, not one per agent.
STALE_MANY_RULE_ID = "AGENT-STALE-MANY"
STALE_MANY_LISTED = 500  # agent ids listed in the alert's context; the count is always exact
STALE_MANY_NAMED = 5  # in its title


@dataclass(frozen=True, slots=True)
class SilentAgent:
    """An agent as it stood when it was found silent: its last heartbeat."""

    agent_id: str
    last_seen: str  # when the server received it (stored UTC form)
    last_timestamp: str | None  # the agent's own clock
    version: str | None
    os_version: str | None
    uptime_seconds: float | None


def stale_alert_id(agent_id: str, last_seen: str) -> str:
    """One id per silence: the same silence can never raise a second alert."""
    digest = hashlib.sha256(f"{STALE_RULE_ID}\0{agent_id}\0{last_seen}".encode())
    return digest.hexdigest()[:32]


def stale_alert_title(agent_id: str) -> str:
    return f"Agent {agent_id} stopped sending heartbeats"


def stale_alert(agent: SilentAgent, now: str, *, threshold_seconds: float) -> NewSignal:
    context = {
        "kind": "agent_stale",
        "agent_id": agent.agent_id,
        "last_seen": agent.last_seen,
        "last_heartbeat_timestamp": agent.last_timestamp,
        "version": agent.version,
        "os_version": agent.os_version,
        "uptime_seconds": agent.uptime_seconds,
        "threshold_seconds": threshold_seconds,
        "stale_since": now,
    }
    return NewSignal(
        signal_id=stale_alert_id(agent.agent_id, agent.last_seen),
        ts=now,
        host_id=agent.agent_id,
        rule_id=STALE_RULE_ID,
        severity=STALE_SEVERITY,
        title=stale_alert_title(agent.agent_id),
        tags_json=orjson.dumps(list(STALE_TAGS)),
        context_json=orjson.dumps(context),
        rule_description=f"No heartbeat for more than {human_duration(threshold_seconds)}. "
                         "A silent agent means a failure, a network problem or tampering: "
                         "check the Mac.",
    )


def stale_summary(agents: list[SilentAgent], now: str, *, threshold_seconds: float,
                  over: int) -> NewSignal | None:
    """One alert for the agents found silent in one check, when they are more than `over`
    (0: never); None leaves one alert per agent (`stale_alert`)."""
    if not over or len(agents) <= over:
        return None
    ordered = sorted(agents, key=lambda agent: agent.agent_id)
    ids = [agent.agent_id for agent in ordered]
    # One id per set of silences: the same check can never raise it twice.
    digest = hashlib.sha256("\0".join([STALE_MANY_RULE_ID, *(
        f"{agent.agent_id}\0{agent.last_seen}" for agent in ordered)]).encode())
    named = ", ".join(ids[:STALE_MANY_NAMED])
    more = f" and {len(ids) - STALE_MANY_NAMED} more" if len(ids) > STALE_MANY_NAMED else ""
    context = {
        "kind": "agents_stale",
        "count": len(ids),
        "agent_ids": ids[:STALE_MANY_LISTED],
        "not_listed": max(0, len(ids) - STALE_MANY_LISTED),
        "last_seen_earliest": min(agent.last_seen for agent in ordered),
        "last_seen_latest": max(agent.last_seen for agent in ordered),
        "threshold_seconds": threshold_seconds,
        "stale_since": now,
    }
    return NewSignal(
        signal_id=digest.hexdigest()[:32],
        ts=now,
        host_id=SERVICE_HOST,
        rule_id=STALE_MANY_RULE_ID,
        severity=STALE_SEVERITY,
        title=f"{len(ids)} agents stopped sending heartbeats at once: {named}{more}",
        tags_json=orjson.dumps(list(STALE_TAGS)),
        context_json=orjson.dumps(context),
        rule_description=f"{len(ids)} agents had no heartbeat for more than "
                         f"{human_duration(threshold_seconds)}, found in one check. So many at "
                         "once is usually the network between them and this server (an office "
                         "offline, a firewall, this server unreachable) rather than each Mac: "
                         "check that first. Each agent shows as stale in the agents panel.",
    )


def reconnection_note(last_seen: str, now: str) -> str:
    """History note on a stale alert when its agent is heard from again."""
    silent = (timeutil.parse_ns(now) - timeutil.parse_ns(last_seen)) / 1e9
    return f"reconnected after {human_duration(silent)}"


def human_duration(seconds: float) -> str:
    """`8 s`, `4 min 10 s`, `3 h 12 min`, `2 d 5 h`: two units at most, never `0 minutes`."""
    total = max(0, round(seconds))
    if total < 60:
        return f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min" + (f" {secs} s" if secs else "")
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    days, hours = divmod(hours, 24)
    return f"{days} d" + (f" {hours} h" if hours else "")
