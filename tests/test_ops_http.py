"""Operations surface of the app: API docs, metrics, headers, the auth limiter, the request log."""

from __future__ import annotations

import asyncio
import logging

import pytest
from openapi_spec_validator import validate
from prometheus_client.parser import text_string_to_metric_families
from yarl import URL

from santamon import app as app_module
from santamon.api import middlewares
from santamon.app import create_app
from santamon.jobs.forwarding import WebhookSink

from .helpers import AGENT, AGENT_KEY, ANALYST, ANALYST_KEY, make_signal, sample


def _id(n: int) -> str:
    return f"{n:032x}"


def _samples(text: str) -> dict[tuple, float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_openapi_is_public_valid_and_covers_every_route(client):
    response = await client.get("/openapi.json")
    assert response.status == 200
    doc = await response.json()
    validate(doc)
    documented = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    routed = {
        (route.method, route.resource.canonical)
        for route in client.app.router.routes()
        if route.method != "HEAD" and not route.resource.canonical.startswith("/static")
    }
    assert documented == routed
    schemes = doc["components"]["securitySchemes"]
    assert schemes["apiKey"] == {**schemes["apiKey"], "in": "header", "name": "X-API-Key"}
    assert schemes["bearer"]["scheme"] == "bearer"
    # The request schemas are the models that validate requests.
    signal_in = doc["components"]["schemas"]["SignalIn"]
    assert set(signal_in["required"]) == {"signal_id", "ts", "host_id", "rule_id", "severity",
                                          "title", "context"}
    assert {"bearer": []} in doc["paths"]["/metrics"]["get"]["security"]
    assert doc["paths"]["/docs"]["get"]["security"] == []


@pytest.mark.parametrize(("path", "script"), [("/docs", "swagger-init.js"),
                                               ("/redoc", "redoc-init.js")])
async def test_doc_pages_and_their_assets_are_served_without_a_key(client, path, script):
    page = await client.get(path)
    assert page.status == 200
    assert page.content_type == "text/html"
    html = await page.text()
    assert f"static/docs/{script}" in html
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self';" in csp and "unsafe-eval" not in csp
    for ref in ("/static/docs/" + script, "/static/vendor/swagger-ui/swagger-ui-bundle.js",
                "/static/vendor/redoc/redoc.standalone.js", "/static/vendor/swagger-ui/LICENSE"):
        asset = await client.get(ref)
        assert asset.status == 200, ref
        assert asset.headers["Cache-Control"] == "no-cache"


async def test_static_files_cannot_escape_the_static_directory(client):
    for path in ("/static/../setup.cfg", "/static/%2e%2e/setup.cfg",
                 "/static/vendor/%2e%2e/%2e%2e/setup.cfg", "/static/docs/..%2f..%2fsetup.cfg"):
        response = await client.get(URL(path, encoded=True), headers=ANALYST)
        assert response.status in (403, 404), path
        assert "[metadata]" not in await response.text()


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("GET", "/health", {}, 200),
        ("GET", "/signals", ANALYST, 200),
        ("GET", "/signals", {}, 401),
        ("GET", "/stats", AGENT, 403),
        ("GET", "/no-such-thing", ANALYST, 404),
        ("DELETE", "/ingest", ANALYST, 405),
    ],
)
async def test_every_response_carries_security_headers_and_api_answers_are_not_stored(
        client, method, path, headers, status):
    response = await client.request(method, path, headers=headers)
    assert response.status == status
    h = response.headers
    assert h["X-Content-Type-Options"] == "nosniff"
    assert h["X-Frame-Options"] == "DENY"
    assert h["Referrer-Policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in h["Content-Security-Policy"]
    assert "'unsafe-inline'" not in h["Content-Security-Policy"]
    assert h["Cache-Control"] == "no-store"
    assert h["Server"] == "santamon"
    assert "Strict-Transport-Security" not in h  # plain HTTP here; see test_tls_serving
    # JSON is no document: it may load nothing, and the document-only headers stay off it.
    assert h["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert h["Cross-Origin-Resource-Policy"] == "same-origin"
    assert "Permissions-Policy" not in h and "Cross-Origin-Opener-Policy" not in h


@pytest.mark.parametrize("path", ["/ui", "/docs", "/static/app.css"])
async def test_documents_carry_the_document_headers_too(client, path):
    response = await client.get(path)
    assert response.status == 200
    h = response.headers
    assert h["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "camera=()" in h["Permissions-Policy"]
    assert h["Cross-Origin-Resource-Policy"] == "same-origin"
    assert "script-src 'self'" in h["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in h["Content-Security-Policy"]


async def test_metrics_needs_the_analyst_key(client):
    assert (await client.get("/metrics")).status == 401
    assert (await client.get("/metrics", headers=AGENT)).status == 403
    response = await client.get("/metrics", headers=ANALYST)
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")


async def test_metrics_count_ingest_outcomes_commits_latency_and_agents(client):
    first = make_signal(_id(1))
    assert (await client.post("/ingest", json=first, headers=AGENT)).status == 200
    assert (await client.post("/ingest", json=first, headers=AGENT)).status == 200
    batch = [make_signal(_id(n)) for n in (1, 2, 3)]
    assert (await client.post("/ingest", json=batch, headers=AGENT)).status == 200
    assert (await client.post("/ingest", data=b"{nope", headers=AGENT)).status == 400
    bad = make_signal(_id(4), ts="yesterday")
    assert (await client.post("/ingest", json=bad, headers=AGENT)).status == 422
    assert (await client.post("/ingest", json=first)).status == 401
    beat = sample("heartbeat")
    assert (await client.post("/agents/heartbeat", json=beat, headers=AGENT)).status == 200

    s = _samples(await (await client.get("/metrics", headers=ANALYST)).text())
    assert s[("santamon_ingest_signals_total", (("outcome", "stored"),))] == 3
    assert s[("santamon_ingest_signals_total", (("outcome", "duplicate"),))] == 2
    for reason in ("malformed", "invalid", "unauthorized"):
        assert s[("santamon_ingest_rejected_total", (("reason", reason),))] == 1, reason
    assert s[("santamon_auth_failures_total", (("reason", "missing"),))] == 1
    assert s[("santamon_store_write_batch_size_count", ())] >= 4
    assert s[("santamon_store_commit_seconds_count", ())] >= 4
    assert s[("santamon_http_request_duration_seconds_count",
              (("method", "POST"), ("route", "/ingest")))] == 6
    assert s[("santamon_http_requests_total",
              (("method", "POST"), ("route", "/ingest"), ("status", "422")))] == 1
    assert s[("santamon_agents", (("status", "active"),))] == 1
    assert s[("santamon_signals", (("status", "open"),))] == 3
    assert s[("santamon_open_signals", (("severity", "critical"),))] == 3
    assert s[("santamon_open_signals", (("severity", "low"),))] == 0
    assert s[("santamon_database_size_bytes", ())] > 0
    assert s[("santamon_log_records_dropped", ())] >= 0  # what a blocked stderr costs


async def test_failed_auth_is_limited_per_address_but_a_valid_key_never_is(
        aiohttp_client, settings, monkeypatch):
    monkeypatch.setattr(app_module, "AUTH_FAILURE_BURST", 3)
    client = await aiohttp_client(create_app(settings))
    wrong = {"X-API-Key": "wrong-key-0123456789abcdef"}
    statuses = [(await client.get("/signals", headers=wrong)).status for _ in range(3)]
    assert statuses == [401, 401, 401]
    limited = await client.get("/signals", headers=wrong)
    assert limited.status == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    body = await limited.json()
    assert body["error"] and body["retry_after"] == int(limited.headers["Retry-After"])
    assert (await client.get("/signals")).status == 429  # no key at all counts as a failure
    # The same address with valid keys: agents behind one NAT keep shipping.
    assert (await client.post("/ingest", json=make_signal(_id(9)), headers=AGENT)).status == 200
    assert (await client.get("/signals", headers=ANALYST)).status == 200
    assert (await client.get("/stats", headers=AGENT)).status == 403  # valid, just not allowed
    s = _samples(await (await client.get("/metrics", headers=ANALYST)).text())
    assert s[("santamon_auth_failures_total", (("reason", "rate_limited"),))] == 2


async def test_one_log_line_per_request_with_the_agent_and_never_a_key(client, caplog):
    caplog.set_level(logging.INFO, logger="santamon.access")
    signal = make_signal(_id(7), host_id="mac-lab-07")
    await client.post("/ingest", json=signal, headers=AGENT)
    await client.post("/agents/heartbeat", json=sample("heartbeat"), headers=AGENT)
    await client.get("/signals?status=all", headers=ANALYST)
    await client.get("/signals", headers={"X-API-Key": "not-a-key-0123456789"})
    records = [r for r in caplog.records if r.name == "santamon.access"]
    fields = [r.fields for r in records]
    assert [(f["method"], f["path"], f["status"]) for f in fields] == [
        ("POST", "/ingest", 200),
        ("POST", "/agents/heartbeat", 200),
        ("GET", "/signals", 200),
        ("GET", "/signals", 401),
    ]
    assert fields[0]["agent_id"] == "mac-lab-07"
    assert fields[1]["agent_id"] == sample("heartbeat")["agent_id"]
    assert fields[2]["agent_id"] is None
    assert all(f["duration_ms"] >= 0 and f["remote"] for f in fields)
    everything = caplog.text + "".join(map(str, fields))
    for secret in (AGENT_KEY, ANALYST_KEY, "not-a-key-0123456789"):
        assert secret not in everything


async def test_a_body_that_trickles_in_is_cut_off_with_408(client, monkeypatch):
    monkeypatch.setattr(middlewares, "BODY_READ_TIMEOUT_SECONDS", 0.3)
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(f"POST /ingest HTTP/1.1\r\nHost: x\r\nX-API-Key: {AGENT_KEY}\r\n"
                 "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{".encode())
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), 5)
    writer.close()
    assert status_line.split()[1] == b"408"
    s = _samples(await (await client.get("/metrics", headers=ANALYST)).text())
    assert s[("santamon_ingest_rejected_total", (("reason", "timeout"),))] == 1


async def test_an_oversized_body_is_refused_with_413(client):
    big = b"[" + b" " * (9 * 1024 * 1024) + b"]"
    response = await client.post("/ingest", data=big, headers=AGENT)
    assert response.status == 413
    assert (await response.json())["error"]


async def test_job_and_forwarding_metrics(aiohttp_client, settings, tmp_path):
    # A directory as the forwarding file: every delivery fails, so the backlog stays.
    app = create_app(settings.model_copy(update={
        "stale_check_interval": 0.1, "retention_interval": 3600, "forward_interval": 0.1,
        "forward_file": tmp_path}))
    client = await aiohttp_client(app)
    batch = [make_signal(_id(n)) for n in range(5)]
    assert (await client.post("/ingest", json=batch, headers=AGENT)).status == 200
    for _ in range(100):
        s = _samples(await (await client.get("/metrics", headers=ANALYST)).text())
        if (s.get(("santamon_job_failures_total", (("job", "forward"),)), 0) >= 1
                and s.get(("santamon_job_runs_total", (("job", "stale-agents"),)), 0) >= 1):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the jobs did not run")
    assert s[("santamon_forward_backlog", ())] == 5
    assert s[("santamon_forward_consecutive_failures", ())] >= 1
    assert s[("santamon_job_consecutive_failures", (("job", "forward"),))] >= 1
    assert s[("santamon_job_failures_total", (("job", "stale-agents"),))] == 0
    assert ("santamon_job_runs_total", (("job", "retention"),)) in s


async def test_console_sign_in_guesses_are_rate_limited_too(aiohttp_client, settings,
                                                            monkeypatch):
    monkeypatch.setattr(app_module, "AUTH_FAILURE_BURST", 2)
    client = await aiohttp_client(create_app(settings))
    guesses = [await client.post("/session", json={"key": f"guess-{n}-0123456789abcdef"})
               for n in range(3)]
    assert [r.status for r in guesses] == [401, 401, 429]
    assert int(guesses[-1].headers["Retry-After"]) >= 1
    # The analyst still signs in from the same address.
    assert (await client.post("/session", json={"key": ANALYST_KEY})).status == 200


def test_a_webhook_is_named_by_its_origin_only():
    """The sink's name goes to logs and /jobs; a Slack-style URL path is a credential."""
    sink = WebhookSink(None, "https://hooks.slack.com/services/T0/B0/secretpath?token=x",  # type: ignore[arg-type]
                       None, "slack")
    assert sink.name == "webhook https://hooks.slack.com"
