"""Fuzz every documented operation of a real server from its own /openapi.json.

Bounded: a few examples per operation. Checks: never a 5xx, only documented status codes and
content types, and every response body matches its documented schema.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from santamon.api.models import SIGNAL_EXAMPLE
from santamon.api.routes import openapi_document

from .helpers import ANALYST, ServerProcess, make_signal

pytestmark = pytest.mark.e2e

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]
EXAMPLES_PER_OPERATION = 40


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    db = Path(tmp_path_factory.mktemp("schemathesis")) / "fuzz.db"
    proc = ServerProcess(db).start()
    with urllib.request.urlopen(proc.url + "/openapi.json", timeout=5) as response:
        assert json.load(response) == openapi_document()
    # Something to find, so reads and status changes also take their success paths.
    for n in range(3):
        request = urllib.request.Request(
            proc.url + "/ingest", data=json.dumps(make_signal(f"{n:032x}")).encode(),
            headers={**ANALYST, "Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=5).close()
    yield proc
    # The documented example (the agent's real payload) was sent in the explicit phase and
    # stored, with its Go timestamp normalised to UTC.
    request = urllib.request.Request(
        f"{proc.url}/signals/{SIGNAL_EXAMPLE['signal_id']}", headers=ANALYST)
    with urllib.request.urlopen(request, timeout=5) as response:
        assert json.load(response)["ts"] == "2026-11-03T22:22:07.120934551Z"
    assert proc.stop() == 0, proc.log()


# Loaded in-process so pytest can collect one test per operation before any server runs;
# the fixture checks that the server serves exactly this document.
schema = schemathesis.openapi.from_dict(openapi_document())


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
          phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck))
def test_every_operation_conforms_to_the_document(case, live_server):
    case.call_and_validate(base_url=live_server.url, headers=ANALYST, checks=CHECKS, timeout=10)
