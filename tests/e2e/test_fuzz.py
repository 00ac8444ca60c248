"""Schemathesis fuzzes the real server from its own /openapi.json (a fixed seed, bounded examples).

Every documented operation gets examples, coverage (boundary and invalid values) and fuzzing
phases; the answers must never be 5xx, must have documented status codes, content types and
headers, match the documented schemas, and schema-violating requests must be refused (4xx).

Not checked: `positive_data_acceptance` (a schema-valid request must be accepted). JSON Schema
cannot say "a required column has a value at every row key" or "every column list has the same
length" (422 here), and /invocations bodies are checked by MLflow against the signature.
"""

from __future__ import annotations

import json
import secrets
import subprocess

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.processes import VENV_BIN

pytestmark = pytest.mark.slow

SEED = 20261127
MAX_EXAMPLES = 100  # per operation and phase: about a minute on 2 cores
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
    "ignored_auth",
]
# Schema-violating requests must be refused with one of these (schemathesis' default list, plus
# 413: more rows than the row limit is "too large", not "unprocessable", here).
CONFIG = """
[checks.negative_data_rejection]
expected-statuses = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]
"""


@pytest.fixture(scope="module")
def server(serve, registered_model):
    with pytest.MonkeyPatch.context() as patch:  # the admin endpoint on: 401/403, not 404
        patch.setenv("SERVING_ADMIN_TOKEN", secrets.token_hex(16))
        with serve(registered_model.tracking_uri, max_rows=100, max_body_bytes=100_000) as server:
            yield server


def requests_counted(url: str) -> float:
    text = requests.get(url + "/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "serving_requests"
        for sample in family.samples
        if sample.name == "serving_requests_total"
    )


def test_schemathesis_finds_nothing(server, tmp_path, record_property):
    report = tmp_path / "schemathesis.json"
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    command = [
        str(VENV_BIN / "schemathesis"),
        "--config-file", str(config),
        "run",
        f"{server.url}/openapi.json",
        "--checks", ",".join(CHECKS),
        "--phases", "examples,coverage,fuzzing",
        "--max-examples", str(MAX_EXAMPLES),
        "--seed", str(SEED),
        "--workers", "1",  # hypothesis' lambda descriptions are not thread-safe on 3.11
        "--request-timeout", "30",
        "--report", "json",
        "--report-json-path", str(report),
    ]  # fmt: skip
    before = requests_counted(server.url)
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    output = run.stdout[-8000:] + run.stderr[-2000:]
    result = json.loads(report.read_text())
    cases = result["test_cases"]
    record_property("schemathesis_test_cases", cases["generated"])
    print(f"schemathesis: {cases['generated']} test cases, {cases['with_failures']} failing")

    assert run.returncode == 0, output
    assert result["failures"] == [] and result["errors"] == [], output
    assert cases["generated"] >= 500, output  # hundreds of requests, not a smoke test
    assert result["operations"]["tested"] == result["operations"]["selected"] >= 8

    # Every request the fuzzer sent was counted by /metrics, across the workers.
    assert requests_counted(server.url) - before >= cases["generated"]
    log = server.log.read_text(errors="replace")
    assert "unhandled error" not in log and "Traceback" not in log
