"""Behind a load balancer: X-Forwarded-For and X-Forwarded-Proto count only from the proxies
listed in SANTAMON_TRUSTED_PROXIES, for the failed-auth limit, the request log and the
session cookie."""

from __future__ import annotations

import ipaddress
import logging

import pytest

from santamon import app as app_module
from santamon.api.auth.sessions import COOKIE_NAME
from santamon.api.proxies import client_address
from santamon.app import create_app

from .helpers import ANALYST_KEY

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
