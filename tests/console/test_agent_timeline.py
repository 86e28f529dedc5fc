"""An agent in the console's agents panel opens into its timeline (GET /agent?agent_id=), in
Debian's Chromium against a real `santamon serve`."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from santamon import timeutil

from ..helpers import AGENT, ServerProcess
from .conftest import Console, api, wait_for

pytestmark = pytest.mark.e2e

HOUR_NS = 3600 * 1_000_000_000
HOSTILE_AGENT = "<img src=x onerror=\"alert('agent')\">"
HOSTILE_VERSION = "<script>alert('version')</script>"
PATHLIKE_AGENT = "office/../mbp-7"  # no URL path carries it: the console asks GET /agent


def history(server: ServerProcess) -> None:
    """Three days of mbp-alice as the history keeps them: first heard, the last heartbeat
    before a night off, back rebooted into a new agent version, a sample, and then a day of
    silence before the heartbeats this server is receiving now."""
    now = timeutil.now_ns()

    def row(hours_ago: float, reasons: str, version: str, os_version: str, uptime: float):
        at = timeutil.format_utc(now - int(hours_ago * HOUR_NS))
        return ("mbp-alice", at, version, os_version, uptime, at, reasons)

    with sqlite3.connect(server.db_path, timeout=10) as conn:
        conn.executemany(
            "INSERT INTO heartbeats (agent_id, timestamp, version, os_version, uptime_seconds, "
            "received_at, reasons) VALUES (?, ?, ?, ?, ?, ?, ?)", [
                row(72, "first", "v0.3.0", "15.4", 1000.0),
                row(48, "last", "v0.3.0", "15.4", 87400.0),
                row(44, "return,reboot,version,os", "v0.3.1", "15.4.1", 60.0),
                row(24, "sample", "v0.3.1", "15.4.1", 72060.0)])
        conn.execute("UPDATE heartbeats SET reasons = 'return' WHERE agent_id = 'mbp-alice' "
                     "AND reasons = 'first' AND received_at > ?",
                     (timeutil.format_utc(now - HOUR_NS),))
        conn.execute("UPDATE agents SET first_seen = ? WHERE agent_id = 'mbp-alice'",
                     (timeutil.format_utc(now - 72 * HOUR_NS),))


@pytest.fixture(scope="module", autouse=True)
def _agents_with_a_past(console_server: ServerProcess) -> Iterator[None]:
    wait_for(lambda: api(console_server, "GET", "/agents")["count"] >= 3)
    history(console_server)
    api(console_server, "POST", "/agents/heartbeat", {
        "agent_id": HOSTILE_AGENT, "timestamp": "2026-11-03T14:22:30Z",
        "version": HOSTILE_VERSION, "os_version": "15.4.1"}, headers=AGENT)
    api(console_server, "POST", "/agents/heartbeat", {
        "agent_id": PATHLIKE_AGENT, "timestamp": "2026-11-03T14:22:30Z",
        "version": "v0.3.1", "os_version": "15.4.1"}, headers=AGENT)
    yield


def agent(ui: Console, agent_id: str):
    return ui.page.locator("#agents > li").filter(
        has=ui.page.locator(".agent-name", has_text=re.compile(f"^{re.escape(agent_id)}$")))


def test_an_agent_opens_into_its_timeline(ui: Console):
    page = ui.sign_in().page
    alice = agent(ui, "mbp-alice")
    alice.click()
    timeline = alice.locator(".agent-timeline")
    expect(alice).to_have_attribute("aria-expanded", "true")
    summary = timeline.locator(".tl-summary")
    expect(summary).to_contain_text(re.compile(r"Online \d+(\.\d)? % of the last 7 d"))
    expect(summary).to_contain_text("1 reboot")
    expect(summary).to_contain_text("v0.3.1 · macOS 15.4.1 since")
    # online for a day, off for a night, online, silent for a day, online again now
    expect(timeline.locator(".tl-strip rect.tl-online")).to_have_count(3)
    expect(timeline.locator(".tl-strip rect.tl-offline")).to_have_count(2)
    expect(timeline.locator(".tl-day")).to_have_count(4)
    expect(timeline.locator(".tl-day-value").first).to_have_text(re.compile(r"^\d+(\.\d)? %$"))
    versions = timeline.locator(".tl-versions li")
    expect(versions).to_have_count(2)
    expect(versions.first).to_contain_text("v0.3.1 · macOS 15.4.1")
    expect(versions.nth(1)).to_contain_text("v0.3.0 · macOS 15.4")
    expect(timeline.locator(".tl-reboots li")).to_have_count(1)
    expect(timeline.locator(".tl-reboots li")).to_contain_text("booted")
    ui.screenshot("desktop-agent-timeline")

    timeline.locator(".tl-signals").click()  # what a click on an agent used to do
    ui.wait_idle()
    assert "host_id=mbp-alice" in page.url
    expect(alice).to_have_attribute("aria-expanded", "true")  # the timeline stays open

    alice.locator(".agent-name").click()
    expect(alice.locator(".agent-timeline")).to_have_count(0)
    alice.focus()
    page.keyboard.press("Enter")
    expect(agent(ui, "mbp-alice").locator(".agent-timeline")).to_be_visible()


def test_a_stale_agent_reads_offline_since_it_went_silent(ui: Console):
    ui.sign_in()
    stale = agent(ui, "mbp-stale")
    stale.click()
    timeline = stale.locator(".agent-timeline")
    expect(timeline.locator(".tl-summary")).to_contain_text("Online 0 % of the last 7 d")
    expect(timeline.locator(".tl-strip rect.tl-offline")).to_have_count(1)
    expect(timeline.locator(".tl-strip rect.tl-online")).to_have_count(0)
    expect(timeline.locator(".tl-reboots")).to_have_count(0)
    expect(timeline).to_contain_text("No reboot in this window.")


def test_a_hostile_agent_id_and_version_stay_text(ui: Console):
    page = ui.sign_in().page
    hostile = agent(ui, HOSTILE_AGENT)
    hostile.click()
    timeline = hostile.locator(".agent-timeline")
    expect(timeline.locator(".tl-versions li").first).to_contain_text(HOSTILE_VERSION)
    expect(timeline.locator(".tl-summary")).to_contain_text("Online")
    page.wait_for_timeout(300)  # give any injected handler a chance to fire
    assert page.locator("#agents img, #agents script").count() == 0
    assert ui.dialogs == []


def test_an_agent_whose_id_looks_like_a_path_opens_its_own_timeline(ui: Console):
    ui.sign_in()
    office = agent(ui, PATHLIKE_AGENT)
    office.click()
    timeline = office.locator(".agent-timeline")
    expect(timeline.locator(".tl-versions li").first).to_contain_text("v0.3.1 · macOS 15.4.1")
    expect(timeline).not_to_contain_text("no longer known")
