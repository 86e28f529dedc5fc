import pytest

from santamon.api.auth.limiter import FailedAuthLimiter, client_key


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
