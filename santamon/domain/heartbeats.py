"""What an agent's heartbeats mean: which ones its history keeps, and the timeline they give.

An agent reports every 30 s. Kept one by one that is 20,160 rows per agent per week that nobody
reads; what people ask is when a Mac was up or down, when it rebooted, and which agent and
macOS version it ran since when. So the history keeps the heartbeats that answer those
questions plus one sample per interval, and the timeline is worked out from them here, once,
for every storage engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass
from typing import Any

from .. import timeutil

NS = 1_000_000_000
DAY_NS = 86_400 * NS
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
    # How the agent authenticated (domain.keys: bound, shared); None leaves it as it was.
    auth: str | None = None


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
        received = timeutil.parse_ns(beat.received_at)
        reasons = []
        if last.stale or received - timeutil.parse_ns(last.received_at) > self.gap_seconds * NS:
            reasons.append(RETURN)
        if (beat.uptime_seconds is not None and last.uptime_seconds is not None
                and beat.uptime_seconds < last.uptime_seconds):
            reasons.append(REBOOT)
        if beat.version != last.version:
            reasons.append(VERSION)
        if beat.os_version != last.os_version:
            reasons.append(OS)
        if not reasons and (self.sample_seconds == 0 or last.kept_at is None or received
                            - timeutil.parse_ns(last.kept_at) >= self.sample_seconds * NS):
            reasons.append(SAMPLE)
        return tuple(reasons)


def encode_reasons(reasons: Sequence[str]) -> str:
    """How reasons are stored: `return,reboot`."""
    return ",".join(reasons)


def decode_reasons(stored: str | None) -> tuple[str, ...] | None:
    return None if stored is None else tuple(filter(None, stored.split(",")))


# -- the timeline ------------------------------------------------------------------------------

@dataclass(slots=True)
class _Point:
    at: int  # received, ns
    beat: KeptBeat


def _starts_run(point: _Point, previous: _Point | None, gap_ns: int) -> bool:
    """Whether the agent was silent for longer than a gap before this heartbeat. A kept
    heartbeat says so itself; one from a server that kept all of them tells by its distance."""
    if previous is None:
        return True
    reasons = point.beat.reasons
    if reasons is None:
        return point.at - previous.at > gap_ns
    return FIRST in reasons or RETURN in reasons


def _clip(start: int, end: int, low: int, high: int) -> tuple[int, int] | None:
    start, end = max(start, low), min(end, high)
    return (start, end) if start < end else None


def timeline(beats: Sequence[KeptBeat], latest: KeptBeat, *, stale: bool, since_ns: int,
             until_ns: int, now_ns: int, gap_seconds: float = GAP_SECONDS) -> dict[str, Any]:
    """An agent's online and offline intervals, availability per UTC day, versions and reboots
    in [since, until), from its kept heartbeats (oldest first, with the last one before the
    window and the first one after it) and its latest heartbeat.

    Online runs from the first heartbeat after a gap to the last one before the next gap;
    after its latest heartbeat an agent counts as online until it has been silent for longer
    than a gap, or is stale. Time before the first heartbeat known is neither.
    """
    gap_ns = int(gap_seconds * NS)
    end_ns = min(until_ns, now_ns)
    points = [_Point(timeutil.parse_ns(b.received_at), b) for b in beats]
    latest_at = timeutil.parse_ns(latest.received_at)
    if not points or latest_at > points[-1].at:
        points.append(_Point(latest_at, latest))

    runs: list[list[_Point]] = []
    for index, point in enumerate(points):
        if _starts_run(point, points[index - 1] if index else None, gap_ns):
            runs.append([])
        runs[-1].append(point)
    spans: list[tuple[str, int, int]] = []  # (state, start, end), unclipped
    for index, run in enumerate(runs):
        start, stop = run[0].at, run[-1].at
        if index + 1 < len(runs):
            spans += [("online", start, stop), ("offline", stop, runs[index + 1][0].at)]
        elif stale or now_ns - stop > gap_ns:
            spans += [("online", start, stop), ("offline", stop, max(stop, now_ns))]
        else:
            spans.append(("online", start, max(stop, now_ns)))

    known_from = max(since_ns, points[0].at)
    intervals = []
    for state, start, end in spans:
        if (clipped := _clip(start, end, known_from, end_ns)) is not None:
            intervals.append((state, *clipped))
    online = [(start, end) for state, start, end in intervals if state == "online"]
    online_ns = sum(end - start for start, end in online)
    known_ns = max(0, end_ns - known_from)

    days = []
    day = known_from - known_from % DAY_NS
    while day < end_ns and known_ns:
        known_day = _clip(known_from, end_ns, day, day + DAY_NS)
        day_known = known_day[1] - known_day[0] if known_day else 0
        day_online = sum(end - start for span in online
                         if (clipped := _clip(*span, day, day + DAY_NS)) is not None
                         for start, end in [clipped])
        days.append({"date": timeutil.format_utc(day)[:10],
                     "online_seconds": day_online / NS, "known_seconds": day_known / NS,
                     "availability": day_online / day_known if day_known else None})
        day += DAY_NS

    return {
        "gap_seconds": gap_seconds,
        "availability": online_ns / known_ns if known_ns else None,
        "online_seconds": online_ns / NS,
        "offline_seconds": sum(end - start for state, start, end in intervals
                               if state == "offline") / NS,
        "intervals": [{"state": state, "start": timeutil.format_utc(start),
                       "end": timeutil.format_utc(end), "seconds": (end - start) / NS}
                      for state, start, end in intervals],
        "days": days,
        "versions": _versions(points, since_ns, end_ns),
        "reboots": _reboots(points, since_ns, until_ns),
        "heartbeats_kept": sum(1 for point in points[:len(beats)]
                               if since_ns <= point.at < until_ns),
    }


def _versions(points: list[_Point], since_ns: int, end_ns: int) -> list[dict[str, Any]]:
    """Each run of one agent and macOS version that overlaps the window: `since` is the first
    heartbeat with it that the history holds, `until` the first with the next (None: current)."""
    periods: list[dict[str, Any]] = []
    for point in points:
        beat = point.beat
        if periods and (periods[-1]["version"], periods[-1]["os_version"]) == (
                beat.version, beat.os_version):
            continue
        if periods:
            periods[-1]["until_ns"] = point.at
        periods.append({"version": beat.version, "os_version": beat.os_version,
                        "since_ns": point.at, "until_ns": None})
    return [{"version": p["version"], "os_version": p["os_version"],
             "since": timeutil.format_utc(p["since_ns"]),
             "until": None if p["until_ns"] is None else timeutil.format_utc(p["until_ns"])}
            for p in periods
            if p["since_ns"] < end_ns and (p["until_ns"] is None or p["until_ns"] > since_ns)]


def _reboots(points: list[_Point], since_ns: int, until_ns: int) -> list[dict[str, Any]]:
    reboots = []
    for index, point in enumerate(points):
        beat = point.beat
        if not since_ns <= point.at < until_ns:
            continue
        if beat.reasons is None:  # every heartbeat was kept: compare with the one before
            before = points[index - 1].beat if index else None
            rebooted = (before is not None and beat.uptime_seconds is not None
                        and before.uptime_seconds is not None
                        and beat.uptime_seconds < before.uptime_seconds)
        else:
            rebooted = REBOOT in beat.reasons
        if rebooted:
            booted = (None if beat.uptime_seconds is None
                      else timeutil.format_utc(point.at - int(beat.uptime_seconds * NS)))
            reboots.append({"seen_at": beat.received_at, "booted_at": booted,
                            "uptime_seconds": beat.uptime_seconds})
    return reboots
