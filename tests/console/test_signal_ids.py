"""Signals whose id a URL path cannot carry: the console opens and triages them like any other.

A browser resolves a path segment `.` or `..` away, and so it does `%2E` and `%2E%2E` (the URL
standard decodes them first): `/signals/%2E%2E` is fetched as `/`. `volume` is the path of
another route. The console therefore names a signal in the query or the body, never the path.
"""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from playwright.sync_api import expect

from ..helpers import AGENT, ANALYST, ServerProcess, make_signal
from .conftest import Console, ago, api

pytestmark = pytest.mark.e2e

HOST = "mbp-dots"
AWKWARD_IDS = {".": "Single dot signal", "..": "Double dot signal", "volume": "Signal named volume"}


@pytest.fixture(scope="module")
def awkward(console_server: ServerProcess) -> ServerProcess:
    api(console_server, "POST", "/ingest", [
        make_signal(signal_id, host_id=HOST, ts=ago(minutes=n + 1), title=title,
                    severity="high", context={"kind": "execution"})
        for n, (signal_id, title) in enumerate(AWKWARD_IDS.items())], headers=AGENT)
    return console_server


def raw_request(server: ServerProcess, method: str, path: str,
                body: Any = None) -> tuple[int, Any]:
    """Send `path` byte for byte: no client-side resolving of dot segments."""
    address = urlsplit(server.url)
    conn = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body),
                     headers={"Content-Type": "application/json", **ANALYST})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


@pytest.mark.parametrize("signal_id", list(AWKWARD_IDS))
def test_the_console_opens_and_triages_a_signal_named(ui: Console, awkward: ServerProcess,
                                                     signal_id: str):
    page = ui.sign_in(f"?host_id={HOST}&status=all").page
    expect(ui.rows).to_have_count(len(AWKWARD_IDS))
    row = ui.rows.filter(has=page.locator(".sig-title", has_text=AWKWARD_IDS[signal_id]))
    row.locator(".sig-row").click()
    detail = row.locator(".sig-detail")
    expect(detail.locator(".detail-title")).to_have_text(AWKWARD_IDS[signal_id])
    expect(detail.locator(".history-empty")).to_have_text("No status changes yet.")

    note = f"checked {signal_id!r}"
    detail.locator("textarea").fill(note)
    detail.locator("[data-action=acknowledged]").click()
    expect(page.locator("#toast")).to_contain_text("Acknowledged 1 signal")
    expect(row.locator(".sig-status .status-badge")).to_have_text("acknowledged")
    expect(detail.locator(".history")).to_contain_text(note)

    # The server holds the change on this signal, and on no other.
    stored = api(awkward, "GET", f"/signal?signal_id={quote(signal_id, safe='')}")
    assert (stored["signal_id"], stored["status"]) == (signal_id, "acknowledged")
    assert [h["note"] for h in stored["history"]] == [note]
    acknowledged = api(awkward, "GET", "/signals?status=acknowledged&limit=1000")["signals"]
    assert {s["signal_id"] for s in acknowledged} <= set(AWKWARD_IDS)


def test_percent_encoded_dot_segments_name_the_signal(awkward: ServerProcess):
    """What a client that does not resolve dot segments (curl --path-as-is) gets."""
    for path, signal_id in (("/signals/%2E%2E", ".."), ("/signals/%2e", "."),
                            ("/signals/..", "..")):
        status, body = raw_request(awkward, "GET", path)
        assert (status, body["signal_id"]) == (200, signal_id), path
    status, body = raw_request(awkward, "PATCH", "/signals/%2E%2E/status",
                               {"status": "resolved", "note": "by path"})
    assert (status, body) == (200, {"signal_id": "..", "status": "resolved"})
    status, body = raw_request(awkward, "PATCH", "/signals/%2E%2E/status", {"status": "open"})
    assert status == 200
