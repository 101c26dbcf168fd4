"""schemathesis against our own OpenAPI schema, on the fake engine over real HTTP: generated
requests, valid and schema-breaking, on every operation. No response may be a 500, and each must match the
schema documented for its status (errors: OpenAI's body). `SCHEMA_EXAMPLES` sets the examples
per operation (CI: 30)."""
from __future__ import annotations

import os
from collections import Counter

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (content_type_conformance,
                                               response_schema_conformance,
                                               status_code_conformance)

from app.engine.fake import FakeEngine
from tests.live_server import LiveServer

EXAMPLES = int(os.environ.get("SCHEMA_EXAMPLES", "30"))


# Started at collection (schemathesis builds its tests from the live schema); stopped below.
# Short fetch limits: generated URLs point anywhere; private targets are refused.
SERVER = LiveServer(FakeEngine(), fetch_timeout_s=2, fetch_connect_timeout_s=1,
                    max_concurrent_requests=64).__enter__()
# Valid requests and requests that break the schema on purpose (wrong types, missing fields...).
schema = schemathesis.openapi.from_url(
    SERVER.url + "/openapi.json",
    config=SchemathesisConfig.from_dict({"generation": {"mode": "all"}}))


STATUSES: Counter = Counter()


@schema.hook
def map_body(ctx, body):
    # A random `model` is a 404 before anything else is looked at: name the served model in
    # three bodies of four, so that generated requests reach validation, media and the engine.
    if isinstance(body, dict) and isinstance(body.get("model"), str) and len(body["model"]) % 4:
        body["model"] = "tiny"
    return body


def teardown_module():
    SERVER.__exit__(None, None, None)
    print(f"\nschemathesis: {sum(STATUSES.values())} requests, by status and code: "
          f"{dict(STATUSES.most_common())}")


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_500_and_responses_match_the_schema(case):
    r = case.call_and_validate(checks=[not_a_server_error, status_code_conformance,
                                       content_type_conformance, response_schema_conformance],
                               timeout=30)
    try:
        code = (r.json().get("error") or {}).get("code")
    except (ValueError, AttributeError):
        code = None
    STATUSES[f"{r.status_code} {code}" if code else str(r.status_code)] += 1
