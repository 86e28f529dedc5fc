"""Timestamps as the agent sends them, and the one form we store.

The agent sends Go `time.Time` values: RFC 3339 with 0-9 fraction digits and the Mac's local
offset. Python's datetime keeps only microseconds, so parsing goes to integer nanoseconds since
the epoch, and everything is stored in one fixed-width UTC form whose string order is its time
order: `2026-11-03T22:22:07.120934551Z`.
"""

from __future__ import annotations

import re
import time
from datetime import date

_NS = 1_000_000_000
HOUR_NS = 3600 * _NS  # the unit alerts and agent connection problems are counted in
_EPOCH_DAY = date(1970, 1, 1).toordinal()
_DAYS_IN_400_YEARS = 146_097
_MIN_NS = (date(1, 1, 1).toordinal() - _EPOCH_DAY) * 86_400 * _NS
_MAX_NS = (date(9999, 12, 31).toordinal() - _EPOCH_DAY + 1) * 86_400 * _NS - 1
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})"
    r"(?:\.(\d{1,9}))?"
    r"(?:[Zz]|([+-])(\d{2}):(\d{2}))?"
)


def parse_ns(text: str) -> int:
    """Parse an RFC 3339 timestamp to nanoseconds since the epoch; naive times are UTC."""
    match = _RFC3339.fullmatch(text.strip())
    if match is None:
        raise ValueError("not an RFC 3339 timestamp (e.g. 2026-11-03T14:22:07.120934551-08:00)")
    year, month, day, hour, minute, second, fraction, sign, off_h, off_m = match.groups()
    hour, minute, second = int(hour), int(minute), int(second)
    try:
        days = _ordinal(int(year), int(month), int(day)) - _EPOCH_DAY
    except ValueError as exc:
        raise ValueError(f"invalid date: {exc}") from None
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError("invalid time of day")
    seconds = days * 86_400 + hour * 3600 + minute * 60 + second
    if sign:
        off_h, off_m = int(off_h), int(off_m)
        if off_h > 23 or off_m > 59:
            raise ValueError("invalid zone offset")
        seconds -= (off_h * 3600 + off_m * 60) * (1 if sign == "+" else -1)
    ns = seconds * _NS + (int(fraction.ljust(9, "0")) if fraction else 0)
    if not _MIN_NS <= ns <= _MAX_NS:
        raise ValueError("timestamp out of range once moved to UTC")
    return ns


def _ordinal(year: int, month: int, day: int) -> int:
    """The proleptic Gregorian ordinal (0001-01-01 is 1), year 0 included: Go writes its zero
    time in a zone west of UTC as `0000-12-31T16:00:00-08:00`, the very first instant there
    is. Year 0 has the calendar of year 400, 146,097 days later."""
    if year == 0:
        return date(400, month, day).toordinal() - _DAYS_IN_400_YEARS
    return date(year, month, day).toordinal()


def format_utc(ns: int) -> str:
    """The stored form: fixed-width UTC with nanoseconds, sortable as a string."""
    if not _MIN_NS <= ns <= _MAX_NS:
        raise ValueError("timestamp out of range")
    seconds, nanos = divmod(ns, _NS)
    days, rest = divmod(seconds, 86_400)
    day = date.fromordinal(days + _EPOCH_DAY)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%09dZ" % (  # noqa: UP031 - the fastest here
        day.year, day.month, day.day, rest // 3600, rest // 60 % 60, rest % 60, nanos)


def normalize(text: str) -> str:
    """Any accepted timestamp in its stored form."""
    return format_utc(parse_ns(text))


def now_ns() -> int:
    return time.time_ns()


def utc_now() -> str:
    return format_utc(now_ns())
