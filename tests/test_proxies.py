"""Behind a load balancer: X-Forwarded-For and X-Forwarded-Proto count only from the proxies
listed in SANTAMON_TRUSTED_PROXIES, for the failed-auth limit, the request log, the session
cookie, and whatever else names the client: wrong-key warnings, the agent connection problems,
an agent key's last address and the alerts about keys."""

from __future__ import annotations

import ipaddress
import logging

import pytest

from santamon import app as app_module
from santamon.api.auth.sessions import COOKIE_NAME
from santamon.api.proxies import client_address
from santamon.api.state import KEY_SYNC
from santamon.app import create_app

from .helpers import AGENT, ANALYST, ANALYST_KEY, add_keys, make_signal, sample, sample_bytes

PROXIES = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("2001:db8:ffff::/48")]


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "client"),
    [
        # not from a trusted proxy: the header is anyone's to write, so it is ignored
        ("192.0.2.9", ["198.51.100.7"], "192.0.2.9"),
        # one proxy: the address it received the request from
        ("10.0.0.2", ["198.51.100.7"], "198.51.100.7"),
        # a client's own header, then two proxies: the nearest untrusted address wins
        ("10.0.0.2", ["6.6.6.6, 198.51.100.7, 10.1.1.1"], "198.51.100.7"),
        ("10.0.0.2", ["6.6.6.6", "198.51.100.7, 10.1.1.1"], "198.51.100.7"),
        # ports and brackets as some balancers write them; IPv6 and mapped IPv4
        ("10.0.0.2", ["198.51.100.7:4711"], "198.51.100.7"),
        ("10.0.0.2", ["[2001:db8::5]:4711"], "2001:db8::5"),
        ("::ffff:10.0.0.2", ["2001:db8::5"], "2001:db8::5"),
        ("2001:db8:ffff::1", ["198.51.100.7"], "198.51.100.7"),
        # only proxies: the farthest of them
        ("10.0.0.2", ["10.0.0.3"], "10.0.0.3"),
        # no header, or a malformed entry: the last address a trusted proxy vouched for
        ("10.0.0.2", [], "10.0.0.2"),
        ("10.0.0.2", ["6.6.6.6, not-an-address, 10.1.1.1"], "10.1.1.1"),
        ("10.0.0.2", [""], "10.0.0.2"),
    ],
)
def test_the_client_behind_trusted_proxies(peer, forwarded_for, client):
    assert client_address(peer, forwarded_for, PROXIES) == client


def test_without_trusted_proxies_the_header_means_nothing():
    assert client_address("10.0.0.2", ["198.51.100.7"], []) == "10.0.0.2"
    assert client_address(None, ["198.51.100.7"], PROXIES) is None


async def failing_from(client, forwarded_for: str) -> int:
    response = await client.get("/signals", headers={
        "X-API-Key": "wrong-key-0123456789abcdef", "X-Forwarded-For": forwarded_for})
    return response.status


async def test_a_trusted_proxy_has_each_client_limited_on_its_own(
        aiohttp_client, settings, monkeypatch, caplog):
    monkeypatch.setattr(app_module, "AUTH_FAILURE_BURST", 2)
    caplog.set_level(logging.INFO, logger="santamon.access")
    client = await aiohttp_client(create_app(settings.model_copy(update={
        "trusted_proxies": [ipaddress.ip_network("127.0.0.1/32")]})))  # the test client
    assert [await failing_from(client, "198.51.100.7") for _ in range(3)] == [401, 401, 429]
    # another client behind the same balancer is not throttled for the first one's mistakes
    assert await failing_from(client, "198.51.100.8") == 401
    # a client cannot escape by writing its own header: the proxy appends the real address
    assert await failing_from(client, "203.0.113.99, 198.51.100.7") == 429
    remotes = [r.fields["remote"] for r in caplog.records if r.name == "santamon.access"]
    assert remotes[-2:] == ["198.51.100.8", "198.51.100.7"]


async def test_the_header_from_anyone_else_is_ignored(aiohttp_client, settings, monkeypatch):
    monkeypatch.setattr(app_module, "AUTH_FAILURE_BURST", 2)
    client = await aiohttp_client(create_app(settings.model_copy(update={
        "trusted_proxies": [ipaddress.ip_network("10.0.0.0/8")]})))  # not the test client
    statuses = [await failing_from(client, f"198.51.100.{n}") for n in range(3)]
    assert statuses == [401, 401, 429]  # one address, whatever the header says


async def test_tls_ended_at_a_trusted_proxy_makes_the_cookie_secure(aiohttp_client, settings):
    client = await aiohttp_client(create_app(settings.model_copy(update={
        "trusted_proxies": [ipaddress.ip_network("127.0.0.0/8")]})))
    https = {"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https"}
    response = await client.post("/session", json={"key": ANALYST_KEY}, headers=https)
    assert response.cookies[COOKIE_NAME]["secure"] is True
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
    plain = await client.post("/session", json={"key": ANALYST_KEY},
                              headers={"X-Forwarded-Proto": "http"})
    assert not plain.cookies[COOKIE_NAME]["secure"]
    assert "Strict-Transport-Security" not in plain.headers


async def test_an_untrusted_client_cannot_claim_tls(aiohttp_client, settings):
    client = await aiohttp_client(create_app(settings))  # no trusted proxies
    response = await client.post("/session", json={"key": ANALYST_KEY},
                                 headers={"X-Forwarded-Proto": "https"})
    assert not response.cookies[COOKIE_NAME]["secure"]
    assert "Strict-Transport-Security" not in response.headers


async def read(client, path: str) -> dict:
    response = await client.get(path, headers=ANALYST)
    assert response.status == 200, await response.text()
    return await response.json()


async def test_everything_that_names_an_agent_names_the_one_behind_the_proxy(
        aiohttp_client, settings, caplog):
    keys = await add_keys(settings.db_path)
    client = await aiohttp_client(create_app(settings.model_copy(update={
        "trusted_proxies": [ipaddress.ip_network("127.0.0.1/32")],
        "new_agents_per_hour": 2})))

    def via(address: str, headers: dict[str, str]) -> dict[str, str]:
        return {**headers, "X-Forwarded-For": address}

    # a wrong key: warned about and counted for the agent's address
    wrong = await client.post("/ingest", data=sample_bytes("signal-file-access"),
                              headers=via("198.51.100.1", {"X-API-Key": "wrong-key-0123456789"}))
    assert wrong.status == 401
    (warning,) = [r for r in caplog.records if r.name == "santamon.api.problems"]
    assert warning.fields["client"] == "198.51.100.1"
    # a bound key speaking for another host: refused, alerted and counted likewise
    misuse = await client.post("/agents/heartbeat", json={**sample("heartbeat"),
                                                          "agent_id": "mbp-bob"},
                               headers=via("198.51.100.2", {"X-API-Key": keys.bound}))
    assert misuse.status == 403
    (alert,) = (await read(client, "/signals?rule_id=AGENT-KEY-MISUSE&status=all"))["signals"]
    assert alert["context"]["client_address"] == "198.51.100.2"
    problems = (await read(client, "/agents/problems"))["problems"]
    assert {(p["client"], p["kind"]) for p in problems} == {("198.51.100.1", "wrong_key"),
                                                            ("198.51.100.2", "key_misuse")}
    # a bound key used as it should be: its last use names the agent
    used = await client.post("/ingest", json=make_signal("own"),
                             headers=via("198.51.100.3", {"X-API-Key": keys.bound}))
    assert used.status == 200
    await client.server.app[KEY_SYNC].flush()
    (key,) = (await read(client, "/agent-keys"))["keys"]
    assert key["last_used_from"] == "198.51.100.3"
    # a key bringing too many new agents: the alert names who brought them
    for n in range(3):
        new = await client.post("/agents/heartbeat", json={**sample("heartbeat"),
                                                           "agent_id": f"mac-{n}"},
                                headers=via("198.51.100.4", AGENT))
    assert new.status == 503
    (throttled,) = (await read(client, "/signals?rule_id=AGENT-NEW-IDS-THROTTLED"
                                       "&status=all"))["signals"]
    assert throttled["context"]["client_address"] == "198.51.100.4"
