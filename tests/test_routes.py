"""The route table is the truth: every route is served, documented and guarded with the role
it declares, proven by calling each one with no key, an agent key and the analyst key."""

from __future__ import annotations

import re

import pytest

from santamon.api.auth.keys import Role
from santamon.api.routes import ROUTES, openapi_document

from .helpers import AGENT, ANALYST

NO_KEY, WRONG_ROLE = 401, 403


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
async def test_each_route_enforces_the_role_it_declares(client, route):
    async def outcome(headers: dict[str, str]) -> int | str:
        """401 or 403 when authentication refused the call, else "allowed" (whatever the
        handler then answered: a 404 for the made-up id, a 422 for the empty body...)."""
        response = await client.request(route.method, concrete(route.path), headers=headers,
                                        json={} if route.body else None)
        refused = response.status == 403 or (response.status == 401
                                             and "WWW-Authenticate" in response.headers)
        return response.status if refused else "allowed"

    anonymous, agent, analyst = [await outcome(h) for h in ({}, AGENT, ANALYST)]
    expected = {Role.PUBLIC: ("allowed", "allowed"), Role.AGENT: (NO_KEY, "allowed"),
                Role.ANALYST: (NO_KEY, WRONG_ROLE)}[route.role]
    assert (anonymous, agent, analyst) == (*expected, "allowed")


def test_the_document_describes_every_route_with_its_role():
    paths = openapi_document()["paths"]
    documented = {(method.upper(), path) for path, ops in paths.items() for method in ops}
    assert documented == {(route.method, route.path) for route in ROUTES}
    for route in ROUTES:
        security = paths[route.path][route.method.lower()]["security"]
        schemes = {name for requirement in security for name in requirement}
        expected = {Role.PUBLIC: set(), Role.AGENT: {"apiKey", "bearer"},
                    Role.ANALYST: {"apiKey", "bearer", "consoleSession"}}[route.role]
        assert schemes == expected, route.path
