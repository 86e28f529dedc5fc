"""What a silence matches and when (santamon/domain/silences.py): pure, no I/O."""

from __future__ import annotations

import json

import pytest

from santamon.domain.agents import STALE_RULE_ID, SilentAgent
from santamon.domain.silences import (
    Matchers,
    Silence,
    first_match,
    maintenance_window,
    stale_alert_unless_held,
)

from .helpers import SAMPLES

GLOBS = json.loads((SAMPLES / "title-globs.json").read_text())["cases"]
T0, T1, T2, T3 = ("2026-11-03T10:00:00.000000000Z", "2026-11-03T11:00:00.000000000Z",
                  "2026-11-03T12:00:00.000000000Z", "2026-11-03T13:00:00.000000000Z")


@pytest.mark.parametrize(("glob", "title", "matches"), GLOBS)
def test_title_globs(glob, title, matches):
    assert Matchers(title=glob).title_matches(title) is matches


def silence(n: int, ends_at: str = T2, **matchers: str) -> Silence:
    return Silence(n, Matchers(**matchers), "why", "alice", T0, ends_at)


def test_every_given_matcher_must_hold():
    m = Matchers(rule_id="SM-008", host_id="build-mac", severity="low", title="curl * | sh")
    assert m.matches("SM-008", "build-mac", "low", "curl x | sh")
    assert not m.matches("SM-009", "build-mac", "low", "curl x | sh")
    assert not m.matches("SM-008", "other-mac", "low", "curl x | sh")
    assert not m.matches("SM-008", "build-mac", "high", "curl x | sh")
    assert not m.matches("SM-008", "build-mac", "low", "wget x | sh")
    assert Matchers(host_id="build-mac").matches("ANY", "build-mac", "info", "anything")
    assert Matchers().empty and not m.empty


def test_a_silence_is_active_from_creation_until_its_end_or_expiry():
    s = silence(1)
    assert not s.active("2026-11-03T09:59:59.999999999Z")
    assert s.active(T0) and s.active(T1) and not s.active(T2)
    expired = Silence(1, s.matchers, "why", "alice", T0, T2, expired_at=T1, expired_by="bob")
    assert expired.end == T1 and not expired.active(T1)
    assert expired.as_dict(T1)["state"] == "expired" and s.as_dict(T1)["state"] == "active"


def test_the_match_that_ends_last_wins():
    silences = [silence(1, T2, rule_id="R"), silence(2, T3, host_id="h"),
                silence(3, T3, host_id="other")]
    assert first_match(silences, T1, "R", "h", "low", "t").id == 2
    assert first_match(silences, T2, "R", "h", "low", "t").id == 2
    assert first_match(silences, T2, "R", "x", "low", "t") is None
    assert first_match([], T1, "R", "h", "low", "t") is None


def test_a_maintenance_window_is_a_silence_on_the_host_covering_its_stale_alert():
    agent = SilentAgent("mac-1", T0, None, None, None, None)
    window = silence(1, host_id="mac-1", rule_id=STALE_RULE_ID)
    fleet_wide = silence(2, T3, rule_id=STALE_RULE_ID)
    other_rule = silence(3, host_id="mac-1", rule_id="SM-008")
    assert maintenance_window([window, fleet_wide, other_rule], T1, "mac-1") is window
    assert maintenance_window([fleet_wide, other_rule], T1, "mac-1") is None
    assert maintenance_window([silence(4, host_id="mac-1")], T1, "mac-1") is not None
    assert stale_alert_unless_held(agent, T1, silences=[window], threshold_seconds=180) is None
    # after the window, or under a fleet-wide silence, the alert is raised (marked)
    after = stale_alert_unless_held(agent, T2, silences=[window], threshold_seconds=180)
    assert after is not None and after.silence_id is None
    marked = stale_alert_unless_held(agent, T1, silences=[fleet_wide], threshold_seconds=180)
    assert marked.silence_id == 2 and marked.rule_id == STALE_RULE_ID
