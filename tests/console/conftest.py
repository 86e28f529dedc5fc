"""A real `santamon serve`, seeded the way agents would fill it, and Debian's Chromium.

One server and one browser per test module keep the suite fast; every test gets its own
browser context (fresh cookies) and fails if the page requested anything outside the server,
opened a dialog, threw, or tripped the Content-Security-Policy.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from santamon import timeutil

from ..helpers import AGENT, ANALYST, ANALYST_KEY, REPO, ServerProcess, make_signal, sample

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SCREENSHOTS = REPO / "artifacts" / "screenshots"
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}

XSS_TITLE = "<img src=x onerror=\"alert('xss-title')\"><script>alert('xss-script')</script>"
XSS_KEY = "<script>alert('xss-key')</script>"
XSS_VALUE = "<img src=x onerror=\"alert('xss-value')\">"
FILLERS = 60
STALE_AFTER = 3  # seconds; the healthy agents beat far more often than that
HEARTBEAT_EVERY = 0.5
NOW = datetime.now(UTC).replace(microsecond=0)


def rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def ago(**delta: float) -> str:
    return rfc3339(NOW - timedelta(**delta))


def api(server: ServerProcess, method: str, path: str, body: Any = None,
        headers: dict[str, str] | None = None) -> Any:
    request = urllib.request.Request(
        server.url + path, method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or ANALYST)})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def seed_signals() -> list[dict[str, Any]]:
    severities = ["medium", "low", "info"]
    signals = [make_signal(f"f{i:031x}", ts=ago(minutes=10 * (i + 1)), host_id=f"mac-{i % 3}",
                           rule_id="SM-FILL", severity=severities[i % 3],
                           title=f"Filler signal {i:02d}", tags=None,
                           context={"kind": "execution", "target_path": f"/tmp/fill-{i}"})
              for i in range(FILLERS)]
    tree = make_signal("6f1c2a9e0b7d4c3f8a1e2d3c4b5a6978", ts=ago(minutes=5))
    signals += [
        tree,
        make_signal("a" * 32, ts=ago(minutes=2), host_id="mbp-evil", rule_id="SM-666",
                    severity="high", title=XSS_TITLE, tags=["<b>bold</b>"],
                    rule_description="<script>alert('xss-desc')</script>",
                    context={XSS_KEY: XSS_VALUE, "kind": "execution",
                             "process_tree": [{"relation": "target", "depth": 0, "pid": 66,
                                               "path": "<img src=x onerror=alert('pt')>",
                                               "args": ["<script>alert('args')</script>"]}]}),
        make_signal("ac" * 16, ts=ago(minutes=30), host_id="mbp-bob", rule_id="SM-ACK",
                    severity="high", title="Acknowledge me", context={"kind": "execution"}),
        make_signal("d0" * 16, ts=ago(minutes=50), host_id="mbp-done", rule_id="SM-DONE",
                    severity="low", title="Already resolved", context={}),
        make_signal("01" * 16, ts=ago(days=3), host_id="mbp-old", rule_id="SM-OLD",
                    severity="low", title="Three day old signal", context={}),
        sample("signal-null-tags"),
        sample("signal-correlation"),
    ]
    signals += [make_signal(f"b{i}" * 16, ts=ago(minutes=40 + i), host_id="mbp-bulk",
                            rule_id="SM-BULK", severity="medium", title=f"Bulk target {i}",
                            context={})
                for i in range(3)]
    return signals


def insert_silent_agent(db_path: Path) -> None:
    """An agent whose last heartbeat arrived 45 minutes ago (a server cannot be sent an old one:
    it records when a heartbeat is received)."""
    now_ns = timeutil.now_ns()
    minute = 60 * 1_000_000_000
    last_seen = timeutil.format_utc(now_ns - 45 * minute)
    conn = sqlite3.connect(db_path, timeout=10)
    with conn:
        conn.execute(
            "INSERT INTO agents (agent_id, first_seen, last_seen, last_timestamp, version, "
            "os_version, uptime_seconds, status) "
            "VALUES (?, ?, ?, ?, 'v0.3.0', '14.6', 7200, 'active')",
            ("mbp-stale", timeutil.format_utc(now_ns - 3 * 86400 * 1_000_000_000), last_seen,
             last_seen))
    conn.close()


class Heartbeats(threading.Thread):
    """The healthy agents keep reporting while the tests run, as real ones do."""

    def __init__(self, server: ServerProcess) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.stopped = threading.Event()

    def beat(self) -> None:
        for name in ("heartbeat", "heartbeat-no-uptime"):
            api(self.server, "POST", "/agents/heartbeat", sample(name), headers=AGENT)

    def run(self) -> None:
        while not self.stopped.wait(HEARTBEAT_EVERY):
            try:
                self.beat()
            except OSError:
                return  # the server is gone: the module is over


def wait_for(predicate: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the server")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # The server's own stale-agent job finds the silent agent and raises its AGENT-STALE alert.
    server = ServerProcess(tmp_path_factory.mktemp("console") / "signals.db",
                           env={"SANTAMON_STALE_AFTER": f"{STALE_AFTER}s",
                                "SANTAMON_STALE_CHECK_INTERVAL": "1s"}).start()
    heartbeats = Heartbeats(server)
    try:
        heartbeats.beat()
        heartbeats.start()
        insert_silent_agent(server.db_path)
        api(server, "POST", "/ingest", seed_signals(), headers=AGENT)
        api(server, "PATCH", f"/signals/{'d0' * 16}/status", {"status": "resolved"})
        wait_for(lambda: api(server, "GET", "/signals?rule_id=AGENT-STALE")["count"] == 1)
        yield server
    finally:
        heartbeats.stopped.set()
        server.kill()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@dataclass
class Console:
    """A page on the console, and everything it did that a test may want to check."""

    page: Any
    server: ServerProcess
    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def rows(self) -> Any:
        return self.page.locator("#queue > li.sig")

    def open(self, query: str = "") -> Console:
        self.page.goto(f"{self.server.url}/ui{query}")
        return self

    def sign_in(self, query: str = "") -> Console:
        self.open(query)
        self.page.fill("#login-key", ANALYST_KEY)
        self.page.click("#login-submit")
        self.page.wait_for_selector("#console-view:not([hidden])")
        self.wait_idle()
        return self

    def wait_idle(self) -> None:
        sync_api.expect(self.page.locator("#queue-panel[aria-busy]")).to_have_count(0)

    def row(self, text: str) -> Any:
        return self.rows.filter(has_text=text)

    def screenshot(self, name: str, *, full_page: bool = False) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path


def _attach(page: Any, console: Console) -> None:
    page.on("request", lambda request: console.requests.append(request.url))

    def on_dialog(dialog: Any) -> None:
        console.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda error: console.errors.append(f"page error: {error}"))
    page.on("console", lambda message: console.errors.append(message.text)
            if "Content Security Policy" in message.text or message.type == "assert" else None)


def check_clean(console: Console) -> None:
    origin = urlsplit(console.server.url)
    outside = [url for url in console.requests
               if (urlsplit(url).scheme, urlsplit(url).netloc) != (origin.scheme, origin.netloc)]
    assert outside == [], f"requests outside the server: {outside}"
    assert console.dialogs == [], f"dialogs opened: {console.dialogs}"
    assert console.errors == [], f"errors: {console.errors}"


def new_console(browser: Any, server: ServerProcess, viewport: dict[str, int]) -> Iterator[Console]:
    context = browser.new_context(viewport=viewport, color_scheme="dark",
                                  service_workers="block")
    context.set_default_timeout(5000)
    page = context.new_page()
    console = Console(page, server)
    _attach(page, console)
    try:
        yield console
        check_clean(console)
    finally:
        context.close()


@pytest.fixture
def ui(browser: Any, console_server: ServerProcess) -> Iterator[Console]:
    yield from new_console(browser, console_server, DESKTOP)


@pytest.fixture
def phone_ui(browser: Any, console_server: ServerProcess) -> Iterator[Console]:
    yield from new_console(browser, console_server, PHONE)

