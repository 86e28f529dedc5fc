"""The agent keys page and people's sign-in in Debian's Chromium against a real `santamon
serve`: a key is shown once with a copy button, listed with its last use, revoked after a
confirming click; the top bar names who is signed in, and a viewer's console leaves out
everything that would change something (triage of one signal or of whole groups, silences,
agent keys)."""

from __future__ import annotations

import re
import urllib.error
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from ..helpers import AGENT, ServerProcess, make_signal, sample
from .conftest import DESKTOP, Console, ago, api, new_console

pytestmark = pytest.mark.e2e

PERSON = re.compile(r"key \S+ for \S+:\n  (\S+)")


@pytest.fixture(scope="module")
def keys_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("keys-console") / "signals.db")
    server.people = {  # type: ignore[attr-defined]
        name: PERSON.search(server.cli("analyst-keys", "create", "--name", name,
                                       "--role", role).stdout).group(1)
        for name, role in (("alice", "analyst"), ("vera", "viewer"))}
    server.start()
    try:
        api(server, "POST", "/ingest", [make_signal("k" * 32, title="Key page signal",
                                                    ts=ago(minutes=1))],
            headers=AGENT)
        api(server, "POST", "/agents/heartbeat", sample("heartbeat"), headers=AGENT)
        yield server
    finally:
        server.kill()


@pytest.fixture
def keys_ui(browser: Any, keys_server: ServerProcess) -> Iterator[Console]:
    yield from new_console(browser, keys_server, DESKTOP)


def sign_in_as(ui: Console, name: str) -> Console:
    ui.open()
    ui.page.fill("#login-key", ui.server.people[name])  # type: ignore[attr-defined]
    ui.page.click("#login-submit")
    ui.page.wait_for_selector("#console-view:not([hidden])")
    ui.wait_idle()
    return ui


def heartbeat_with(server: ServerProcess, key: str, host: str) -> int:
    try:
        api(server, "POST", "/agents/heartbeat", {**sample("heartbeat"), "agent_id": host},
            headers={"X-API-Key": key})
    except urllib.error.HTTPError as exc:
        return exc.code
    return 200


def test_an_analyst_creates_copies_and_revokes_an_agent_key(keys_ui: Console):
    page = sign_in_as(keys_ui, "alice").page
    expect(page.locator("#whoami")).to_have_text("alice · analyst")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"],
                                   origin=keys_ui.server.url)
    page.click("#keys-toggle")
    expect(page.locator("#keys-panel")).to_be_visible()
    expect(page.locator("#keys-state")).to_contain_text("No agent key yet")

    page.fill("#keys-host", "mbp-new")
    page.click("#keys-create-submit")
    issued = page.locator("#key-issued")
    expect(issued).to_be_visible()
    expect(page.locator("#key-issued-title")).to_contain_text("New key for mbp-new")
    key = page.locator("#key-issued-value").input_value()
    assert key.startswith("smak_") and len(key) > 40
    page.click("#key-issued-copy")
    expect(page.locator("#toast")).to_have_text("Copied the key")
    assert page.evaluate("navigator.clipboard.readText()") == key
    keys_ui.screenshot("agent-keys-created")
    page.click("#key-issued-done")
    expect(issued).to_be_hidden()
    assert page.locator("#key-issued-value").input_value() == ""  # shown once, then gone

    row = page.locator("#keys-list tr[data-host='mbp-new']")
    expect(row).to_contain_text("active")
    expect(row).to_contain_text("by alice")
    expect(row.locator(".key-used")).to_have_text("never")
    assert heartbeat_with(keys_ui.server, key, "mbp-new") == 200
    assert heartbeat_with(keys_ui.server, key, "mbp-other") == 403
    page.click("#refresh-now")
    expect(page.locator(".agent[data-agent='mbp-new']")).to_contain_text("own key")
    expect(page.locator(".agent[data-agent='mbp-alice']")).to_contain_text("shared key")

    # Revoking takes a second, confirming click.
    row.locator("[data-revoke]").click()
    confirm = row.locator("[data-confirm-revoke]")
    expect(confirm).to_be_visible()
    row.get_by_role("button", name="Cancel").click()
    expect(confirm).to_have_count(0)
    expect(row).to_contain_text("active")
    row.locator("[data-revoke]").click()
    row.locator("[data-confirm-revoke]").click()
    expect(page.locator("#toast")).to_have_text("Revoked the key of mbp-new")
    expect(row).to_contain_text("revoked by alice")
    expect(row.locator("[data-revoke]")).to_have_count(0)
    assert heartbeat_with(keys_ui.server, key, "mbp-new") == 401
    keys_ui.screenshot("agent-keys-revoked")


def test_a_viewer_reads_but_is_offered_no_change(keys_ui: Console):
    api(keys_ui.server, "POST", "/agent-keys", {"host_ids": ["mbp-listed"]})
    page = sign_in_as(keys_ui, "vera").page
    expect(page.locator("#whoami")).to_have_text("vera · viewer (read-only)")
    expect(keys_ui.row("Key page signal")).to_have_count(1)
    expect(page.locator("#bulkbar")).to_be_hidden()
    keys_ui.row("Key page signal").locator(".sig-row").click()
    expect(page.locator(".sig-detail .detail-title")).to_have_text("Key page signal")
    expect(page.locator(".triage")).to_have_count(1)
    expect(page.locator(".triage")).to_be_hidden()
    page.keyboard.press("Escape")
    page.keyboard.press("a")  # no triage from the keyboard either
    expect(page.locator("#toast")).to_be_hidden()

    page.click("#keys-toggle")
    expect(page.locator("#keys-list tr[data-host='mbp-listed']")).to_contain_text("active")
    expect(page.locator("#keys-create")).to_be_hidden()
    expect(page.locator("#keys-list [data-revoke]").first).to_be_hidden()
    keys_ui.screenshot("agent-keys-viewer")
    # The server is the real guard: the viewer's session is refused a change outright.
    status = page.evaluate("""async () => {
        const session = await (await fetch('/session')).json();
        const res = await fetch('/signals/status', {method: 'POST', headers: {
            'Content-Type': 'application/json', 'X-CSRF-Token': session.csrf_token},
            body: JSON.stringify({signal_ids: ['%s'], status: 'resolved'})});
        return res.status;
    }""" % ("k" * 32))
    assert status == 403


def test_a_viewer_sees_groups_and_silences_but_no_way_to_change_them(keys_ui: Console):
    made = api(keys_ui.server, "POST", "/silences", {"host_id": "mbp-in-repair",
                                                     "comment": "in repair", "duration": "1h"})
    page = sign_in_as(keys_ui, "vera").page
    page.check("#group-repeats", force=True)
    keys_ui.wait_idle()
    expect(page.locator("#groups > li").filter(has_text="mbp-alice")).to_have_count(1)
    expect(page.locator("#group-bar")).to_be_hidden()
    page.click("#nav-silences")
    item = page.locator(f"#silences > li[data-silence='{made['silence']['id']}']")
    expect(item).to_contain_text("in repair")
    expect(item.locator("[data-action=expire]")).to_have_count(1)
    expect(item.locator("[data-action=expire]")).to_be_hidden()
