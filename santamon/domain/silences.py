"""Silences (Alertmanager's idea, for signals): which signals an analyst has asked to be left
alone for a while, and which stale agents are in a maintenance window. Pure: no I/O.

A silence has matchers on `rule_id`, `host_id`, `severity` and `title`; every given matcher
must hold. The title matcher is exact unless it holds a `*`, which stands for any run of
characters (`curl * | sh`); nothing else is special, and matching is case-sensitive, as a
silence should hide exactly what was asked for. A silence is active from its creation until
its end, or until it is expired early.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from .agents import (
    STALE_RULE_ID,
    STALE_SEVERITY,
    SilentAgent,
    stale_alert,
    stale_alert_title,
    stale_summary,
)
from .signals import NewSignal

MAX_SILENCE_SECONDS = 90 * 86_400
WILDCARD = "*"


def glob_pattern(glob: str) -> re.Pattern[str]:
    """`*` matches any run of characters (also none); everything else stands for itself."""
    return re.compile(".*".join(re.escape(part) for part in glob.split(WILDCARD)), re.DOTALL)


@dataclass(frozen=True, slots=True)
class Matchers:
    rule_id: str | None = None
    host_id: str | None = None
    severity: str | None = None
    title: str | None = None  # exact, or a glob when it holds `*`
    _title: re.Pattern[str] | None = field(default=None, init=False, repr=False,
                                           compare=False)

    def __post_init__(self) -> None:
        if self.title is not None and WILDCARD in self.title:
            object.__setattr__(self, "_title", glob_pattern(self.title))

    @property
    def empty(self) -> bool:
        return not (self.rule_id or self.host_id or self.severity or self.title)

    @property
    def title_is_glob(self) -> bool:
        return self._title is not None

    def title_matches(self, title: str) -> bool:
        if self.title is None:
            return True
        if self._title is not None:
            return self._title.fullmatch(title) is not None
        return title == self.title

    def matches(self, rule_id: str, host_id: str, severity: str, title: str) -> bool:
        return ((self.rule_id is None or self.rule_id == rule_id)
                and (self.host_id is None or self.host_id == host_id)
                and (self.severity is None or self.severity == severity)
                and self.title_matches(title))

    def as_dict(self) -> dict[str, Any]:
        return {"rule_id": self.rule_id, "host_id": self.host_id, "severity": self.severity,
                "title": self.title}


@dataclass(frozen=True, slots=True)
class NewSilence:
    """A silence as an analyst asks for it; its times are in the stored UTC form."""

    matchers: Matchers
    comment: str
    created_by: str
    ends_at: str


@dataclass(frozen=True, slots=True)
class Silence:
    id: int
    matchers: Matchers
    comment: str
    created_by: str
    created_at: str
    ends_at: str  # as planned
    expired_at: str | None = None  # when someone ended it early
    expired_by: str | None = None
    signals: int = 0  # signals stored marked with this silence

    @property
    def end(self) -> str:
        """When it stops (or stopped) silencing."""
        return min(self.ends_at, self.expired_at) if self.expired_at else self.ends_at

    def active(self, now: str) -> bool:
        return self.created_at <= now < self.end

    def as_dict(self, now: str) -> dict[str, Any]:
        return {"id": self.id, **self.matchers.as_dict(), "comment": self.comment,
                "created_by": self.created_by, "created_at": self.created_at,
                "ends_at": self.ends_at, "expired_at": self.expired_at,
                "expired_by": self.expired_by,
                "state": "active" if self.active(now) else "expired",
                "signals": self.signals}


def first_match(silences: list[Silence], now: str, rule_id: str, host_id: str, severity: str,
                title: str) -> Silence | None:
    """The active silence that matches a signal, the one ending last when several do."""
    found: Silence | None = None
    for silence in silences:
        if (silence.active(now) and silence.matchers.matches(rule_id, host_id, severity, title)
                and (found is None or silence.end > found.end)):
            found = silence
    return found


def maintenance_window(silences: list[Silence], now: str, agent_id: str) -> Silence | None:
    """A silence on this host that would match its stale-agent alert: the Mac is expected to
    be silent (in repair, unplugged), so the alert is held until the window ends."""
    return first_match([s for s in silences if s.matchers.host_id == agent_id], now,
                       STALE_RULE_ID, agent_id, STALE_SEVERITY, stale_alert_title(agent_id))


def marked(signal: NewSignal, silences: list[Silence], now: str) -> NewSignal:
    """The signal marked with the active silence it matches, if any, as ingest marks what
    agents send: the service's own alerts are silenced alike."""
    silence = first_match(silences, now, signal.rule_id, signal.host_id, signal.severity,
                          signal.title)
    return replace(signal, silence_id=silence.id if silence else None)


def stale_alert_unless_held(agent: SilentAgent, now: str, *, silences: list[Silence],
                            threshold_seconds: float) -> NewSignal | None:
    """The alert for an agent found silent: none while a maintenance window holds it, else
    marked with any other silence that matches it, like any signal."""
    if maintenance_window(silences, now, agent.agent_id) is not None:
        return None
    return marked(stale_alert(agent, now, threshold_seconds=threshold_seconds), silences, now)


def stale_summary_marked(agents: list[SilentAgent], now: str, *, silences: list[Silence],
                         threshold_seconds: float, over: int) -> NewSignal | None:
    """The one alert for many agents silent at once (`stale_summary`), marked with any
    silence that matches it, like any signal."""
    summary = stale_summary(agents, now, threshold_seconds=threshold_seconds, over=over)
    return None if summary is None else marked(summary, silences, now)
