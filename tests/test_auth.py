import pytest

from .helpers import AGENT, AGENT_KEY, AGENT_KEY_2, ANALYST, ANALYST_KEY, sample_bytes

ANALYST_ROUTES = [("GET", "/signals"), ("GET", "/signals/x"), ("GET", "/agents"),
                  ("GET", "/stats"), ("PATCH", "/signals/x/status"),
                  ("POST", "/signals/status")]


@pytest.mark.parametrize(("method", "path"), ANALYST_ROUTES)
async def test_reads_and_triage_need_a_key(client, method, path):
    response = await client.request(method, path, json={})
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "error" in await response.json()


@pytest.mark.parametrize(("method", "path"), ANALYST_ROUTES)
async def test_agent_key_is_forbidden_on_analyst_routes(client, method, path):
    response = await client.request(method, path, json={}, headers=AGENT)
    assert response.status == 403


@pytest.mark.parametrize("headers", [
    {"X-API-Key": "wrong-key-0123456789"}, {"Authorization": "Bearer wrong-key-0123456789"},
    {"Authorization": "Basic " + ANALYST_KEY}, {"X-API-Key": ""}])
async def test_wrong_credentials_are_401(client, headers):
    response = await client.post("/ingest", data=sample_bytes("signal-null-tags"),
                                 headers=headers)
    assert response.status == 401


@pytest.mark.parametrize("key", [AGENT_KEY, AGENT_KEY_2, ANALYST_KEY])
async def test_every_agent_key_and_the_analyst_key_may_ingest(client, key):
    response = await client.post("/ingest", data=sample_bytes("signal-null-tags"),
                                 headers={"X-API-Key": key})
    assert response.status == 200


@pytest.mark.parametrize("headers", [ANALYST, {"X-API-Key": ANALYST_KEY},
                                     {"authorization": f"bearer {ANALYST_KEY}"}])
async def test_analyst_key_in_either_header(client, headers):
    assert (await client.get("/signals", headers=headers)).status == 200


@pytest.mark.parametrize("path", ["/health", "/"])
async def test_public_routes(client, path):
    assert (await client.get(path)).status == 200


async def test_unknown_route_is_a_json_error(client):
    response = await client.get("/no/such/thing", headers=ANALYST)
    assert response.status == 404
    assert response.content_type == "application/json"
    response = await client.delete("/signals", headers=ANALYST)
    assert response.status == 405
    assert "Allow" in response.headers
