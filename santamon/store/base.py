"""The storage contract: what the HTTP layer and the jobs may ask of any database engine.

The store speaks its own small types, never the HTTP layer's models. Timestamps cross it in
the stored UTC form (`timeutil.format_utc`), whose string order is time order. Rows come back
as plain dicts ready for JSON, with stored JSON documents (tags, context) as `orjson.Fragment`
so they are never decoded and re-encoded on the way out. Cursors and forwarding positions are
the store's own: callers pass them back, never build or take them apart.

Every failure of the database itself (disk full, I/O error, locked, closed, unreachable)
surfaces as `StoreUnavailable`, which the API answers with 503 and `Retry-After`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..domain.agents import SilentAgent
from ..domain.heartbeats import Heartbeat, HistoryRule, KeptBeat
from ..domain.keys import ADMIN
from ..domain.signals import NewSignal
from ..domain.silences import Matchers, NewSilence, Silence

__all__ = [
    "AgentFilter", "AgentHistory", "AgentKey", "AlertBuilder", "AnalystKey", "ConnectionProblem",
    "ConsoleSession", "ForwardBatch", "ForwardPosition", "GroupPage", "Heartbeat", "HistoryRule",
    "InvalidCursor", "JobRecord", "JobRun", "KeptBeat", "KeyUse", "Matchers", "NameTaken",
    "NewAgentKey", "NewAnalystKey", "NewSignal", "NewSilence", "SchemaTooNew", "SignalFilter",
    "SignalPage", "Silence", "StatusResult", "Store", "StoreUnavailable", "SummaryBuilder",
]


class StoreUnavailable(Exception):
    """The database cannot serve this request right now; the caller may retry later."""


class InvalidCursor(ValueError):
    """A cursor this store did not hand out (or from an older version of it)."""


class SchemaTooNew(RuntimeError):
    """The database was written by a newer server."""


class NameTaken(ValueError):
    """A person's key is asked for under a name that already has one that is not revoked."""


@dataclass(frozen=True, slots=True)
class SignalFilter:
    """Which signals a page holds; every given condition must hold. Newest first by `ts`."""

    status: str | None = "open"  # None: any status
    severities: tuple[str, ...] | None = None
    host_id: str | None = None
    rule_id: str | None = None
    search: str | None = None  # in the title or the rule id, case-insensitive
    since: str | None = None  # inclusive
    until: str | None = None  # exclusive
    silenced: bool | None = False  # False: not silenced, True: only silenced, None: either
    limit: int = 100
    cursor: str | None = None  # `next_cursor` of the previous page


@dataclass(frozen=True, slots=True)
class AgentFilter:
    status: str | None = None  # "active", "stale", or None for both
    since: str | None = None  # last seen at or after
    limit: int = 200


@dataclass(slots=True)
class AgentHistory:
    agent: dict[str, Any]  # as `list_agents` shows it
    beats: list[KeptBeat]  # oldest first


@dataclass(slots=True)
class SignalPage:
    signals: list[dict[str, Any]]
    next_cursor: str | None


@dataclass(slots=True)
class GroupPage:
    """Groups of repeats, newest last-seen first. Each is a dict: `rule_id`, `host_id`,
    `count`, `first_ts`, `last_ts`, `severity` (the highest), `by_status` ({status: n}),
    `silenced` (how many of them), `sample_signal_id` (the newest)."""

    groups: list[dict[str, Any]]
    next_cursor: str | None


@dataclass(slots=True)
class StatusResult:
    updated: int  # signals found
    not_found: list[str] = field(default_factory=list)
    changed: int = 0  # signals whose status changed


# Where the forwarder stands: the store's own value, which callers only pass back (and may
# compare for equality), never build or order.
ForwardPosition = Hashable


@dataclass(slots=True)
class ForwardBatch:
    """Signals not yet shipped, oldest first, with where the forwarder stands.

    `positions[i]` is the position to record once `signals[i]` and everything before it are
    dealt with; `start` is where the scan began and `end` how far it reached (every signal up
    to `end` that is not listed was already shipped).
    """

    signals: list[dict[str, Any]]
    positions: list[ForwardPosition]
    start: ForwardPosition
    end: ForwardPosition
    more: bool  # the scan stopped at its limit: there may be more after `end`


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    """A signed-in console: only a hash of its token is ever stored."""

    token_hash: bytes
    actor: str  # who signed in, for the history of what they do
    created_at: str
    expires_at: str
    role: str = ADMIN  # domain.keys: admin, analyst or viewer
    key_id: str | None = None  # the person's key it was opened with; None for the admin key


# -- keys: only a SHA-256 of each is stored (domain.keys.digest) ------------------------------

@dataclass(frozen=True, slots=True)
class NewAgentKey:
    key_id: str
    key_hash: bytes
    host_id: str  # the one host it may send for
    created_by: str


@dataclass(frozen=True, slots=True)
class AgentKey:
    """An agent key as stored. Valid until revoked, or until `expires_at` once it was
    rotated (the grace period in which the agent still holds the old one)."""

    key_id: str
    key_hash: bytes
    host_id: str
    created_at: str
    created_by: str
    expires_at: str | None = None
    revoked_at: str | None = None
    revoked_by: str | None = None
    replaces: str | None = None  # the key this one rotated
    last_used_at: str | None = None
    last_used_from: str | None = None  # client address


@dataclass(frozen=True, slots=True)
class NewAnalystKey:
    key_id: str
    key_hash: bytes
    name: str  # the person, as the history records them
    role: str  # domain.keys.PERSON_ROLES
    created_by: str


@dataclass(frozen=True, slots=True)
class AnalystKey:
    key_id: str
    key_hash: bytes
    name: str
    role: str
    created_at: str
    created_by: str
    revoked_at: str | None = None
    revoked_by: str | None = None


@dataclass(frozen=True, slots=True)
class KeyUse:
    """An agent key's latest use, as the service saw it (recorded in batches, not per request)."""

    key_id: str
    at: str
    address: str | None


@dataclass(frozen=True, slots=True)
class ConnectionProblem:
    """Problems of one kind (domain.problems.KINDS) from one client address in one hour, as
    counted by one process since its last write."""

    hour: str  # the hour's start (domain.problems.hour_of)
    client: str  # the client's address
    kind: str
    count: int
    last_seen: str
    detail: str  # what the latest of them was about


@dataclass(frozen=True, slots=True)
class JobRun:
    """One run of a background job, as it finished."""

    job_id: str
    instance: str  # the process that ran it (config.instance_name)
    started_at: str
    outcome: str  # "ok", "failed" or "skipped"
    message: str | None
    duration_seconds: float


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A job's last run, and its runs counted over every process that ran it."""

    last: JobRun
    runs: int
    failures: int
    consecutive_failures: int


# Builds the alert for an agent found silent, inside the transaction that marks it stale:
# (the agent's last heartbeat, the time it is marked) -> the signal to insert, or None while
# a maintenance window holds it.
AlertBuilder = Callable[[SilentAgent, str], NewSignal | None]
# Builds one alert for all the agents one check alerts for, or None to raise one per agent.
SummaryBuilder = Callable[[list[SilentAgent], str], NewSignal | None]


class Store(Protocol):
    # -- lifetime ---------------------------------------------------------------------------

    async def open(self) -> None:
        """Create or upgrade the schema and start serving. On failure, leaves nothing open."""

    async def close(self) -> None:
        """Commit what was accepted, then release every connection."""

    # -- ingest -----------------------------------------------------------------------------

    async def insert_signals(self, signals: list[NewSignal]) -> list[bool]:
        """Store new signals as `open`; per item, True when stored and False when its id
        existed (the first write of an id wins, in one call or across calls).

        All of them or none; returns only after they are durably committed.
        """

    async def record_heartbeats(self, beats: list[Heartbeat], history: HistoryRule) -> None:
        """Apply heartbeats, in one transaction; returns once it is committed.

        A heartbeat applies only when it was received after the agent's latest one stored
        (several servers may share the database, and none may move an agent back). It then
        becomes the agent's latest (with how it authenticated, unless None) and makes it
        active; an unresolved stale alert of the agent gets a reconnection note
        (`domain.agents.reconnection_note`); and the agent's history (the `heartbeats` table)
        keeps it when `history.reasons` gives a reason, stored with it
        (`domain.heartbeats.encode_reasons`), and on a RETURN keeps the agent's previous
        latest heartbeat too, as LAST. Heartbeats of one agent apply in order of receipt.
        """

    # -- triage -----------------------------------------------------------------------------

    async def set_status(self, signal_ids: list[str], status: str, note: str | None,
                         actor: str) -> StatusResult:
        """Change the status of these signals in one transaction, recording history (a note
        on an unchanged status is recorded too)."""

    async def set_status_matching(self, query: SignalFilter, status: str, note: str | None,
                                  actor: str, limit: int) -> tuple[int, bool]:
        """Change the status of up to `limit` signals that match `query` (its limit and cursor
        aside) and were stored when the call began, recording history like `set_status`.

        Done in many small transactions, so ingest keeps flowing while a large group is
        triaged; returns (how many changed, whether more matching signals are left)."""

    async def list_signals(self, query: SignalFilter) -> SignalPage:
        """Raises InvalidCursor for a cursor it did not hand out."""

    async def signal_groups(self, query: SignalFilter) -> GroupPage:
        """The signals `query` matches, one entry per (rule, host), newest last-seen first,
        `query.limit` groups per page. Raises InvalidCursor for a cursor it did not hand
        out (a signal page's cursor included)."""

    async def get_signal(self, signal_id: str) -> dict[str, Any] | None:
        """The signal with its `history` (oldest first), `shipped_at`, and the `silence` it
        is marked with (a `Silence`, or None)."""

    async def list_agents(self, query: AgentFilter) -> list[dict[str, Any]]:
        """Stale agents first, then the most recently seen."""

    async def agent_history(self, agent_id: str, since: str, until: str) -> AgentHistory | None:
        """The agent and the heartbeats its history kept that were received in
        [since, until), with the last one kept before `since` and the first at or after
        `until` (how the window begins and ends); None for an agent never heard from."""

    async def stats(self) -> dict[str, Any]:
        """Totals; `open_by_severity` leaves silenced signals out, `silenced_open` counts
        them."""

    async def signal_volume(self, since: str, until: str,
                            bucket_seconds: int) -> dict[int, dict[str, int]]:
        """Signals with `since <= ts < until` counted per severity and bucket of event time.

        Buckets are aligned to multiples of `bucket_seconds` since the epoch and keyed by their
        start in epoch seconds; empty buckets are absent.
        """

    async def first_signal_ts(self, not_before: str | None = None) -> str | None:
        """The earliest event time stored (at or after `not_before`), or None."""

    # -- operations -------------------------------------------------------------------------

    async def check_writable(self) -> None:
        """Raise StoreUnavailable unless a signal could be committed now."""

    async def size_bytes(self) -> int:
        """What the database takes on disk."""

    # -- maintenance (santamon/jobs) --------------------------------------------------------

    async def mark_stale_agents(self, cutoff: str, alert: AlertBuilder,
                                summary: SummaryBuilder | None = None) -> list[str]:
        """Mark active agents last seen before `cutoff` stale, and insert the alerts for them
        in the same transaction: the one alert `summary` builds for all the agents alerted,
        or else the alert built for each. An agent whose alert is held (the builder returned
        None) is in neither, and is asked for again at every later call while it stays
        stale, until the builder gives one; a heartbeat ends that. A silenced alert is stored
        on its own (`common.stale_alerts`). Returns the agents marked or alerted."""

    async def prune_heartbeats(self, cutoff: str, limit: int) -> int:
        """Delete up to `limit` heartbeats of the history received before `cutoff`, keeping
        each agent's latest; returns how many went."""

    async def prune_resolved_signals(self, cutoff: str, limit: int) -> int:
        """Delete up to `limit` resolved signals older than `cutoff` with their history and
        shipped rows; returns how many went."""

    async def compact(self) -> None:
        """Give space back to the engine and refresh the planner's statistics."""

    async def unshipped(self, limit: int,
                        after: ForwardPosition | None = None) -> ForwardBatch:
        """Up to `limit` signals after the recorded position (or after `after`, a batch's
        `end`: a scan going on past a signal that could not be delivered) that are not in
        `shipped`.

        A position only ever covers signals whose storing can no longer be followed by the
        commit of a signal before them: a signal committed after a later one (concurrent
        transactions commit in any order) still comes after the position, so recording a
        batch's positions never skips a signal, and never offers one twice.
        """

    async def mark_shipped(self, signal_ids: list[str], position: ForwardPosition) -> None:
        """Record these signals as shipped and everything up to `position` (one of a batch's
        `start` or `positions`) as dealt with; a position never moves back."""

    async def forward_backlog(self, severities: tuple[str, ...], *,
                              include_silenced: bool = True) -> int:
        """Signals of these severities after the recorded position and not shipped (silenced
        ones too unless told otherwise)."""

    # -- silences ---------------------------------------------------------------------------

    async def create_silence(self, silence: NewSilence, resolve_matching: bool) -> tuple[
            Silence, int]:
        """Store a silence; with `resolve_matching`, resolve in the same transaction every
        open signal its matchers match, each with a history note naming the silence (by its
        creator). Returns the silence and how many signals were resolved."""

    async def count_open_matching(self, matchers: Matchers) -> int:
        """How many open signals these matchers match: what creating a silence with
        `resolve_matching` would resolve now."""

    async def expire_silence(self, silence_id: int, actor: str) -> Silence | None:
        """End an active silence now (an ended one stays as it was); None if there is no
        such silence. Silences are never deleted: they are the record."""

    async def list_silences(self, active_at: str | None = None,
                            limit: int = 1000) -> list[Silence]:
        """Silences, newest first; with `active_at`, only those active at that time."""

    async def silences_version(self) -> int:
        """A number that changes whenever a silence is created or expired, so a cache of
        the active silences (also another instance's) knows to reload."""

    # -- background jobs shared by several processes ---------------------------------------

    def job_lock(self, name: str) -> AbstractAsyncContextManager[bool]:
        """Whether this process runs job `name` now: yields True while it holds the job's
        lock, False while another process sharing the database holds it.

        A process keeps a lock it took between runs, until the store closes or the process
        dies, so each job runs once per interval across all processes rather than once per
        process; another process's next try then takes it. A lock whose hold can no longer
        be proven (its connection broke) counts as lost, and is taken afresh if it is free.
        Raises StoreUnavailable when the database cannot tell.
        """

    async def record_job_run(self, run: JobRun) -> None:
        """Keep this run as the job's last, and count it, for every process to report."""

    async def job_records(self) -> dict[str, JobRecord]:
        """Each job's last recorded run, by job id."""

    # -- agent connection problems ----------------------------------------------------------

    async def add_connection_problems(self, problems: list[ConnectionProblem]) -> None:
        """Add these counts to the stored ones of the same (hour, client, kind), in one
        transaction; the stored `last_seen` becomes the later of the two, with its detail.
        Several processes add their own counts, so nothing is ever overwritten."""

    async def connection_problems(self, since: str, limit: int) -> list[dict[str, Any]]:
        """Per client address and kind, over the hours starting at or after `since`: `client`,
        `kind`, `count` (summed), `last_seen` and the `detail` of the latest; the most
        recently seen first, at most `limit`."""

    async def prune_connection_problems(self, cutoff: str) -> int:
        """Delete the counts of hours that started before `cutoff`; returns how many went."""

    # -- console sessions -------------------------------------------------------------------

    async def create_session(self, session: ConsoleSession, keep: int) -> None:
        """Store a session, keeping at most `keep`: the ones that expire first go."""

    async def get_session(self, token_hash: bytes, now: str) -> ConsoleSession | None:
        """The session unless it does not exist or has expired by `now`."""

    async def delete_session(self, token_hash: bytes) -> None: ...

    async def prune_sessions(self, now: str) -> int:
        """Delete expired sessions; returns how many went."""

    # -- keys -------------------------------------------------------------------------------
    # Every change to keys (not their use) moves a version that instances sharing the database
    # poll, so each sees a new or revoked key within its polling interval.

    async def keys_version(self) -> int:
        """A number that changes whenever a key is created, rotated or revoked."""

    async def valid_keys(self, now: str) -> tuple[list[AgentKey], list[AnalystKey]]:
        """Every agent key and person's key neither revoked nor expired by `now`."""

    async def create_agent_keys(self, keys: list[NewAgentKey]) -> list[AgentKey]:
        """Store new agent keys, all or none, and return them as stored."""

    async def rotate_agent_key(self, key_id: str, new: NewAgentKey,
                               old_valid_until: str) -> AgentKey | None:
        """Store `new` for the host of the valid key `key_id` (`new.host_id` is ignored) and
        let the old one expire at `old_valid_until` (or earlier, if it already would), in one
        transaction. None (and nothing changed) when `key_id` is unknown, revoked or expired."""

    async def revoke_agent_key(self, key_id: str, actor: str) -> AgentKey | None:
        """Revoke the key now (kept for the record); a revoked key stays as it was. None when
        no key has this id."""

    async def list_agent_keys(self, host_id: str | None = None,
                              limit: int | None = None) -> list[AgentKey]:
        """Agent keys (of one host), revoked and expired ones too, newest first: all of them,
        or the first `limit`."""

    async def record_key_use(self, uses: list[KeyUse]) -> None:
        """Keep each key's latest use; an older use than the one stored changes nothing. Does
        not move `keys_version`."""

    async def create_analyst_key(self, key: NewAnalystKey) -> AnalystKey:
        """Store a person's key; NameTaken when that name has one not revoked."""

    async def list_analyst_keys(self) -> list[AnalystKey]:
        """Every person's key, revoked ones too, newest first."""

    async def revoke_analyst_key(self, key_id: str, actor: str) -> AnalystKey | None:
        """Revoke a person's key and end the console sessions opened with it, in one
        transaction. None when no key has this id."""

    async def known_agents(self, agent_ids: list[str]) -> set[str]:
        """Those of `agent_ids` that ever sent a heartbeat or a signal."""
