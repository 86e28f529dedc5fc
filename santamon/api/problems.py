"""Agent connection problems as the HTTP layer sees them: a wrong or revoked agent key, a key
used for another host, a failed TLS handshake (api/tls.py), an oversized context stored
shortened (views/ingest.py). Each is counted for the console's panel (jobs/problems.py); wrong
keys and failed handshakes are also logged as a WARNING, once per client address and period,
and counted in their metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl

import orjson
from aiohttp import hdrs, web

from ..domain.problems import KEY_MISUSE, TLS_FAILURE, WRONG_KEY, clean_detail, tls_failure
from .auth.keys import presented_key
from .auth.limiter import WarningLimiter, client_key
from .state import BODY_BUDGET, KEY_WARNINGS, METRICS, PROBLEMS

log = logging.getLogger(__name__)

# Of a request refused for its key, this much of the body is read (before any key is valid,
# so within the unauthenticated body budget) for what it claims to be: the agent writes
# `host_id` (signals) or `agent_id` (heartbeats) within its first hundred bytes.
CLAIM_PEEK_BYTES = 4096
CLAIM_PEEK_SECONDS = 1.0
_CLAIM = re.compile(rb'"(host_id|agent_id)"\s*:\s*"((?:[^"\\]|\\.){0,512}?)"')
MAX_CLAIM_CHARS = 255


def warn_once_per_period(limiter: WarningLimiter, client: str | None, reason: str,
                         message: str, fields: dict[str, object]) -> None:
    """Log `message` unless this client was warned about the same `reason` within the
    limiter's period; then say how many such were left out meanwhile."""
    left_out = limiter.allow(f"{client_key(client)} {reason}")
    if left_out is None:
        return
    fields = {"client": client, **fields}
    if left_out:
        fields["left_out"] = left_out  # the same from this address since the last warning
    log.warning(message, extra={"fields": fields})


async def wrong_agent_key(request: web.Request, throttled: bool) -> None:
    """An agent endpoint refused a request for its key (401, or 429 once the address failed
    too often): count it, and warn with what the body claimed to be."""
    reason = "rate_limited" if throttled else "invalid" if presented_key(request) else "missing"
    request.app[METRICS].agent_key_failures.labels(reason=reason).inc()
    claimed = None if throttled else await claimed_identity(request)
    what = {"invalid": "a wrong or revoked key", "missing": "no key",
            "rate_limited": "a failed key, throttled"}[reason]
    claim = f"claimed {claimed[0]} {claimed[1]}" if claimed else "no host id read"
    request.app[PROBLEMS].record(request.remote, WRONG_KEY,
                                 f"{request.method} {request.path} with {what} ({claim})")
    if not throttled:
        fields: dict[str, object] = {"path": request.path}
        if claimed:
            fields[f"claimed_{claimed[0]}"] = claimed[1]
        warn_once_per_period(request.app[KEY_WARNINGS], request.remote, reason,
                             "agent request refused: " + what, fields)


async def claimed_identity(request: web.Request) -> tuple[str, str] | None:
    """("host_id" or "agent_id", its value) from the start of the body, read within the
    budget for unauthenticated bodies and a short time; None if it cannot be had."""
    if not request.body_exists or request.headers.get(hdrs.EXPECT):
        return None  # a client waiting for `100 Continue` sends nothing more
    budget = request.app[BODY_BUDGET]
    if not budget.reserve(CLAIM_PEEK_BYTES):
        return None
    head = bytearray()
    try:
        with contextlib.suppress(TimeoutError, web.RequestPayloadError, ConnectionError):
            async with asyncio.timeout(CLAIM_PEEK_SECONDS):
                while len(head) < CLAIM_PEEK_BYTES and (chunk := await request.content.read(
                        CLAIM_PEEK_BYTES - len(head))):
                    head += chunk
                    if _CLAIM.search(head):
                        break
    finally:
        budget.release(CLAIM_PEEK_BYTES)
    match = _CLAIM.search(head)
    if match is None:
        return None
    try:
        value = orjson.loads(b'"' + match.group(2) + b'"')
    except orjson.JSONDecodeError:
        return None
    return match.group(1).decode(), clean_detail(value[:MAX_CLAIM_CHARS])


def record_key_misuse(request: web.Request, key_host: str, claimed_host: str) -> None:
    """A key bound to `key_host` was refused for naming `claimed_host` (the agent guard,
    auth/agents.py, calls this for each): counted for the console's agent connection problems
    panel, every time, where the guard's alert is raised once an hour."""
    request.app[PROBLEMS].record(
        request.remote, KEY_MISUSE, f"the key of {key_host} was used for {claimed_host}")


def tls_handshake_failed(app: web.Application, limiter: WarningLimiter, client: str | None,
                         error: ssl.SSLError) -> None:
    """A TLS handshake failed (api/tls.py): count it, and warn saying why."""
    reason, description = tls_failure(error.reason)
    app[METRICS].tls_handshake_failures.labels(reason=reason).inc()
    app[PROBLEMS].record(client, TLS_FAILURE, description)
    warn_once_per_period(limiter, client, reason, "TLS handshake failed: " + description,
                         {"reason": reason, "openssl": error.reason})
