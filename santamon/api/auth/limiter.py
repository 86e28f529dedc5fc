"""What clients without a valid key may take: failed authentications, per client address,
memory for request bodies read before authentication, all together, and warnings in the log.

Only failures are counted and only failures are refused: a request with a valid key is never
limited, so a fleet of agents behind one NAT keeps working while a misconfigured or hostile
host on the same address is being throttled. Keys are at least 16 characters, so this is not
what stops guessing; it stops a bad client from flooding the logs and the key comparison path.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


def client_key(address: str | None) -> str:
    """The unit that is limited: an IPv4 address, or the /64 an IPv6 address belongs to.

    A single IPv6 host usually controls a whole /64, so limiting single addresses there
    would limit nothing.
    """
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class FailedAuthLimiter:
    """A token bucket per client: `burst` failures at once, refilled at `burst` per `period`.

    Memory is bounded by `max_clients`; when full, the least recently failing client is
    forgotten, which can only make the limiter more lenient, never lock anyone out.
    """

    def __init__(
        self,
        burst: int = 10,
        period: float = 60.0,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if burst < 1 or period <= 0 or max_clients < 1:
            raise ValueError("burst, period and max_clients must be positive")
        self.burst = burst
        self.rate = burst / period  # tokens per second
        self.max_clients = max_clients
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def failure(self, address: str | None) -> int | None:
        """Record a failed authentication from `address`.

        Returns None while the client is within its allowance (answer 401), or the number of
        seconds it must wait (answer 429 with that `Retry-After`). A refused attempt is not
        charged, so a client that keeps hammering is told the same honest wait.
        """
        key = client_key(address)
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(tokens=float(self.burst), updated=now)
            self._buckets[key] = bucket
            if len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        else:
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate)
            bucket.updated = now
            self._buckets.move_to_end(key)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return max(1, math.ceil((1.0 - bucket.tokens) / self.rate))


class BodyBudget:
    """Bytes that bodies read before authentication (the console's sign-in, the start of an
    agent request refused for its key) may hold, all requests together, so slow
    unauthenticated bodies cannot add up to exhaust memory."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.held = 0

    def reserve(self, size: int) -> bool:
        if self.held + size > self.total:
            return False
        self.held += size
        return True

    def release(self, size: int) -> None:
        self.held -= size


# One WARNING per client address (IPv6: per /64) and reason in this period; the next one says
# how many were left out. At most WARNINGS_PER_MINUTE in all, whatever the addresses.
WARN_PERIOD_SECONDS = 300.0
WARNINGS_PER_MINUTE = 20
WARNED_CLIENTS = 10_000


class WarningLimiter:
    """Whether to log a warning about `key` (a client, and why) now: once per `period` each,
    at most `per_minute` in all; remembers at most `max_keys`, the least recent forgotten
    first."""

    def __init__(self, period: float = WARN_PERIOD_SECONDS,
                 per_minute: int = WARNINGS_PER_MINUTE, max_keys: int = WARNED_CLIENTS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._period, self._per_minute, self._max_keys = period, per_minute, max_keys
        self._clock = clock
        self._last: OrderedDict[str, tuple[float, int]] = OrderedDict()  # logged at, left out
        self._minute, self._in_minute = float("-inf"), 0

    def allow(self, key: str) -> int | None:
        """None: stay quiet. Otherwise log, saying that this many were left out since."""
        now = self._clock()
        if now - self._minute >= 60.0:
            self._minute, self._in_minute = now, 0
        logged_at, left_out = self._last.pop(key, (float("-inf"), 0))
        if now - logged_at >= self._period and self._in_minute < self._per_minute:
            self._in_minute += 1
            self._last[key] = (now, 0)
            answer = left_out
        else:
            self._last[key] = (logged_at, left_out + 1)
            answer = None
        if len(self._last) > self._max_keys:
            self._last.popitem(last=False)
        return answer
