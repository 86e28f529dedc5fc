"""The signals console in Debian's Chromium against a real `santamon serve`."""

from __future__ import annotations

import re
import urllib.error

import pytest
from playwright.sync_api import expect

from ..helpers import AGENT, AGENT_KEY, REPO, make_signal
from .conftest import (
    FILLERS,
    XSS_KEY,
    XSS_TITLE,
    XSS_VALUE,
    Console,
    ago,
    api,
)

pytestmark = pytest.mark.e2e

OPEN_IN_24H = FILLERS + 3 + 3  # fillers, tree + XSS + ack target, three bulk targets


def test_sign_in_refuses_wrong_and_agent_keys(ui: Console):
    page = ui.open().page
    expect(page.locator("#login-view")).to_be_visible()
    for key in ("wrong-key-0123456789", AGENT_KEY):
        page.fill("#login-key", key)
        page.click("#login-submit")
        expect(page.locator("#login-error")).to_contain_text("not accepted")
        expect(page.locator("#console-view")).to_be_hidden()
    assert [c["name"] for c in page.context.cookies()] == []

    ui.sign_in()
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["santamon_session"]["httpOnly"] is True
    assert cookies["santamon_session"]["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""
    storage = page.evaluate("JSON.stringify({...localStorage, ...sessionStorage})")
    assert AGENT_KEY not in storage and "analyst-key" not in storage

    page.reload()  # the cookie keeps the analyst signed in
    expect(page.locator("#console-view")).to_be_visible()
    page.click("#logout")
    expect(page.locator("#login-view")).to_be_visible()
    page.reload()
    expect(page.locator("#login-view")).to_be_visible()


def test_headline_cards_chart_and_signals(ui: Console):
    page = ui.sign_in().page
    expect(page.locator("#card-total-value")).to_have_text(str(OPEN_IN_24H + 5))
    # The tree sample (critical); XSS, ack target, stale alert and correlation sample (high).
    expect(page.locator("#card-open-value")).to_have_text("5")
    expect(page.locator("#card-agents-value")).to_have_text("2 / 1")
    expect(page.locator("#jobs-health")).to_have_text("jobs ok")
    assert page.locator("#chart-canvas svg rect.bar").count() > 5
    expect(page.locator("#volume-legend")).to_contain_text("critical 1")

    # Newest first, one page of 50, then the rest through the cursor.
    expect(ui.rows).to_have_count(50)
    expect(ui.rows.first).to_contain_text("Agent mbp-stale stopped sending heartbeats")
    expect(ui.rows.nth(1)).to_contain_text("SM-666")
    expect(ui.rows.nth(2)).to_contain_text("SSH private keys read by non-ssh process")
    page.click("#load-more")
    expect(ui.rows).to_have_count(OPEN_IN_24H + 1)  # + the AGENT-STALE alert
    expect(page.locator("#load-more")).to_be_hidden()
    expect(page.locator("#queue-end")).to_contain_text("End of the list")
    times = page.locator("#queue .sig-time").evaluate_all(
        "els => els.map(e => e.getAttribute('datetime'))")
    assert times == sorted(times, reverse=True)

    # A bar of the chart opens its hour in the queue.
    page.locator("#chart-canvas .bucket-hit").last.click()
    ui.wait_idle()
    assert "window=custom" in page.url
    expect(ui.rows.first).to_contain_text("Agent mbp-stale stopped sending heartbeats")
    assert ui.rows.count() < OPEN_IN_24H


def test_errors_say_what_to_do(ui: Console):
    page = ui.sign_in().page
    page.route("**/signals?*", lambda route: route.fulfill(
        status=503, content_type="application/json",
        body='{"error": "storage unavailable, retry later"}'))
    page.click("#f-severity [data-sev=high]")
    ui.wait_idle()
    state = page.locator("#queue-state")
    expect(state).to_contain_text("Could not load signals")
    expect(state).to_contain_text("database is unavailable")
    page.unroute("**/signals?*")
    state.get_by_role("button", name="Retry").click()
    ui.wait_idle()
    expect(ui.rows.nth(1)).to_contain_text("SM-666")
    expect(state).to_be_hidden()

    page.route("**/jobs", lambda route: route.fulfill(
        status=200, content_type="application/json",
        body='{"jobs": [{"id": "forwarding", "enabled": true, "consecutive_failures": 3, '
             '"last_outcome": "failed", "last_message": "webhook: HTTP 502"}], '
             '"forwarding": {"sinks": ["webhook"], "backlog": 12}}'))
    page.click("#refresh-now")
    health = page.locator("#jobs-health")
    expect(health).to_have_text("1 background job failing: forwarding")
    expect(health).to_have_attribute("title", re.compile("webhook: HTTP 502"))


def test_each_filter_narrows_the_queue_and_lives_in_the_url(ui: Console):
    page = ui.sign_in().page

    page.click("#f-severity [data-sev=critical]")
    ui.wait_idle()
    expect(ui.rows).to_have_count(1)
    expect(ui.rows.first).to_contain_text("SM-002")
    assert "severity=critical" in page.url
    page.click("#f-severity [data-sev=critical]")

    page.click("#f-status [data-status=resolved]")
    ui.wait_idle()
    expect(ui.rows).to_have_count(1)
    expect(ui.rows.first).to_contain_text("Already resolved")
    assert "status=resolved" in page.url
    page.click("#f-status [data-status=open]")

    page.fill("#f-host", "mbp-bulk")
    page.press("#f-host", "Enter")
    ui.wait_idle()
    expect(ui.rows).to_have_count(3)
    assert "host_id=mbp-bulk" in page.url
    page.fill("#f-host", "")
    page.press("#f-host", "Enter")

    page.fill("#f-rule", "SM-ACK")
    page.press("#f-rule", "Enter")
    ui.wait_idle()
    expect(ui.rows).to_have_count(1)
    expect(ui.rows.first).to_contain_text("Acknowledge me")
    page.fill("#f-rule", "")
    page.press("#f-rule", "Enter")

    page.fill("#f-search", "Filler signal 0")
    page.press("#f-search", "Enter")
    ui.wait_idle()
    expect(ui.rows).to_have_count(10)
    assert "search=Filler+signal+0" in page.url

    page.fill("#f-search", "Three day")
    page.press("#f-search", "Enter")
    ui.wait_idle()
    expect(page.locator("#queue-state")).to_contain_text("No signals match")
    page.click("#f-window [data-window='7d']")
    ui.wait_idle()
    expect(ui.rows).to_have_count(1)
    assert "window=7d" in page.url
    page.fill("#f-search", "")
    page.press("#f-search", "Enter")

    page.click("#f-window [data-window='1h']")
    ui.wait_idle()
    expect(ui.rows).to_have_count(12)  # 5 fillers, tree, XSS, ack, stale alert, 3 bulk
    page.click("#f-window [data-window=all]")
    ui.wait_idle()
    page.click("#load-more")
    expect(ui.row("Unsigned binary executed from Downloads")).to_have_count(1)
    expect(ui.row("Burst of blocked executions")).to_have_count(1)

    page.click("#f-window [data-window=custom]")
    page.fill("#f-since", "2026-11-03T00:00:00")
    page.fill("#f-until", "2026-11-04T00:00:00")
    page.click("#f-custom-apply")
    ui.wait_idle()
    expect(ui.rows).to_have_count(1)
    expect(ui.rows.first).to_contain_text("LOCAL-UNSIGNED-DL")
    assert "window=custom" in page.url and "since=2026-11-03T00%3A00%3A00" in page.url

    # A shared link opens the same view.
    shared = page.url
    page.goto(shared)
    ui.wait_idle()
    expect(ui.rows).to_have_count(1)
    expect(page.locator("#f-window [data-window=custom]")).to_have_attribute(
        "aria-pressed", "true")


def test_detail_draws_the_process_tree_from_the_oldest_ancestor(ui: Console):
    page = ui.sign_in("?severity=critical").page
    ui.rows.first.locator(".sig-row").click()
    tree = page.locator(".sig-detail .ptree")
    expect(tree.locator(".pnode")).to_have_count(4)
    names = tree.locator(".pnode-name").all_inner_texts()
    assert names == ["launchd", "Terminal", "zsh", "python3.12"]
    target = tree.locator(".pnode.is-target")
    expect(target).to_contain_text("/usr/local/bin/python3.12")
    expect(target).to_contain_text("pid 4242")
    expect(target).to_contain_text("alice (501)")
    expect(target.locator(".pnode-args")).to_have_text("python3 exfil.py")
    detail = page.locator(".sig-detail")
    expect(detail).to_contain_text("Any non-ssh process reading ~/.ssh key material.")
    expect(detail.locator(".tag")).to_have_text(["T1552.004", "credential-access"])
    expect(detail.locator(".kv")).to_contain_text("/Users/alice/.ssh/id_ed25519")
    detail.locator("details.raw summary").click()
    expect(detail.locator("pre.json")).to_contain_text('"spool_archive_path"')
    page.locator("#queue-panel").evaluate("panel => panel.scrollIntoView()")
    ui.screenshot("desktop-detail")


def test_acknowledge_with_a_note_updates_the_list_and_history(ui: Console):
    page = ui.sign_in("?rule_id=SM-ACK").page
    expect(ui.rows).to_have_count(1)
    ui.rows.first.locator(".sig-row").click()
    detail = page.locator(".sig-detail")
    detail.locator("textarea").fill("looked at it, benign build step")
    detail.locator("[data-action=acknowledged]").click()
    expect(ui.rows.first.locator(".status-badge").first).to_have_text("acknowledged")
    expect(detail.locator(".history")).to_contain_text("looked at it, benign build step")
    expect(page.locator("#toast")).to_contain_text("Acknowledged 1 signal")
    assert api(ui.server, "GET", f"/signals/{'ac' * 16}")["status"] == "acknowledged"


def test_keyboard_moves_opens_and_triages(ui: Console):
    page = ui.sign_in("?host_id=mac-0").page
    first = ui.rows.first
    page.keyboard.press("j")
    expect(first).to_have_class(re.compile(r"\bis-focused\b"))
    page.keyboard.press("j")
    second = ui.rows.nth(1)
    expect(second).to_have_class(re.compile(r"\bis-focused\b"))
    page.keyboard.press("Enter")
    expect(second.locator(".sig-detail")).to_be_visible()
    page.keyboard.press("a")
    expect(second.locator(".sig-status .status-badge")).to_have_text("acknowledged")
    page.keyboard.press("k")
    page.keyboard.press("r")
    expect(first.locator(".sig-status .status-badge")).to_have_text("resolved")
    page.keyboard.press("/")
    expect(page.locator("#f-search")).to_be_focused()
    ids = [first.get_attribute("data-id"), second.get_attribute("data-id")]
    assert [api(ui.server, "GET", f"/signals/{i}")["status"] for i in ids] == [
        "resolved", "acknowledged"]


def test_bulk_resolve(ui: Console):
    page = ui.sign_in("?host_id=mbp-bulk").page
    expect(ui.rows).to_have_count(3)
    page.check("#select-all")
    expect(page.locator("#bulk-count")).to_have_text("3 selected")
    page.fill("#bulk-note", "false positives from the build farm")
    page.click("#bulkbar [data-bulk=resolved]")
    expect(page.locator("#queue .sig-status .status-badge")).to_have_text(["resolved"] * 3)
    expect(page.locator("#toast")).to_contain_text("Resolved 3 signals")
    for i in range(3):
        signal = api(ui.server, "GET", f"/signals/{f'b{i}' * 16}")
        assert signal["status"] == "resolved"
        assert signal["history"][-1]["note"] == "false positives from the build farm"
    page.click("#refresh-now")  # resolved signals leave the open queue
    expect(page.locator("#queue-state")).to_contain_text("No signals match")


def test_stale_agent_banner_and_red_card(ui: Console):
    page = ui.sign_in().page
    banner = page.locator("#stale-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("1 agent has stopped sending heartbeats (mbp-stale)")
    agents = page.locator("#agents > li")
    expect(agents).to_have_count(3)
    stale = agents.first
    expect(stale).to_have_class(re.compile(r"\bis-stale\b"))
    expect(stale).to_contain_text("mbp-stale")
    expect(stale.locator(".agent-seen")).to_have_text(re.compile(r"silent for 4[4-6] min"))
    color = stale.locator(".agent-name").evaluate("e => getComputedStyle(e).color")
    red, green, blue = map(int, re.findall(r"\d+", color)[:3])
    assert red > 200 and green < 120 and blue < 140, color
    expect(agents.nth(1)).to_contain_text("seen")
    expect(agents.nth(1)).to_contain_text("macOS")

    banner.locator("a").click()
    ui.wait_idle()
    assert "rule_id=AGENT-STALE" in page.url
    expect(ui.rows).to_have_count(1)
    expect(ui.rows.first).to_contain_text("Agent mbp-stale stopped sending heartbeats")


def test_hostile_signal_renders_as_inert_text(ui: Console):
    page = ui.sign_in("?host_id=mbp-evil").page
    row = ui.rows.first
    expect(row.locator(".sig-title")).to_have_text(XSS_TITLE)
    row.locator(".sig-row").click()
    detail = page.locator(".sig-detail")
    expect(detail.locator(".detail-title")).to_have_text(XSS_TITLE)
    expect(detail.locator(".detail-desc")).to_have_text("<script>alert('xss-desc')</script>")
    expect(detail.locator(".kv dt").first).to_have_text(XSS_KEY)
    expect(detail.locator(".kv dd").first).to_have_text(XSS_VALUE)
    expect(detail.locator(".tag")).to_have_text("<b>bold</b>")
    expect(detail.locator(".pnode-path")).to_have_text("<img src=x onerror=alert('pt')>")
    detail.locator("details.raw summary").click()
    expect(detail.locator("pre.json")).to_contain_text(XSS_KEY)
    page.wait_for_timeout(300)  # give any injected handler a chance to fire
    assert page.locator("#queue img, #queue script, #queue b").count() == 0
    assert ui.dialogs == []


def test_auto_refresh_brings_new_signals_and_can_be_turned_off(ui: Console):
    page = ui.page
    page.clock.install()
    ui.sign_in("?host_id=mbp-live")
    expect(page.locator("#auto-refresh")).to_be_checked()
    expect(page.locator("#queue-state")).to_contain_text("No signals match")

    api(ui.server, "POST", "/ingest", make_signal("11" * 16, host_id="mbp-live",
                                                  ts=ago(seconds=5), title="Arrived live"),
        headers=AGENT)
    page.clock.run_for(31_000)
    expect(ui.rows).to_have_count(1)
    expect(ui.rows.first).to_contain_text("Arrived live")
    expect(ui.rows.first).to_have_class(re.compile(r"\bis-new\b"))

    page.locator("#auto-refresh").uncheck(force=True)
    api(ui.server, "POST", "/ingest", make_signal("12" * 16, host_id="mbp-live",
                                                  ts=ago(seconds=4), title="Arrived later"),
        headers=AGENT)
    page.clock.run_for(65_000)
    page.wait_for_timeout(300)
    expect(ui.rows).to_have_count(1)
    page.reload()  # the choice is remembered
    expect(page.locator("#auto-refresh")).not_to_be_checked()
    expect(ui.rows).to_have_count(2)


def test_expired_session_returns_to_the_login_form(ui: Console):
    page = ui.sign_in().page
    # Every panel's first load (and the jobs badge after them) is answered first: one still
    # under way when the cookie goes would show the login form before the click below.
    expect(page.locator("#sync-status")).to_contain_text("Updated")
    expect(page.locator("#jobs-health")).to_contain_text("jobs")
    page.context.clear_cookies()
    page.click("#refresh-now")
    expect(page.locator("#login-view")).to_be_visible()
    expect(page.locator("#login-reason")).to_contain_text("session has expired")
    ui.sign_in()
    expect(page.locator("#console-view")).to_be_visible()


def test_the_page_only_talks_to_its_server(ui: Console):
    page = ui.sign_in().page
    ui.rows.first.locator(".sig-row").click()
    page.wait_for_selector(".sig-detail .history, .sig-detail .history-empty")
    paths = {re.sub(r"\?.*", "", url.removeprefix(ui.server.url)) for url in ui.requests}
    modules = {f"/static/js/{module.name}" for module in (REPO / "static" / "js").glob("*.js")}
    assert {"/ui", "/static/app.css", "/static/favicon.svg", "/session",
            "/stats", "/agents", "/signals", "/signals/volume"} | modules <= paths
    assert all(url.startswith(ui.server.url + "/") for url in ui.requests)
    csp = page.evaluate("fetch('/ui').then(r => r.headers.get('content-security-policy'))")
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp


def test_cross_site_style_writes_are_refused(ui: Console):
    """A form on another site cannot add the CSRF header; the cookie alone does not write."""
    page = ui.sign_in().page
    status = page.evaluate("""async () => {
        const r = await fetch('/signals/status', {method: 'POST', credentials: 'same-origin',
            headers: {'Content-Type': 'application/json'},
            body: JSON.stringify({signal_ids: ['6f1c2a9e0b7d4c3f8a1e2d3c4b5a6978'],
                                  status: 'resolved'})});
        return r.status; }""")
    assert status == 403
    with pytest.raises(urllib.error.HTTPError):
        api(ui.server, "GET", "/signals", headers={"Cookie": "santamon_session=forged"})


def test_screenshots(ui: Console, phone_ui: Console):
    desktop = ui.sign_in().page
    desktop.mouse.move(0, 0)
    ui.screenshot("desktop-console")
    ui.rows.filter(has_text="SM-002").first.locator(".sig-row").click()
    desktop.wait_for_selector(".ptree")
    ui.screenshot("desktop-console-full", full_page=True)
    for row in range(2, 5):
        ui.rows.nth(row).locator(".sig-check input").check()
    desktop.emulate_media(color_scheme="light")
    desktop.locator("#queue-panel").scroll_into_view_if_needed()
    ui.screenshot("desktop-light-selection")

    phone = phone_ui.open().page
    phone.wait_for_selector("#login-key")
    phone_ui.screenshot("phone-login")
    phone_ui.sign_in()
    phone_ui.screenshot("phone-console")
    phone.locator("#queue-panel").scroll_into_view_if_needed()
    phone.evaluate("document.querySelector('#queue-panel').scrollIntoView()")
    phone_ui.screenshot("phone-queue")
    phone_ui.rows.filter(has_text="SM-002").first.locator(".sig-row").click()
    phone.wait_for_selector(".ptree")
    phone.evaluate("document.querySelector('.sig-detail').scrollIntoView()")
    phone_ui.screenshot("phone-detail")
