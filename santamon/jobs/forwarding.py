"""Forwarding signals to the tools people already use, at least once, never lost.

The forwarder reads signals not yet in `shipped` (oldest first), hands them to every sink, and
only then records them in `shipped`. A signal that any sink failed to take stays unshipped and
is retried with capped exponential backoff; ingest never waits for any of this.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import orjson
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from yarl import URL

from ..config import Settings
from ..domain.signals import at_or_above
from ..store import Store
from .board import JobSkipped

log = logging.getLogger(__name__)

BATCH_SIZE = 100
MAX_BATCHES_PER_RUN = 50
MAX_BACKOFF_SECONDS = 300.0
WEBHOOK_TIMEOUT_SECONDS = 10.0
WEBHOOK_CONCURRENCY = 4
SIGNATURE_HEADER = "X-Santamon-Signature"
SIGNAL_ID_HEADER = "X-Santamon-Signal-Id"


class DeliveryError(Exception):
    pass


class Sink(Protocol):
    name: str

    async def deliver(self, signals: list[dict[str, Any]]) -> set[str]:
        """Deliver what it can; return the ids delivered."""


def slack_message(signal: dict[str, Any]) -> dict[str, Any]:
    """A readable Slack message; signal text is untrusted, so Slack's markup is escaped."""

    def esc(value: Any) -> str:
        return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    lines = [f"*[{esc(signal['severity']).upper()}] {esc(signal['title'])}*",
             f"host `{esc(signal['host_id'])}` · rule `{esc(signal['rule_id'])}` · "
             f"{esc(signal['ts'])} · id `{esc(signal['signal_id'])}`"]
    if signal.get("rule_description"):
        lines.append(f">{esc(signal['rule_description'])}")
    return {"text": "\n".join(lines)}


class WebhookSink:
    """One POST per signal; the body is signed and the signal id rides in a header."""

    def __init__(self, session: aiohttp.ClientSession, url: str, secret: str | None,
                 fmt: str) -> None:
        # Logged and shown in /jobs: the origin only, as a webhook's path is often its secret.
        self.name = f"webhook {URL(url).origin()}"
        self._session, self._url, self._format = session, url, fmt
        self._secret = secret.encode() if secret else None
        self._limit = asyncio.Semaphore(WEBHOOK_CONCURRENCY)
        self.last_error: str | None = None

    def _body(self, signal: dict[str, Any]) -> bytes:
        return orjson.dumps(slack_message(signal) if self._format == "slack" else signal)

    async def _post(self, signal: dict[str, Any]) -> bool:
        body = self._body(signal)
        headers = {"Content-Type": "application/json", SIGNAL_ID_HEADER: signal["signal_id"]}
        if self._secret:
            digest = hmac.new(self._secret, body, hashlib.sha256).hexdigest()
            headers[SIGNATURE_HEADER] = f"sha256={digest}"
        async with self._limit:
            try:
                async with self._session.post(
                        self._url, data=body, headers=headers,
                        timeout=aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT_SECONDS)) as response:
                    if 200 <= response.status < 300:
                        return True
                    self.last_error = f"HTTP {response.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}" if str(exc) else type(
                    exc).__name__
        return False

    async def deliver(self, signals: list[dict[str, Any]]) -> set[str]:
        self.last_error = None
        outcomes = await asyncio.gather(*(self._post(signal) for signal in signals))
        return {s["signal_id"] for s, ok in zip(signals, outcomes, strict=True) if ok}


class FileSink:
    """Appends JSON lines and fsyncs; a failed append is cut back so no half line remains."""

    def __init__(self, path: Path) -> None:
        self.name = f"file {path}"
        self._path = path
        self.last_error: str | None = None

    def _append(self, data: bytes) -> None:
        with open(self._path, "ab") as handle:
            size = handle.tell()
            try:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            except OSError:
                handle.truncate(size)
                raise

    async def deliver(self, signals: list[dict[str, Any]]) -> set[str]:
        self.last_error = None
        data = b"".join(orjson.dumps(signal) + b"\n" for signal in signals)
        try:
            await asyncio.to_thread(self._append, data)
        except OSError as exc:
            self.last_error = str(exc)
            return set()
        return {signal["signal_id"] for signal in signals}


def build_sinks(settings: Settings, session: aiohttp.ClientSession) -> list[Sink]:
    sinks: list[Sink] = []
    if settings.forward_webhook_url:
        sinks.append(WebhookSink(session, str(settings.forward_webhook_url),
                                 settings.forward_webhook_secret,
                                 settings.forward_webhook_format))
    if settings.forward_file:
        sinks.append(FileSink(settings.forward_file))
    return sinks


class Forwarder:
    def __init__(self, store: Store, sinks: list[Sink], *, min_severity: str,
                 base_delay: float) -> None:
        self.store = store
        self.sinks = sinks
        self.severities = at_or_above(min_severity)
        self._base_delay = base_delay
        self.consecutive_failures = 0
        self._retry_at = 0.0

    @property
    def retry_in(self) -> float:
        return max(0.0, self._retry_at - time.monotonic())

    async def run(self) -> str:
        if not self.sinks:
            return "no sink configured"
        if self.retry_in > 0:
            raise JobSkipped(f"backing off for {self.retry_in:.1f}s after "
                             f"{self.consecutive_failures} failure(s)")
        shipped = 0
        for _ in range(MAX_BATCHES_PER_RUN):
            batch = await self.store.unshipped(BATCH_SIZE)
            wanted = [s for s in batch.signals if s["severity"] in self.severities]
            delivered = {s["signal_id"] for s in wanted}
            for sink in self.sinks:
                if delivered:
                    delivered &= await sink.deliver([s for s in wanted
                                                     if s["signal_id"] in delivered])
            # Everything before the first signal that was wanted but not delivered is done.
            end, dealt_with = batch.end, batch.start
            wanted_ids = {s["signal_id"] for s in wanted}
            for signal, position in zip(batch.signals, batch.positions, strict=True):
                if signal["signal_id"] in wanted_ids and signal["signal_id"] not in delivered:
                    end = dealt_with
                    break
                dealt_with = position
            await self.store.mark_shipped(sorted(delivered), end)
            shipped += len(delivered)
            if len(delivered) < len(wanted):
                self._failed()
                errors = "; ".join(f"{sink.name}: {sink.last_error}" for sink in self.sinks
                                   if getattr(sink, "last_error", None))
                raise DeliveryError(f"{len(wanted) - len(delivered)} signal(s) not delivered "
                                    f"({errors}); retrying in {self.retry_in:.1f}s")
            if not batch.more:
                break
        self.consecutive_failures = 0
        return f"shipped {shipped} signal(s)"

    def collector(self) -> Collector:
        return _ForwarderCollector(self)

    def _failed(self) -> None:
        self.consecutive_failures += 1
        delay = min(self._base_delay * 2 ** (self.consecutive_failures - 1), MAX_BACKOFF_SECONDS)
        self._retry_at = time.monotonic() + delay


class _ForwarderCollector(Collector):
    def __init__(self, forwarder: Forwarder) -> None:
        self._forwarder = forwarder

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "santamon_forward_consecutive_failures",
            "Forwarding attempts that failed in a row; the forwarder backs off meanwhile.",
            value=self._forwarder.consecutive_failures)
