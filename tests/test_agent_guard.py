"""Whom an agent key may speak for, in-process with a clock the test moves: misuse alerts stay
bounded when a stolen key names a new host every time, and a key's budget of new agent ids
refills over the hour."""

from __future__ import annotations

from santamon.app import create_app

from .helpers import AGENT, ANALYST, FakeClock, add_keys, make_signal, sample


async def misuse_alerts(client) -> list[dict]:
    response = await client.get("/signals?rule_id=AGENT-KEY-MISUSE&status=all&limit=1000",
                                headers=ANALYST)
    return (await response.json())["signals"]


async def test_a_key_naming_a_new_host_every_time_raises_a_bounded_number_of_alerts(
        aiohttp_client, settings):
    keys = await add_keys(settings.db_path)
    clock = FakeClock()
    client = await aiohttp_client(create_app(settings, clock=clock))
    bound = {"X-API-Key": keys.bound}
    for n in range(30):
        response = await client.post("/ingest", json=make_signal(f"x{n}", host_id=f"victim-{n}"),
                                     headers=bound)
        assert response.status == 403
    assert len(await misuse_alerts(client)) == 20
    clock.advance(3600)  # the next hour: alerts again
    response = await client.post("/agents/heartbeat", headers=bound,
                                 json={**sample("heartbeat"), "agent_id": "victim-0"})
    assert response.status == 403
    assert len(await misuse_alerts(client)) == 21
    # Its own host was never refused.
    response = await client.post("/ingest", json=make_signal("own"), headers=bound)
    assert response.status == 200


async def test_the_budget_of_new_agents_refills_over_the_hour(aiohttp_client, settings):
    clock = FakeClock()
    client = await aiohttp_client(create_app(settings.model_copy(
        update={"new_agents_per_hour": 4}), clock=clock))

    async def beat(agent_id: str) -> int:
        response = await client.post("/agents/heartbeat", headers=AGENT,
                                     json={**sample("heartbeat"), "agent_id": agent_id})
        return response.status

    assert [await beat(f"a{n}") for n in range(5)] == [200, 200, 200, 200, 503]
    clock.advance(900)  # a quarter of the hour: one more
    assert [await beat("a4"), await beat("a5")] == [200, 503]
    assert await beat("a0") == 200
    # A batch needing more new ids than are left is refused whole; nothing of it is stored.
    clock.advance(1800)
    response = await client.post("/ingest", headers=AGENT, json=[
        make_signal(f"b{n}", host_id=f"batch-{n}") for n in range(3)])
    assert response.status == 503
    response = await client.get("/signals/b0", headers=ANALYST)
    assert response.status == 404
