"""What an agent's heartbeats mean: which ones its history keeps, and the timeline they give.

An agent reports every 30 s. Kept one by one that is 20,160 rows per agent per week that nobody
reads; what people ask is when a Mac was up or down, when it rebooted, and which agent and
macOS version it ran since when. So the history keeps the heartbeats that answer those
questions plus one sample per interval; the rule is here, once, for every storage engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass

from .. import timeutil

NS = 1_000_000_000
DEFAULT_SAMPLE_SECONDS = 600.0
# A silence longer than this is a gap (the Mac was off, asleep or cut off): four of the
# agent's 30 s intervals, so a heartbeat or two lost on the way is not one.
GAP_SECONDS = 120.0

# Why a heartbeat is kept; one heartbeat may have several reasons.
FIRST = "first"  # the first heard from the agent
RETURN = "return"  # the first after a gap or a stale period
LAST = "last"  # the last before a gap, kept when the gap ends
REBOOT = "reboot"  # its uptime went down
VERSION = "version"  # another agent version
OS = "os"  # another macOS version
SAMPLE = "sample"  # the history's regular sample


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """A heartbeat as every store records it: what the agent said, and when this server
    received it. Liveness is the server's clock: an agent's own clock may be anything."""

    agent_id: str
    timestamp: str  # the agent's clock, stored UTC form
    received_at: str  # stored UTC form
    _: KW_ONLY
    version: str | None = None
    os_version: str | None = None
    uptime_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class LastBeat:
    """What a store holds about an agent when its next heartbeat comes in."""

    received_at: str  # of its latest heartbeat
    timestamp: str | None
    version: str | None
    os_version: str | None
    uptime_seconds: float | None
    stale: bool
    kept_at: str | None  # when the latest heartbeat of its history was received


@dataclass(frozen=True, slots=True)
class KeptBeat:
    """A heartbeat in an agent's history."""

    received_at: str
    timestamp: str | None
    version: str | None
    os_version: str | None
    uptime_seconds: float | None
    # Why it was kept; None for a heartbeat stored by a server that kept every heartbeat.
    reasons: tuple[str, ...] | None


def _seconds_between(earlier: str, later: str) -> float:
    return (timeutil.parse_ns(later) - timeutil.parse_ns(earlier)) / NS


@dataclass(frozen=True, slots=True)
class HistoryRule:
    """Which heartbeats an agent's history keeps."""

    sample_seconds: float = DEFAULT_SAMPLE_SECONDS  # 0: every heartbeat
    gap_seconds: float = GAP_SECONDS

    def reasons(self, last: LastBeat | None, beat: Heartbeat) -> tuple[str, ...]:
        """Why `beat`, coming after `last`, belongs in the history; empty when it does not.
        A RETURN also asks for `last` to be kept (as LAST), so that a gap has both ends."""
        if last is None:
            return (FIRST,)
        reasons = []
        if last.stale or _seconds_between(last.received_at, beat.received_at) > self.gap_seconds:
            reasons.append(RETURN)
        if (beat.uptime_seconds is not None and last.uptime_seconds is not None
                and beat.uptime_seconds < last.uptime_seconds):
            reasons.append(REBOOT)
        if beat.version != last.version:
            reasons.append(VERSION)
        if beat.os_version != last.os_version:
            reasons.append(OS)
        if not reasons and (self.sample_seconds == 0 or last.kept_at is None or _seconds_between(
                last.kept_at, beat.received_at) >= self.sample_seconds):
            reasons.append(SAMPLE)
        return tuple(reasons)


def encode_reasons(reasons: Sequence[str]) -> str:
    """How reasons are stored: `return,reboot`."""
    return ",".join(reasons)


def decode_reasons(stored: str | None) -> tuple[str, ...] | None:
    return None if stored is None else tuple(filter(None, stored.split(",")))
