import pytest

from santamon import timeutil


@pytest.mark.parametrize(("text", "stored"), [
    ("2026-11-03T14:22:07.120934551-08:00", "2026-11-03T22:22:07.120934551Z"),
    ("2026-11-04T08:15:00.5+05:30", "2026-11-04T02:45:00.500000000Z"),
    ("2026-11-03T22:22:07Z", "2026-11-03T22:22:07.000000000Z"),
    ("2026-11-03t22:22:07.1z", "2026-11-03T22:22:07.100000000Z"),
    ("2025-01-15T10:30:00.123456", "2025-01-15T10:30:00.123456000Z"),  # naive is UTC
    ("2026-01-01T00:30:00+01:00", "2025-12-31T23:30:00.000000000Z"),
    ("1969-12-31T23:59:59.999999999Z", "1969-12-31T23:59:59.999999999Z"),
    # Go's zero time as it writes it in UTC, east of it, and west of it (local year 0)
    ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000000000Z"),
    ("0001-01-01T09:00:00+09:00", "0001-01-01T00:00:00.000000000Z"),
    ("0000-12-31T16:00:00-08:00", "0001-01-01T00:00:00.000000000Z"),
    ("9999-12-31T23:59:59.999999999Z", "9999-12-31T23:59:59.999999999Z"),
])
def test_normalize_keeps_the_instant_and_nanoseconds(text, stored):
    assert timeutil.normalize(text) == stored


@pytest.mark.parametrize("text", [
    "", "yesterday", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z",
    "2026-11-03T22:22:07.1234567890Z", "2026-11-03T25:00:00Z", "2026-11-03T22:22:07+24:00",
    "0001-01-01T00:00:00+01:00", "2026-11-03", "0000-02-30T00:00:00-08:00",
    "0000-12-31T15:59:59-08:00",
])
def test_rejects_what_is_not_rfc3339(text):
    with pytest.raises(ValueError):
        timeutil.parse_ns(text)


def test_stored_form_sorts_like_the_instants():
    texts = ["2026-11-03T10:00:00+01:00", "2026-11-03T09:30:00Z", "2026-11-03T09:00:00.5Z",
             "2026-11-03T01:00:00-08:00", "2026-11-03T09:00:00.05Z"]
    by_string = sorted(texts, key=timeutil.normalize)
    by_instant = sorted(texts, key=timeutil.parse_ns)
    assert by_string == by_instant
    assert timeutil.normalize("2026-11-03T10:00:00+01:00") < timeutil.normalize(
        "2026-11-03T09:30:00Z")
