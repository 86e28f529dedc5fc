"""The route table is the truth: every route is served, documented and guarded with the access
it declares, proven by calling each one with no key, a shared agent key, a bound agent key, a
viewer's key, an analyst's key and the admin key."""

from __future__ import annotations

import re

import pytest

from santamon.api.auth.keys import Access
from santamon.api.routes import ROUTES, openapi_document
from santamon.app import create_app

from .helpers import AGENT, ANALYST, add_keys

NO_KEY, WRONG_ROLE = 401, 403
ALLOWED = "allowed"
CALLERS = ("anonymous", "agent", "bound agent", "viewer", "analyst", "admin")
# What each caller gets, by the access a route declares.
EXPECTED = {
    Access.PUBLIC: (ALLOWED, ALLOWED, ALLOWED, ALLOWED, ALLOWED, ALLOWED),
    Access.AGENT: (NO_KEY, ALLOWED, ALLOWED, WRONG_ROLE, WRONG_ROLE, ALLOWED),
    Access.READ: (NO_KEY, WRONG_ROLE, WRONG_ROLE, ALLOWED, ALLOWED, ALLOWED),
    Access.WRITE: (NO_KEY, WRONG_ROLE, WRONG_ROLE, WRONG_ROLE, ALLOWED, ALLOWED),
    Access.KEYS: (NO_KEY, WRONG_ROLE, WRONG_ROLE, WRONG_ROLE, ALLOWED, ALLOWED),
}
WRITES = [route for route in ROUTES if route.access in (Access.WRITE, Access.KEYS)]


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


@pytest.fixture
async def client(aiohttp_client, settings):
    keys = await add_keys(settings.db_path)
    client = await aiohttp_client(create_app(settings))
    client.keys = keys
    return client


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
async def test_each_route_enforces_the_access_it_declares(client, route):
    async def outcome(headers: dict[str, str]) -> int | str:
        """401 or 403 when authentication refused the call, else "allowed" (whatever the
        handler then answered: a 404 for the made-up id, a 422 for the empty body...)."""
        response = await client.request(route.method, concrete(route.path), headers=headers,
                                        json={} if route.body else None)
        refused = response.status == 403 or (response.status == 401
                                             and "WWW-Authenticate" in response.headers)
        return response.status if refused else ALLOWED

    keys = client.keys
    headers = [{}, AGENT, {"X-API-Key": keys.bound}, {"Authorization": f"Bearer {keys.viewer}"},
               {"X-API-Key": keys.analyst}, ANALYST]
    outcomes = tuple([await outcome(h) for h in headers])
    assert dict(zip(CALLERS, outcomes, strict=True)) == dict(
        zip(CALLERS, EXPECTED[route.access], strict=True))


def test_a_viewer_may_change_nothing():
    """Every route that changes something needs more than reading; the matrix above shows a
    viewer's key gets 403 on each of them."""
    assert {(route.method, route.path) for route in WRITES} >= {
        ("PATCH", "/signals/{signal_id}/status"), ("POST", "/signals/status"),
        ("POST", "/silences"), ("DELETE", "/silences/{silence_id}"),
        ("POST", "/agent-keys"), ("POST", "/agent-keys/{key_id}/rotate"),
        ("DELETE", "/agent-keys/{key_id}")}
    for route in ROUTES:
        if route.method in ("POST", "PATCH", "PUT", "DELETE") and route.access is Access.READ:
            raise AssertionError(f"{route.method} {route.path} changes something but needs "
                                 "only reading")


def test_silences_and_groups_are_read_with_read_and_changed_with_write():
    """Triage by group or filter is `POST /signals/status`, a write like triage by ids."""
    access = {(route.method, route.path): route.access for route in ROUTES}
    assert {key: access[key] for key in [
        ("GET", "/signals/groups"), ("GET", "/silences"), ("GET", "/silences/preview"),
        ("POST", "/silences"), ("DELETE", "/silences/{silence_id}"),
        ("POST", "/signals/status")]} == {
        ("GET", "/signals/groups"): Access.READ, ("GET", "/silences"): Access.READ,
        ("GET", "/silences/preview"): Access.READ, ("POST", "/silences"): Access.WRITE,
        ("DELETE", "/silences/{silence_id}"): Access.WRITE,
        ("POST", "/signals/status"): Access.WRITE}


def test_the_document_describes_every_route_with_its_access():
    paths = openapi_document()["paths"]
    documented = {(method.upper(), path) for path, ops in paths.items() for method in ops}
    assert documented == {(route.method, route.path) for route in ROUTES}
    for route in ROUTES:
        operation = paths[route.path][route.method.lower()]
        schemes = {name for requirement in operation["security"] for name in requirement}
        expected = {Access.PUBLIC: set(), Access.AGENT: {"apiKey", "bearer"}}.get(
            route.access, {"apiKey", "bearer", "consoleSession"})
        assert schemes == expected, route.path
        if route.access not in (Access.PUBLIC, Access.AGENT):
            assert operation["x-santamon-access"] == route.access.value
            assert "403" in operation["responses"]
