"""Severities and triage statuses of a signal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

# Lowest first: forwarding takes a tail of SEVERITIES from its minimum severity.
Severity = Literal["info", "low", "medium", "high", "critical"]
Status = Literal["open", "acknowledged", "resolved"]
SEVERITIES: tuple[str, ...] = get_args(Severity)
STATUSES: tuple[str, ...] = get_args(Status)
NEW_STATUS = "open"  # every signal starts here, whatever its sender says

SYSTEM_ACTOR = "system"  # history entries the service itself writes


def at_or_above(min_severity: str) -> tuple[str, ...]:
    """The severities from `min_severity` up."""
    return SEVERITIES[SEVERITIES.index(min_severity):]


@dataclass(frozen=True, slots=True)
class NewSignal:
    """A validated signal in the form every store inserts it; it is stored `open`."""

    signal_id: str
    ts: str  # stored UTC form (timeutil.format_utc)
    host_id: str
    rule_id: str
    severity: str
    title: str
    tags_json: bytes  # a JSON array
    context_json: bytes  # a JSON object
    rule_description: str | None
    # What the server cut to store it (domain.shortening), e.g. ("context", "title"): the
    # agent retries a refused signal forever, so an oversized one is stored shortened.
    shortened: tuple[str, ...] = ()
    original_context_bytes: int | None = None  # the context's size as received, when cut
    silence_id: int | None = None  # the active silence it matched: stored, but kept quiet
