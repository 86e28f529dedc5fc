"""Timestamps as the agent sends them, and the one form we store.

The agent sends Go `time.Time` values: RFC 3339 with 0-9 fraction digits and the Mac's local
offset. Python's datetime keeps only microseconds, so parsing goes to integer nanoseconds since
the epoch, and everything is stored in one fixed-width UTC form whose string order is its time
order: `2026-11-03T22:22:07.120934551Z`.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NS = 1_000_000_000
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})"
    r"(?:\.(\d{1,9}))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))?"
)


def parse_ns(text: str) -> int:
    """Parse an RFC 3339 timestamp to nanoseconds since the epoch; naive times are UTC."""
    match = _RFC3339.fullmatch(text.strip())
    if match is None:
        raise ValueError("not an RFC 3339 timestamp (e.g. 2026-11-03T14:22:07.120934551-08:00)")
    year, month, day, hour, minute, second, fraction, _z, sign, off_h, off_m = match.groups()
    try:
        wall = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                        tzinfo=UTC)
    except ValueError as exc:
        raise ValueError(f"invalid date or time: {exc}") from None
    offset = 0
    if sign:
        if int(off_h) > 23 or int(off_m) > 59:
            raise ValueError("invalid zone offset")
        offset = (int(off_h) * 3600 + int(off_m) * 60) * (1 if sign == "+" else -1)
    seconds = (wall - _EPOCH) // timedelta(seconds=1) - offset
    nanos = int(fraction.ljust(9, "0")) if fraction else 0
    ns = seconds * _NS + nanos
    format_utc(ns)  # rejects instants that fall outside years 1-9999 once moved to UTC
    return ns


def format_utc(ns: int) -> str:
    """The stored form: fixed-width UTC with nanoseconds, sortable as a string."""
    seconds, nanos = divmod(ns, _NS)
    try:
        moment = _EPOCH + timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError("timestamp out of range") from None
    return (f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T"
            f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}.{nanos:09d}Z")


def normalize(text: str) -> str:
    """Any accepted timestamp in its stored form."""
    return format_utc(parse_ns(text))


def now_ns() -> int:
    return time.time_ns()


def utc_now() -> str:
    return format_utc(now_ns())
