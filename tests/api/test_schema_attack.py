"""schemathesis against our own OpenAPI schema, on the fake engine over real HTTP: generated
requests, valid and not, on every operation. No response may be a 500, and each must match the
schema documented for its status (errors: OpenAI's body). `SCHEMA_EXAMPLES` sets the examples
per operation (CI: 15)."""
from __future__ import annotations

import os

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance,
                                               response_schema_conformance,
                                               status_code_conformance)

from app.engine.fake import FakeEngine
from tests.live_server import LiveServer

EXAMPLES = int(os.environ.get("SCHEMA_EXAMPLES", "15"))


# Started at collection (schemathesis builds its tests from the live schema); stopped below.
# Short fetch limits: generated URLs point anywhere; private targets are refused.
SERVER = LiveServer(FakeEngine(), fetch_timeout_s=2, fetch_connect_timeout_s=1,
                    max_concurrent_requests=64).__enter__()
schema = schemathesis.openapi.from_url(SERVER.url + "/openapi.json")


def teardown_module():
    SERVER.__exit__(None, None, None)


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_500_and_responses_match_the_schema(case):
    case.call_and_validate(checks=[not_a_server_error, status_code_conformance,
                                   content_type_conformance, response_schema_conformance],
                           timeout=30)
