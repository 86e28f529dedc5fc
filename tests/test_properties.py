"""Property tests: timestamp parsing as the agent formats times, and paging through signals."""

from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
from dataclasses import replace
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from santamon import timeutil
from santamon.store import NewSignal, SignalFilter
from santamon.store.sqlite import SQLiteStore

NS = 1_000_000_000
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

instants = st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30),
                        timezones=st.just(dt.UTC))
nanos = st.integers(0, NS - 1)
offsets = st.integers(-(23 * 60 + 59), 23 * 60 + 59)  # minutes east of UTC


def go_format(moment: dt.datetime, ns: int, offset_min: int, zulu: bool) -> str:
    """How Go's time.Time marshals: RFC 3339, trailing zeros of the fraction trimmed."""
    local = moment.replace(microsecond=0) + dt.timedelta(minutes=offset_min)
    text = local.strftime("%Y-%m-%dT%H:%M:%S").rjust(19, "0")
    if ns:
        text += "." + f"{ns:09d}".rstrip("0")
    if offset_min == 0 and zulu:
        return text + "Z"
    sign = "+" if offset_min >= 0 else "-"
    hours, minutes = divmod(abs(offset_min), 60)
    return f"{text}{sign}{hours:02d}:{minutes:02d}"


@given(instants, nanos, offsets, st.booleans())
def test_go_timestamps_parse_to_the_exact_nanosecond(moment, ns, offset_min, zulu):
    local = moment + dt.timedelta(minutes=offset_min)
    if not dt.datetime(1, 1, 1, tzinfo=dt.UTC) < local < dt.datetime(9999, 12, 31, tzinfo=dt.UTC):
        return  # a local wall time outside years 1-9999 cannot be written in RFC 3339
    expected = (moment.replace(microsecond=0) - EPOCH) // dt.timedelta(seconds=1) * NS + ns
    text = go_format(moment, ns, offset_min, zulu)
    assert timeutil.parse_ns(text) == expected
    stored = timeutil.normalize(text)
    assert stored.endswith("Z") and len(stored) == 30
    assert timeutil.parse_ns(stored) == expected
    assert timeutil.normalize(stored) == stored


@given(st.integers(-62135596800 * NS, 253402300799 * NS + NS - 1),
       st.integers(-62135596800 * NS, 253402300799 * NS + NS - 1))
def test_stored_form_sorts_as_time_does(a, b):
    assert (timeutil.format_utc(a) < timeutil.format_utc(b)) == (a < b)


@given(st.text(max_size=40) | st.from_regex(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,12})?"
                                            r"([Zz]|[+-]\d\d:\d\d)?", fullmatch=True))
def test_anything_else_is_a_value_error_never_a_crash(text):
    try:
        ns = timeutil.parse_ns(text)
    except ValueError:
        return
    assert timeutil.parse_ns(timeutil.format_utc(ns)) == ns


# -- paging -----------------------------------------------------------------------------------

# Few distinct times, so many signals share one and the cursor's tie-breaker is exercised.
TIMES = [timeutil.format_utc(1_790_000_000 * NS + k * 250_000_000) for k in range(5)]
SEVERITIES = ["low", "medium", "high"]
STATUSES = ["open", "acknowledged"]

signal_specs = st.lists(st.tuples(st.sampled_from(TIMES), st.sampled_from(SEVERITIES),
                                  st.sampled_from(STATUSES)), max_size=40)


def _signal(n: int, ts: str, severity: str) -> NewSignal:
    return NewSignal(signal_id=f"sig-{n:03d}", ts=ts, host_id="mac", rule_id="SM-001",
                     severity=severity, title="t", tags_json=b"[]", context_json=b"{}",
                     rule_description=None)


async def _walk(specs, query: SignalFilter, limit: int) -> tuple[list[str], list[int]]:
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "walk.db", readers=1)
        await store.open()
        try:
            signals = [_signal(n, ts, severity) for n, (ts, severity, _) in enumerate(specs)]
            if signals:
                await store.insert_signals(signals)
            acknowledged = [s.signal_id for s, (*_, status) in zip(signals, specs, strict=True)
                            if status == "acknowledged"]
            if acknowledged:
                await store.set_status(acknowledged, "acknowledged", None, "test")
            seen: list[str] = []
            sizes: list[int] = []
            cursor = None
            while True:
                page = await store.list_signals(replace(query, limit=limit, cursor=cursor))
                seen += [s["signal_id"] for s in page.signals]
                sizes.append(len(page.signals))
                cursor = page.next_cursor
                if cursor is None:
                    return seen, sizes
                assert len(sizes) <= len(specs) + 1, "paging does not terminate"
        finally:
            await store.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs=signal_specs, limit=st.integers(1, 7),
       severity=st.none() | st.sets(st.sampled_from(SEVERITIES), min_size=1),
       status=st.sampled_from(["all", "open"]),
       since=st.none() | st.sampled_from(TIMES), until=st.none() | st.sampled_from(TIMES))
def test_walking_the_cursor_returns_every_match_exactly_once_newest_first(
        specs, limit, severity, status, since, until):
    query = SignalFilter(status=None if status == "all" else status,
                         severities=tuple(sorted(severity)) if severity else None,
                         since=since, until=until)
    seen, sizes = asyncio.run(_walk(specs, query, limit))

    matches = [
        (ts, n) for n, (ts, sev, st_) in enumerate(specs)
        if (status == "all" or st_ == status) and (not severity or sev in severity)
        and (since is None or ts >= since) and (until is None or ts < until)
    ]
    # Newest first; among equal times, the later insert first.
    expected = [f"sig-{n:03d}" for ts, n in sorted(matches, reverse=True)]
    assert seen == expected
    assert all(size == limit for size in sizes[:-1]) and sizes[-1] <= limit
