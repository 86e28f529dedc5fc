"""Forwarding signals to the tools people already use, at least once, never lost.

The forwarder reads signals not yet in `shipped` (oldest first), hands them to every sink, and
only then records them in `shipped`. A signal that any sink failed to take stays unshipped and
is retried, without holding back the signals after it; a run that delivers nothing backs off
exponentially (capped). Ingest never waits for any of this.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp
import orjson
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from yarl import URL

from ..config import Settings
from ..domain.signals import at_or_above
from ..store import Store
from ..store.base import ForwardPosition
from .board import JobSkipped

log = logging.getLogger(__name__)

BATCH_SIZE = 100
MAX_BATCHES_PER_RUN = 50
# A run that takes longer (a receiver answering slowly) is cut off and counts as failed, so it
# shows in /jobs and backs off instead of running for minutes.
MAX_RUN_SECONDS = 60.0
MAX_BACKOFF_SECONDS = 300.0
WEBHOOK_TIMEOUT_SECONDS = 10.0
WEBHOOK_CONCURRENCY = 4
SIGNATURE_HEADER = "X-Santamon-Signature"
TIMESTAMP_HEADER = "X-Santamon-Timestamp"
SIGNAL_ID_HEADER = "X-Santamon-Signal-Id"
_VISIBLE_ASCII = re.compile(r"[\x21-\x7e]+")


class DeliveryError(Exception):
    pass


class Sink(Protocol):
    name: str
    last_error: str | None

    async def deliver(self, signals: list[dict[str, Any]], deadline: float) -> set[str]:
        """Deliver what it can, starting nothing after `deadline` (time.monotonic()); return
        the ids delivered. Never raises: what failed is in `last_error`."""


def header_value(text: str) -> str:
    """`text` as a header value: as is when visible ASCII (the agent's ids are 32 hex
    characters), else percent-encoded UTF-8. Older rows may hold any id, and CR, LF or NUL
    in a header make aiohttp refuse the whole request."""
    return text if _VISIBLE_ASCII.fullmatch(text) else quote(text, safe="")


def describe_failure(exc: BaseException) -> str:
    """What went wrong, fit for logs and /jobs. Never aiohttp's own text: it carries the full
    URL (a webhook's path or query is often its credential) and bytes the receiver sent."""
    if isinstance(exc, TimeoutError):  # aiohttp's timeouts are TimeoutErrors too
        return f"no answer within {WEBHOOK_TIMEOUT_SECONDS:g}s"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect ({exc.os_error.strerror or type(exc.os_error).__name__})"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the receiver closed the connection"
    if isinstance(exc, aiohttp.ClientResponseError):
        return "the receiver's answer is not valid HTTP"
    return f"{type(exc).__name__} while sending"
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
    """One POST per signal, never following a redirect. The body is signed together with a
    timestamp, and the signal id rides in a header."""

    def __init__(self, session: aiohttp.ClientSession, url: str, secret: str | None,
                 fmt: str) -> None:
        # Logged and shown in /jobs: the origin only, as a webhook's path is often its secret.
        self.name = f"webhook {URL(url).origin()}"
        self._session, self._url, self._format = session, url, fmt
        self._secret = secret.encode() if secret else None
        self._limit = asyncio.Semaphore(WEBHOOK_CONCURRENCY)
        self._unreachable = False
        self.last_error: str | None = None

    def _body(self, signal: dict[str, Any]) -> bytes:
        return orjson.dumps(slack_message(signal) if self._format == "slack" else signal)

    def _headers(self, signal: dict[str, Any], body: bytes) -> dict[str, str]:
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: timestamp,
                   SIGNAL_ID_HEADER: header_value(signal["signal_id"])}
        if self._secret:
            # Over `timestamp.body`: a receiver that checks the timestamp is recent cannot be
            # fed a captured request again later.
            signed = timestamp.encode() + b"." + body
            digest = hmac.new(self._secret, signed, hashlib.sha256).hexdigest()
            headers[SIGNATURE_HEADER] = f"sha256={digest}"
        return headers

    async def _post(self, signal: dict[str, Any], deadline: float) -> bool:
        async with self._limit:
            # The receiver was found down (the run waits for the next one), or the run is out
            # of time: the signal stays for the next run.
            if self._unreachable or time.monotonic() >= deadline:
                return False
            try:
                body = self._body(signal)
                # A redirect would re-send the signal and its signature elsewhere, or count a
                # 2xx from another host as delivered: a 3xx is a failed delivery.
                async with self._session.post(
                        self._url, data=body, headers=self._headers(signal, body),
                        allow_redirects=False,
                        timeout=aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT_SECONDS)) as response:
                    if 200 <= response.status < 300:
                        return True
                    self.last_error = f"HTTP {response.status}" + (
                        " (redirects are not followed)" if 300 <= response.status < 400 else "")
            except (aiohttp.ClientConnectionError, TimeoutError) as exc:
                self._unreachable = True
                self.last_error = describe_failure(exc)
            except Exception as exc:  # this signal alone (a bad answer, an unsendable body)
                self.last_error = describe_failure(exc)
        return False

    async def deliver(self, signals: list[dict[str, Any]], deadline: float) -> set[str]:
        self.last_error = None
        self._unreachable = False
        outcomes = await asyncio.gather(*(self._post(signal, deadline) for signal in signals))
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

    async def deliver(self, signals: list[dict[str, Any]], deadline: float) -> set[str]:
        self.last_error = None
        data = b"".join(orjson.dumps(signal) + b"\n" for signal in signals)
        try:
            await asyncio.to_thread(self._append, data)
        except OSError as exc:
            self.last_error = str(exc)
            return set()
        return {signal["signal_id"] for signal in signals}


@dataclass
class _Progress:
    """What one forwarding run did so far."""

    shipped: int = 0
    missed: int = 0  # signals a sink failed to take
    out_of_time: bool = False  # the run stopped at MAX_RUN_SECONDS
    errors: dict[str, str] = field(default_factory=dict)  # sink name -> its last failure

    def failure(self, retry: str) -> str:
        parts = []
        if self.missed:
            parts.append(f"{self.missed} signal(s) not delivered")
        if self.out_of_time:
            parts.append(f"the run took longer than {MAX_RUN_SECONDS:g}s and stopped after "
                         f"shipping {self.shipped} signal(s)")
        errors = "; ".join(f"{name}: {error}" for name, error in self.errors.items())
        return "; ".join(parts) + (f" ({errors})" if errors else "") + f"; {retry}"


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
                 base_delay: float, forward_silenced: bool = False) -> None:
        self.store = store
        self.sinks = sinks
        self.severities = at_or_above(min_severity)
        # Signals an active silence matched are kept quiet downstream too, unless asked.
        self.forward_silenced = forward_silenced
        self._base_delay = base_delay
        self.consecutive_failures = 0
        self._retry_at = 0.0
        # Where the next run's scan goes on, when not from the stored position, and the
        # position held just before a signal that was not delivered (see _ship).
        self._resume_after: ForwardPosition | None = None
        self._held: ForwardPosition | None = None

    @property
    def retry_in(self) -> float:
        return max(0.0, self._retry_at - time.monotonic())

    async def run(self) -> str:
        if not self.sinks:
            return "no sink configured"
        if self.retry_in > 0:
            raise JobSkipped(f"backing off for {self.retry_in:.1f}s after "
                             f"{self.consecutive_failures} failure(s)")
        progress = _Progress()
        try:
            # The deadline ends a run within one webhook timeout of it; this net is for a sink
            # that hangs anyway.
            async with asyncio.timeout(MAX_RUN_SECONDS + 2 * WEBHOOK_TIMEOUT_SECONDS) as net:
                whole = await self._ship(progress, time.monotonic() + MAX_RUN_SECONDS)
        except TimeoutError:
            if not net.expired():
                raise
            progress.out_of_time, whole = True, False
        if progress.out_of_time or progress.missed:
            # A run that shipped nothing found the sinks down: back off. One that shipped
            # some failed on particular signals or on time: try again at the usual pace.
            self._failed(back_off=not progress.shipped)
            raise DeliveryError(progress.failure(f"retrying in {self.retry_in:.1f}s"))
        if whole:
            self.consecutive_failures = 0
            return f"shipped {progress.shipped} signal(s)"
        return (f"shipped {progress.shipped} signal(s); an earlier one that failed is retried "
                "when the scan starts over")

    async def _ship(self, progress: _Progress, deadline: float) -> bool:
        """Hand unshipped signals to every sink, batch by batch, recording what was delivered;
        True when the run started from the stored position (so it tried every waiting signal).

        A signal that was not delivered keeps the stored position (where the next run starts)
        just before it, so it is retried; the scan still goes on past it, in this run and in
        the next ones (from `_resume_after`), so it never holds back the signals after it.
        """
        after = self._resume_after
        advance = after is None  # may this run move the stored position forward?
        started_at_position = advance
        for _ in range(MAX_BATCHES_PER_RUN):
            if time.monotonic() >= deadline:
                progress.out_of_time = True
                break
            batch = await self.store.unshipped(BATCH_SIZE, after=after)
            wanted = [s for s in batch.signals if s["severity"] in self.severities
                      and (self.forward_silenced or s["silence_id"] is None)]
            delivered = {s["signal_id"] for s in wanted}
            for sink in self.sinks:
                if delivered:
                    delivered &= await sink.deliver(
                        [s for s in wanted if s["signal_id"] in delivered], deadline)
                    if sink.last_error:
                        progress.errors[sink.name] = sink.last_error
            missed, before_first_missed, previous = 0, None, batch.start
            for signal, position in zip(batch.signals, batch.positions, strict=True):
                if (signal["severity"] in self.severities
                        and signal["signal_id"] not in delivered):
                    missed += 1
                    if before_first_missed is None:
                        before_first_missed = previous
                previous = position
            if advance and before_first_missed is not None:
                self._held, advance = before_first_missed, False
            # Positions never move back: the held one leaves the stored position where it is.
            await self.store.mark_shipped(sorted(delivered),
                                          batch.end if advance else self._held)
            progress.shipped += len(delivered)
            if time.monotonic() >= deadline and missed:
                progress.out_of_time = True  # what the deadline left unsent is not a failure
            else:
                progress.missed += missed
            after = batch.end
            self._resume_after = after if batch.more and not advance else None
            if not batch.more:
                break
        return started_at_position

    def collector(self) -> Collector:
        return _ForwarderCollector(self)

    def _failed(self, *, back_off: bool) -> None:
        self.consecutive_failures += 1
        if back_off:
            delay = min(self._base_delay * 2 ** (self.consecutive_failures - 1),
                        MAX_BACKOFF_SECONDS)
            self._retry_at = time.monotonic() + delay


class _ForwarderCollector(Collector):
    def __init__(self, forwarder: Forwarder) -> None:
        self._forwarder = forwarder

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "santamon_forward_consecutive_failures",
            "Forwarding attempts that failed in a row; the forwarder backs off meanwhile.",
            value=self._forwarder.consecutive_failures)
