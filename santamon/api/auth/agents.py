"""Who an agent key may speak for: a bound key only for its own host, and any key for a
bounded number of new agent ids per hour.

A bound key naming another host is refused with 403 (a correct agent only ever names its own
host, so this is never a real agent's data), counted by client address for the console's
agent connection problems, and raises one AGENT-KEY-MISUSE alert per key, claimed host and
hour. A key bringing more new agent ids than allowed is answered 503 for the new ones only:
the agent retries a 5xx later, with backoff, and keeps the signal queued, while every agent
already known goes on as before.

Nothing here costs a store round trip in steady state: agents already seen are remembered, and
alerts already raised by this process are not raised again (their ids are deterministic, so
another process or instance raising the same one stores it once).
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from ... import timeutil
from ...domain.keys import misuse_alert, new_agents_alert
from ...domain.signals import NewSignal
from ...metrics import Metrics
from ...store import Store, StoreUnavailable
from ..responses import ApiError
from .keys import Caller

log = logging.getLogger(__name__)

HOUR = 3600.0
REMEMBERED_ALERTS = 10_000  # (key, claim, hour) already raised here; the oldest are forgotten
REMEMBERED_BUDGETS = 10_000  # keys with a budget in use; a forgotten one starts full again
# A stolen key can name a new host in every request: past this many claimed hosts per key and
# hour, misuse is still refused and counted but raises no further alert (per process).
MISUSE_ALERTS_PER_KEY_HOUR = 20


@dataclass
class _Budget:
    tokens: float
    updated: float  # seconds


# Told of every misuse refused, alerted or not: (the request, the key's host, the claimed host).
# The console's agent connection problems count them by client address (api/problems.py,
# given by the composition root: that module reads the app's state, which holds this guard).
MisuseSeen = Callable[[web.Request, str, str], None]


class AgentGuard:
    def __init__(self, store: Store, metrics: Metrics, clock: Callable[[], int], *,
                 new_agents_per_hour: int, on_misuse: MisuseSeen) -> None:
        self._store, self._metrics, self._clock = store, metrics, clock
        self._limit = new_agents_per_hour
        self._on_misuse = on_misuse
        self._known: set[str] = set()
        self._budgets: OrderedDict[str, _Budget] = OrderedDict()
        self._raised: OrderedDict[str, None] = OrderedDict()
        self._misuse_alerts: OrderedDict[tuple[str, int], int] = OrderedDict()

    async def admit(self, request: web.Request, caller: Caller, hosts: list[str],
                    what: str) -> None:
        """Let `caller` send data naming `hosts` (one per item, in order), or raise ApiError:
        403 for a host a bound key does not belong to, 503 for new agents over the limit."""
        if caller.host is not None:
            for index, host in enumerate(hosts):
                if host != caller.host:
                    await self._misuse(request, caller, host, what,
                                       index if len(hosts) > 1 else None)
        if self._limit:
            await self._count_new(request, caller, hosts)

    # -- a bound key naming another host ------------------------------------------------------

    async def _misuse(self, request: web.Request, caller: Caller, claimed: str, what: str,
                      index: int | None) -> None:
        assert caller.host is not None and caller.key_id is not None
        endpoint = request.path
        self._metrics.agent_key_misuse.labels(endpoint=endpoint).inc()
        self._on_misuse(request, caller.host, claimed)
        now_ns = self._clock()
        alert = misuse_alert(key_id=caller.key_id, key_host=caller.host, claimed_host=claimed,
                             client_address=request.remote, endpoint=endpoint,
                             now=timeutil.format_utc(now_ns), now_ns=now_ns)
        hour = (caller.key_id, now_ns // timeutil.HOUR_NS)
        raised = self._misuse_alerts.get(hour, 0)
        if alert.signal_id not in self._raised and raised < MISUSE_ALERTS_PER_KEY_HOUR:
            self._misuse_alerts[hour] = raised + 1
            if len(self._misuse_alerts) > REMEMBERED_BUDGETS:
                self._misuse_alerts.popitem(last=False)
            await self._raise_once(alert)
        where = f"item {index} of the batch" if index is not None else f"the {what}"
        raise ApiError(
            403, f"this key is bound to host {caller.host!r} but {where} names {claimed!r}"
                 + (" (a batch is refused whole)" if index is not None else ""),
            key_host=caller.host, claimed_host=claimed)

    # -- new agent ids ------------------------------------------------------------------------

    async def _count_new(self, request: web.Request, caller: Caller, hosts: list[str]) -> None:
        unseen = [host for host in dict.fromkeys(hosts) if host not in self._known]
        if not unseen:
            return
        # Once per agent and process: it may be known from before a restart, or from another
        # instance.
        self._known.update(await self._store.known_agents(unseen))
        new = [host for host in unseen if host not in self._known]
        if not new:
            return
        budget = self._budget(caller.key_label)
        if budget.tokens < len(new):
            self._metrics.new_agents_throttled.inc()
            now_ns = self._clock()
            await self._raise_once(new_agents_alert(
                key_label=caller.key_label, limit=self._limit, refused_host=new[0],
                client_address=request.remote, now=timeutil.format_utc(now_ns),
                now_ns=now_ns))
            wait = max(1, math.ceil((len(new) - budget.tokens) * HOUR / self._limit))
            raise ApiError(
                503, f"this key brought more than {self._limit} new agent ids within an hour; "
                     "new ones are refused for now (agents already known are not)",
                headers={"Retry-After": str(wait)}, retry_after=wait)
        budget.tokens -= len(new)
        self._known.update(new)

    def _budget(self, key: str) -> _Budget:
        now = self._clock() / 1e9
        budget = self._budgets.get(key)
        if budget is None:
            budget = self._budgets[key] = _Budget(float(self._limit), now)
            if len(self._budgets) > REMEMBERED_BUDGETS:
                self._budgets.popitem(last=False)
        else:
            refill = max(0.0, now - budget.updated) * self._limit / HOUR
            budget.tokens = min(float(self._limit), budget.tokens + refill)
            budget.updated = now
            self._budgets.move_to_end(key)
        return budget

    # -- alerts ---------------------------------------------------------------------------------

    async def _raise_once(self, alert: NewSignal) -> None:
        """Store the alert unless this process already did; a failure to store it does not
        change the answer, and the next refusal tries again."""
        if alert.signal_id in self._raised:
            return
        try:
            await self._store.insert_signals([alert])
        except StoreUnavailable as exc:
            log.warning("could not store the %s alert (%s); it is raised again on the next "
                        "refusal", alert.rule_id, exc)
            return
        log.warning("%s: %s", alert.rule_id, alert.title)
        self._raised[alert.signal_id] = None
        if len(self._raised) > REMEMBERED_ALERTS:
            self._raised.popitem(last=False)
