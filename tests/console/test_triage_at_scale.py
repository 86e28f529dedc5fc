"""Silences and grouped repeats in the console, in Debian's Chromium against a real server."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from ..helpers import AGENT, make_signal
from .conftest import Console, ago, api

pytestmark = pytest.mark.e2e


def test_silence_a_signal_from_its_detail_then_expire_it(ui: Console):
    page = ui.sign_in("?rule_id=SM-BULK").page
    expect(ui.rows).to_have_count(3)
    ui.rows.first.locator(".sig-row").click()
    detail = page.locator(".sig-detail")
    detail.locator("[data-action=silence-open]").click()
    form = detail.locator(".silence-form")
    expect(form).to_be_visible()
    # pre-filled with the signal's rule and host; severity and title off
    expect(form.locator("[data-matcher=rule_id]")).to_be_checked()
    expect(form.locator("[data-matcher=host_id]")).to_be_checked()
    expect(form.locator("[data-matcher=severity]")).not_to_be_checked()
    expect(form.locator(".silence-matcher").first).to_contain_text("SM-BULK")
    expect(form.locator("[data-duration]")).to_have_text(["1 h", "24 h", "7 d"])
    # a title glob says at once whether it covers this signal
    form.locator("[data-field=title]").fill("Bulk * 9")
    expect(form.locator(".glob-preview")).to_have_text("Does not match this signal\u2019s title.")
    form.locator("[data-field=title]").fill("Bulk target *")
    expect(form.locator(".glob-preview")).to_have_text("Matches this signal\u2019s title.")
    expect(form).to_contain_text("(3 open now)")
    expect(form.locator("[data-action=silence]")).to_be_disabled()  # a comment is required
    form.locator("[data-duration='7d']").click()
    form.locator("[data-field=comment]").fill("build farm noise, OPS-42")
    form.locator("[data-field=resolve]").check()
    ui.screenshot("desktop-silence-form")
    form.locator("[data-action=silence]").click()
    expect(page.locator("#toast")).to_contain_text(
        "Silenced rule SM-BULK · host mbp-bulk · title “Bulk target *” for 7 d · resolved 3")
    expect(page.locator("#queue-state")).to_contain_text("No signals match")

    (silence,) = api(ui.server, "GET", "/silences")["silences"]
    assert (silence["rule_id"], silence["host_id"], silence["title"]) == (
        "SM-BULK", "mbp-bulk", "Bulk target *")
    assert silence["comment"] == "build farm noise, OPS-42"
    # the next such signal is stored, but only shown when asked for, marked
    api(ui.server, "POST", "/ingest", make_signal("5e" * 16, host_id="mbp-bulk",
                                                  rule_id="SM-BULK", ts=ago(seconds=30),
                                                  title="Bulk target 9"), headers=AGENT)
    page.click("#refresh-now")
    ui.wait_idle()
    expect(page.locator("#queue-state")).to_contain_text("No signals match")
    page.click("#f-silenced [data-silenced=true]")
    ui.wait_idle()
    assert "silenced=true" in page.url
    expect(ui.rows).to_have_count(1)
    row = ui.rows.first
    expect(row).to_have_class(re.compile(r"\bis-silenced\b"))
    expect(row.locator(".silenced-badge")).to_have_text("silenced")
    row.locator(".sig-row").click()
    expect(page.locator(".sig-detail .facts")).to_contain_text(
        f"#{silence['id']} by admin, until")
    expect(page.locator(".sig-detail .facts")).to_contain_text("build farm noise, OPS-42")

    # the silences page: active, expire now, then among the expired
    page.click("#nav-silences")
    expect(page.locator("#silences-view")).to_be_visible()
    expect(page.locator("#queue-panel")).to_be_hidden()
    assert "page=silences" in page.url
    item = page.locator("#silences > li")
    expect(item).to_have_count(1)
    expect(item).to_contain_text("rule SM-BULK · host mbp-bulk · title “Bulk target *”")
    expect(item).to_contain_text("1 signal silenced")
    ui.screenshot("desktop-silences")
    item.locator("[data-action=expire]").click()
    expect(page.locator("#toast")).to_contain_text(f"Expired silence #{silence['id']}")
    expect(page.locator("#silences-state-box")).to_contain_text("No active silences.")
    page.click("#silences-state [data-state=expired]")
    expect(page.locator("#silences > li .status-badge")).to_have_text("expired")
    assert api(ui.server, "GET", "/silences")["silences"][0]["expired_by"] == "admin"
    page.click("#silences-back")
    expect(page.locator("#queue-panel")).to_be_visible()


def test_grouped_queue_opens_into_signals_and_triages_whole_groups(ui: Console):
    page = ui.sign_in("?rule_id=SM-FILL").page
    expect(ui.rows).to_have_count(50)
    page.check("#group-repeats", force=True)
    ui.wait_idle()
    assert "group=1" in page.url
    groups = page.locator("#groups > li")
    expect(groups).to_have_count(3)  # the fillers of mac-0, mac-1 and mac-2
    expect(page.locator("#queue")).to_be_hidden()
    mac0 = groups.filter(has_text="mac-0")
    expect(mac0.locator(".group-count")).to_have_text("\u00d720")
    expect(mac0.locator(".group-facts")).to_contain_text("20 open")
    expect(page.locator("#queue-meta")).to_contain_text("3 groups · 60 signals")
    ui.screenshot("desktop-grouped-queue")

    # a group opens into its signals; Back returns to the groups
    mac0.locator(".group-row").click()
    ui.wait_idle()
    expect(ui.rows).to_have_count(20)
    assert "host_id=mac-0" in page.url and "group=1" not in page.url
    expect(page.locator("#group-repeats")).not_to_be_checked()
    page.go_back()
    ui.wait_idle()
    expect(groups).to_have_count(3)
    expect(page.locator("#group-repeats")).to_be_checked()

    # a whole group triaged from the bulk bar
    groups.filter(has_text="mac-1").locator(".sig-check input").check()
    expect(page.locator("#group-count")).to_have_text("1 group selected · 20 signals")
    page.fill("#group-note", "filler noise")
    page.click("#group-bar [data-group-bulk=resolved]")
    expect(page.locator("#toast")).to_contain_text("Resolved 20 signals in 1 group")
    expect(groups).to_have_count(2)
    resolved = api(ui.server, "GET", "/signals?rule_id=SM-FILL&host_id=mac-1&status=all"
                   "&limit=100")["signals"]
    assert len(resolved) == 20 and {s["status"] for s in resolved} == {"resolved"}
    detail = api(ui.server, "GET", f"/signals/{resolved[0]['signal_id']}")
    assert detail["history"][-1]["note"] == "filler noise"

    # the grouped view is kept in the URL
    page.reload()
    ui.wait_idle()
    expect(groups).to_have_count(2)
    expect(page.locator("#group-repeats")).to_be_checked()
