"""The agent connection problems panel and a shortened signal's detail, in Debian's Chromium
against a real `santamon serve` (issue 13)."""

from __future__ import annotations

import sqlite3
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from santamon import timeutil
from santamon.domain.problems import hour_of

from ..helpers import AGENT, ServerProcess, sample
from .conftest import DESKTOP, Console, ago, api, new_console

pytestmark = pytest.mark.e2e

SHORTENED_ID = "5e" * 16


def sm014_signal() -> dict[str, Any]:
    """The agent's SM-014 with a 60,000-byte command line, in execution.args and the tree."""
    signal = sample("signal-file-access")
    argv = ["/bin/bash", "-c", "echo " + "A" * 59_995]
    signal.update(signal_id=SHORTENED_ID, rule_id="SM-014", title="Very long command line",
                  ts=ago(minutes=1))
    signal["context"]["execution.args"] = argv
    signal["context"]["process_tree"][0]["args"] = argv
    return signal


def insert_tls_failures(db_path: Path) -> None:
    """Failed handshakes as another instance, serving TLS, counted and wrote them."""
    now = timeutil.now_ns()
    with sqlite3.connect(db_path, timeout=10) as conn:
        conn.execute("INSERT INTO connection_problems VALUES (?, '10.0.3.7', 'tls_failure', 5, "
                     "?, 'the client does not trust this server''s certificate')",
                     (hour_of(now), timeutil.format_utc(now)))
    conn.close()


@pytest.fixture(scope="module")
def problems_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("problems") / "signals.db").start()
    yield server
    server.kill()


@pytest.fixture
def panel_ui(browser: Any, problems_server: ServerProcess) -> Iterator[Console]:
    yield from new_console(browser, problems_server, DESKTOP)


def test_the_panel_shows_which_addresses_fail_and_why(panel_ui: Console,
                                                       problems_server: ServerProcess):
    page = panel_ui.sign_in().page
    expect(page.locator("#problems-state")).to_have_text(
        "None in the last 24 hours: every agent that connected got through.")

    for _ in range(3):  # an agent whose key was revoked keeps beating
        with pytest.raises(urllib.error.HTTPError) as refused:
            api(problems_server, "POST", "/agents/heartbeat",
                {**sample("heartbeat"), "agent_id": "mbp-rogue"},
                headers={"X-API-Key": "revoked-key-0123456789"})
        assert refused.value.code == 401
    assert api(problems_server, "POST", "/ingest", sm014_signal(), headers=AGENT)[
        "signal_id"] == SHORTENED_ID
    insert_tls_failures(problems_server.db_path)

    page.click("#refresh-now")
    clients = page.locator("#problems > li.problem-client")
    expect(clients).to_have_count(2)
    local = clients.filter(has_text="127.0.0.1")
    expect(local.locator(".problem")).to_have_count(2)
    wrong_key = local.locator('.problem[data-kind="wrong_key"]')
    expect(wrong_key.locator(".problem-kind")).to_have_text("Wrong or revoked key")
    expect(wrong_key.locator(".problem-count")).to_have_text("3 times")
    expect(wrong_key.locator(".problem-detail")).to_contain_text(
        "POST /agents/heartbeat with a wrong or revoked key (claimed agent_id mbp-rogue)")
    shortened = local.locator('.problem[data-kind="context_shortened"]')
    expect(shortened.locator(".problem-detail")).to_contain_text(
        f"signal {SHORTENED_ID} of mbp-alice (SM-014): context of")
    other = clients.filter(has_text="10.0.3.7")
    expect(other.locator(".problem-kind")).to_have_text("TLS handshake failed")
    expect(other.locator(".problem-count")).to_have_text("5 times")
    expect(page.locator("#problems-meta")).to_have_text("2 addresses · 9 in all")
    expect(page.locator("#problems-state")).to_be_hidden()
    page.locator("#problems-panel").evaluate("panel => panel.scrollIntoView()")
    panel_ui.screenshot("desktop-problems-panel")

    # The shortened signal says so in its detail, with the context's size as received.
    panel_ui.row("Very long command line").locator(".sig-row").click()
    notice = page.locator(".sig-detail .detail-shortened")
    expect(notice).to_contain_text("Stored shortened: its context (")
    expect(notice).to_contain_text(" bytes as received) was too large.")
    expect(page.locator(".sig-detail .pnode-args").last).to_contain_text("bytes cut]")
