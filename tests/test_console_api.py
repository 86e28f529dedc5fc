"""The console's server side: sessions and CSRF, the volume endpoint, the page and its headers."""

from __future__ import annotations

import os
import re
import sqlite3

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from yarl import URL

from santamon import timeutil
from santamon.api import static
from santamon.api.auth.sessions import COOKIE_NAME, CSRF_HEADER, ConsoleSessions, set_session_cookie
from santamon.app import create_app
from santamon.store.sqlite import SQLiteStore

from .helpers import AGENT, AGENT_KEY, ANALYST, ANALYST_KEY, make_signal


async def sign_in(client) -> str:
    response = await client.post("/session", json={"key": ANALYST_KEY})
    assert response.status == 200
    return (await response.json())["csrf_token"]


# -- sessions -------------------------------------------------------------------------------

async def test_sign_in_sets_a_strict_httponly_cookie(client):
    response = await client.post("/session", json={"key": ANALYST_KEY})
    assert response.status == 200
    body = await response.json()
    assert len(body["csrf_token"]) >= 32
    cookie = response.cookies[COOKIE_NAME]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    assert int(cookie["max-age"]) == 12 * 3600
    assert not cookie["secure"]  # plain HTTP here; `secure` follows the request's scheme
    assert ANALYST_KEY not in response.headers["Set-Cookie"]
    assert response.headers["Cache-Control"] == "no-store"


def test_the_cookie_is_secure_under_tls():
    request = make_mocked_request("POST", "/session").clone(scheme="https")
    response = web.Response()
    set_session_cookie(request, response, "session-id", 60)
    cookie = response.cookies[COOKIE_NAME]
    assert cookie["secure"] is True
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"


@pytest.mark.parametrize("key", [AGENT_KEY, "wrong-key-0123456789", ""])
async def test_only_the_analyst_key_signs_in(client, key):
    response = await client.post("/session", json={"key": key})
    assert response.status in (401, 422)
    assert COOKIE_NAME not in response.cookies
    assert (await client.get("/session")).status == 401
    assert (await client.get("/signals")).status == 401


async def test_session_cookie_reads_and_the_csrf_token_guards_writes(client):
    csrf = await sign_in(client)
    assert (await client.get("/session")).status == 200
    assert (await (await client.get("/session")).json())["csrf_token"] == csrf
    assert (await client.get("/signals")).status == 200
    await client.post("/ingest", json=make_signal("a" * 32), headers=AGENT)

    without = await client.patch(f"/signals/{'a' * 32}/status", json={"status": "resolved"})
    assert without.status == 403
    assert CSRF_HEADER in (await without.json())["error"]
    wrong = await client.patch(f"/signals/{'a' * 32}/status", json={"status": "resolved"},
                               headers={CSRF_HEADER: "not-the-token"})
    assert wrong.status == 403
    bulk = await client.post("/signals/status", json={"signal_ids": ["a" * 32],
                                                      "status": "resolved"})
    assert bulk.status == 403
    status = await client.get(f"/signals/{'a' * 32}")
    assert (await status.json())["status"] == "open"

    right = await client.patch(f"/signals/{'a' * 32}/status", json={"status": "resolved"},
                               headers={CSRF_HEADER: csrf})
    assert right.status == 200


async def test_sign_out_ends_the_session(client):
    csrf = await sign_in(client)
    assert (await client.delete("/session")).status == 403  # needs the token too
    response = await client.delete("/session", headers={CSRF_HEADER: csrf})
    assert response.status == 200
    assert (await client.get("/session")).status == 401
    assert (await client.get("/signals")).status == 401


async def test_a_new_sign_in_replaces_the_old_session(client):
    await sign_in(client)
    old = client.session.cookie_jar.filter_cookies(client.make_url("/"))[COOKIE_NAME].value
    await sign_in(client)
    client.session.cookie_jar.clear()
    assert (await client.get("/session", headers={"Cookie": f"{COOKIE_NAME}={old}"})).status == 401


async def test_keys_still_work_beside_sessions(client):
    assert (await client.get("/signals", headers=ANALYST)).status == 200
    response = await client.post("/signals/status", headers=ANALYST,
                                 json={"signal_ids": ["x"], "status": "resolved"})
    assert response.status == 200  # a key is not a cookie: no CSRF token needed


async def test_sessions_expire_and_stay_bounded(tmp_path):
    now = [1_000 * 10**9]
    store = SQLiteStore(tmp_path / "s.db")
    await store.open()
    try:
        sessions = ConsoleSessions(store, 60, keep=3, clock=lambda: now[0])
        first, session = await sessions.create("analyst")
        assert await sessions.get(first) == session
        now[0] += 59 * 10**9
        assert await sessions.get(first) == session
        now[0] += 1 * 10**9
        assert await sessions.get(first) is None
        ids = [(await sessions.create("analyst"))[0] for _ in range(5)]
        with sqlite3.connect(tmp_path / "s.db") as conn:
            assert conn.execute("SELECT count(*) FROM sessions").fetchone() == (3,)
        assert await sessions.get(ids[0]) is None
        assert await sessions.get(ids[-1]) is not None
        await sessions.revoke(ids[-1])
        assert await sessions.get(ids[-1]) is None
        assert await sessions.get(None) is None
    finally:
        await store.close()


# -- volume ---------------------------------------------------------------------------------

async def test_volume_counts_by_event_time_and_severity(client):
    signals = [
        make_signal("v1", ts="2026-11-03T14:22:07.1-08:00", severity="critical"),  # 22:22Z
        make_signal("v2", ts="2026-11-03T22:59:59.999999999Z", severity="high"),
        make_signal("v3", ts="2026-11-03T23:00:00Z", severity="high"),
        make_signal("v4", ts="2026-11-04T01:30:00+01:00", severity="info"),  # 00:30Z
        make_signal("v5", ts="2026-11-05T00:00:00Z", severity="low"),  # outside the window
    ]
    assert (await client.post("/ingest", json=signals, headers=AGENT)).status == 200
    response = await client.get("/signals/volume", headers=ANALYST, params={
        "since": "2026-11-03T22:10:00Z", "until": "2026-11-04T01:00:00Z", "bucket": "1h"})
    assert response.status == 200
    body = await response.json()
    assert body["bucket_seconds"] == 3600
    assert [b["start"] for b in body["buckets"]] == [
        "2026-11-03T22:00:00.000000000Z", "2026-11-03T23:00:00.000000000Z",
        "2026-11-04T00:00:00.000000000Z"]
    assert body["buckets"][0] == {"start": "2026-11-03T22:00:00.000000000Z", "critical": 1,
                                  "high": 1, "medium": 0, "low": 0, "info": 0}
    assert body["buckets"][1]["high"] == 1
    assert body["buckets"][2]["info"] == 1


async def test_volume_without_since_covers_all_history_and_auto_picks_a_bucket(client):
    await client.post("/ingest", headers=AGENT, json=[
        make_signal("old", ts="2026-10-01T00:00:00Z"),
        make_signal("new", ts="2026-11-01T00:00:00Z")])
    response = await client.get("/signals/volume", headers=ANALYST,
                                params={"until": "2026-11-02T00:00:00Z", "bucket": "auto"})
    body = await response.json()
    assert body["bucket_seconds"] == 12 * 3600  # 32 days in at most ~120 bars
    assert body["buckets"][0]["start"] == "2026-10-01T00:00:00.000000000Z"
    assert len(body["buckets"]) == 64
    assert sum(b["critical"] for b in body["buckets"]) == 2


async def test_volume_of_an_empty_store_is_a_day_of_zeros(client):
    body = await (await client.get("/signals/volume", headers=ANALYST)).json()
    assert len(body["buckets"]) in (24, 25)
    assert all(b[s] == 0 for b in body["buckets"] for s in ("critical", "info"))


@pytest.mark.parametrize("params", [
    {"bucket": "1s"}, {"bucket": "soon"}, {"since": "yesterday"},
    {"since": "2026-11-04T00:00:00Z", "until": "2026-11-03T00:00:00Z"},
    {"since": "2000-01-01T00:00:00Z", "bucket": "1m"}])
async def test_volume_rejects_bad_windows_with_422(client, params):
    response = await client.get("/signals/volume", headers=ANALYST, params=params)
    assert response.status == 422
    assert "details" in await response.json()


async def test_volume_needs_the_analyst(client):
    assert (await client.get("/signals/volume")).status == 401
    assert (await client.get("/signals/volume", headers=AGENT)).status == 403


async def test_stats_count_open_signals_by_severity(client):
    await client.post("/ingest", headers=AGENT, json=[
        make_signal("s1", severity="critical"), make_signal("s2", severity="critical"),
        make_signal("s3", severity="high")])
    await client.patch("/signals/s2/status", headers=ANALYST, json={"status": "resolved"})
    stats = await (await client.get("/stats", headers=ANALYST)).json()
    assert stats["open_by_severity"] == {"critical": 1, "high": 1}


# -- the page and its files -----------------------------------------------------------------

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


@pytest.mark.parametrize("path", ["/ui", "/static/js/main.js", "/static/app.css",
                                  "/static/favicon.svg"])
async def test_console_files_are_public_with_security_headers(client, path):
    response = await client.get(path)
    assert response.status == 200
    assert response.headers["Content-Security-Policy"] == CSP
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("module", sorted(p.name for p in (static.STATIC_DIR / "js").glob("*.js")))
async def test_console_modules_are_served_as_javascript(client, module):
    # A module script with another type is refused by the browser (nosniff, strict MIME).
    response = await client.get(f"/static/js/{module}")
    assert response.status == 200
    assert response.content_type in ("text/javascript", "application/javascript")


async def test_api_errors_carry_the_headers_too(client):
    response = await client.get("/signals")
    assert response.status == 401
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_the_page_has_no_inline_script_or_style():
    html = (static.STATIC_DIR / "index.html").read_text()
    assert "<style" not in html
    assert " style=" not in html
    assert re.search(r"\son[a-z]+\s*=", html) is None  # no onclick= and friends
    for line in html.splitlines():
        if "<script" in line:
            assert 'src="/static/' in line


@pytest.mark.parametrize("path", ["/static/../setup.cfg", "/static/%2e%2e/setup.cfg",
                                  "/static/", "/static/nope.js"])
async def test_static_serves_only_the_console_folder(client, path):
    response = await client.get(URL(path, encoded=True), headers=ANALYST)
    assert response.status in (403, 404)
    assert b"[metadata]" not in await response.read()


async def test_the_api_runs_without_the_console_files(aiohttp_client, settings, monkeypatch,
                                                      tmp_path):
    monkeypatch.setattr(static, "STATIC_DIR", tmp_path / "missing")
    client = await aiohttp_client(create_app(settings))
    assert (await client.get("/health")).status == 200
    assert (await client.get("/ui")).status in (401, 404)
    assert (await client.post("/session", json={"key": ANALYST_KEY})).status == 200


async def test_static_does_not_follow_symlinks(client, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    link = static.STATIC_DIR / f"link-{os.getpid()}.txt"
    link.symlink_to(secret)
    try:
        response = await client.get(f"/static/{link.name}")
        assert response.status in (403, 404)
        assert b"top secret" not in await response.read()
    finally:
        link.unlink()


# -- volume over any history (issue 9) -------------------------------------------------------

async def _volume(client, **params):
    response = await client.get("/signals/volume", headers=ANALYST, params=params)
    assert response.status == 200, await response.text()
    return await response.json()


def _days_ago(days: float) -> str:
    return timeutil.format_utc(timeutil.now_ns() - int(days * 86400e9))


async def test_the_default_volume_works_once_history_is_long(client):
    """The console's chart asks with no window: 1 h buckets widen rather than fail."""
    first = _days_ago(100)
    await client.post("/ingest", headers=AGENT, json=[
        make_signal("old", ts=first), make_signal("new", ts=_days_ago(0.5))])
    body = await _volume(client)
    assert body["since"] == first
    assert 2 <= len(body["buckets"]) <= 2000
    assert body["bucket_seconds"] >= 3600
    assert sum(b["critical"] for b in body["buckets"]) == 2
    auto = await _volume(client, bucket="auto")
    assert len(auto["buckets"]) <= 121 and sum(b["critical"] for b in auto["buckets"]) == 2


async def test_go_zero_time_is_stored_but_left_out_of_the_default_window(client):
    await client.post("/ingest", headers=AGENT, json=[
        make_signal("zero", ts="0001-01-01T00:00:00Z"), make_signal("recent", ts=_days_ago(2))])
    stored = await (await client.get("/signals/zero", headers=ANALYST)).json()
    assert stored["ts"] == "0001-01-01T00:00:00.000000000Z"
    for params in ({}, {"bucket": "auto"}):
        body = await _volume(client, **params)
        assert body["since"] > "2000"
        assert sum(b["critical"] for b in body["buckets"]) == 1
    # Asked for explicitly, even year 1 has its buckets.
    body = await _volume(client, since="0001-01-01T00:00:00Z", until="0001-01-20T00:00:00Z",
                         bucket="7d")
    assert body["buckets"][0]["start"] == "0001-01-01T00:00:00.000000000Z"
    assert sum(b["critical"] for b in body["buckets"]) == 1


async def test_a_very_old_signal_still_gets_an_auto_chart(client):
    await client.post("/ingest", headers=AGENT, json=[
        make_signal("ancient", ts="1901-06-01T00:00:00Z"), make_signal("now", ts=_days_ago(1))])
    for params in ({}, {"bucket": "auto"}):
        body = await _volume(client, **params)
        assert len(body["buckets"]) <= 2000
        assert sum(b["critical"] for b in body["buckets"]) == 2


async def test_signals_before_1970_fall_into_their_own_bucket(client):
    await client.post("/ingest", headers=AGENT, json=[
        make_signal("pre", ts="1969-12-31T23:30:00Z"),
        make_signal("pre2", ts="1969-12-31T22:59:59Z", severity="low"),
        make_signal("post", ts="1970-01-01T00:30:00Z", severity="high")])
    body = await _volume(client, since="1969-12-31T22:00:00Z", until="1970-01-01T01:00:00Z",
                         bucket="1h")
    assert [(b["start"], b["critical"], b["high"], b["low"]) for b in body["buckets"]] == [
        ("1969-12-31T22:00:00.000000000Z", 0, 0, 1),
        ("1969-12-31T23:00:00.000000000Z", 1, 0, 0),
        ("1970-01-01T00:00:00.000000000Z", 0, 1, 0)]


@pytest.mark.parametrize("bucket", ["99999999999999d", "9" * 400 + "d", "3661d"])
async def test_an_enormous_bucket_is_422(client, bucket):
    response = await client.get("/signals/volume", headers=ANALYST, params={"bucket": bucket})
    assert response.status == 422
    assert (await response.json())["details"][0]["loc"] == ["bucket"]
