import ipaddress
import logging

import pytest

from santamon import app as app_module
from santamon.api.auth.limiter import FailedAuthLimiter, client_key
from santamon.api.proxies import client_address
from santamon.app import create_app


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_allows_a_burst_then_refuses_with_an_honest_wait():
    clock = Clock()
    limiter = FailedAuthLimiter(burst=3, period=30.0, clock=clock)  # one token per 10 s

    assert [limiter.failure("192.0.2.1") for _ in range(3)] == [None, None, None]
    assert limiter.failure("192.0.2.1") == 10
    clock.now += 4
    # Refused attempts are not charged: the wait shrinks with time, not with hammering.
    assert limiter.failure("192.0.2.1") == 6
    assert limiter.failure("192.0.2.1") == 6
    clock.now += 6
    assert limiter.failure("192.0.2.1") is None
    assert limiter.failure("192.0.2.1") == 10


def test_clients_are_limited_independently():
    limiter = FailedAuthLimiter(burst=1, period=60.0, clock=Clock())
    assert limiter.failure("192.0.2.1") is None
    assert limiter.failure("192.0.2.1") == 60
    assert limiter.failure("192.0.2.2") is None


def test_bucket_refills_to_burst_and_no_further():
    clock = Clock()
    limiter = FailedAuthLimiter(burst=2, period=10.0, clock=clock)
    limiter.failure("192.0.2.1")
    clock.now += 3600
    assert [limiter.failure("192.0.2.1") for _ in range(3)] == [None, None, 5]


def test_memory_is_bounded_by_forgetting_the_least_recent_client():
    limiter = FailedAuthLimiter(burst=1, period=60.0, max_clients=100, clock=Clock())
    limiter.failure("192.0.2.1")
    assert limiter.failure("192.0.2.1") == 60
    for i in range(1000):
        limiter.failure(f"10.0.{i // 256}.{i % 256}")
        assert len(limiter) <= 100
    # Forgotten means treated as new: more lenient, never a lock-out.
    assert limiter.failure("192.0.2.1") is None


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("fe80::1%eth0", "fe80::/64"),
        (None, "unknown"),
        ("", "unknown"),
    ],
)
def test_client_key_groups_ipv6_by_64(address, key):
    assert client_key(address) == key


def test_ipv6_hosts_in_one_64_share_a_bucket():
    limiter = FailedAuthLimiter(burst=1, period=60.0, clock=Clock())
    assert limiter.failure("2001:db8::1") is None
    assert limiter.failure("2001:db8::2") == 60


def test_rejects_nonsense_parameters():
    with pytest.raises(ValueError):
        FailedAuthLimiter(burst=0)
    with pytest.raises(ValueError):
        FailedAuthLimiter(period=0)


# -- behind a load balancer: X-Forwarded-For from trusted proxies only -----------------------

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
