"""What a hostile client found, in-process on a real model: JSON nested past the parser's depth on
the endpoints that read NaN tokens (/invocations, V2 infer) is a 400, not a 500; /invocations
columns of different lengths are refused as MLflow refuses them, never padded with nulls."""

from __future__ import annotations

import pytest

DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize(
    ("path", "body", "error"),
    [
        ("/invocations", b'{"inputs": ' + DEEP + b"}", "error_code"),
        ("/invocations", b'{"inputs": [{"Age": NaN, "x": ' + DEEP + b"}]}", "error_code"),
        ("/v2/models/titanic/infer", b'{"inputs": ' + DEEP + b"}", "error"),
        ("/v2/models/titanic/infer", DEEP, "error"),
    ],
)
def test_json_nested_past_the_parsers_depth_is_a_400_naming_it(client, path, body, error):
    answer = client.post(path, data=body, content_type="application/json")
    assert answer.status_code == 400, answer.text
    assert "JSON" in str(answer.get_json()[error]) or "JSON" in answer.get_json()["message"]


@pytest.mark.parametrize("field", ["inputs", "instances"])
def test_invocations_columns_of_different_lengths_are_refused_not_padded(client, field):
    body = {field: {"Pclass": [1, 3], "Sex": ["female"]}}
    answer = client.post("/invocations", json=body)
    assert answer.status_code == 400, answer.text
    assert answer.get_json()["error_code"] in ("BAD_REQUEST", "INVALID_PARAMETER_VALUE")
    same = client.post("/invocations", json={field: {"Pclass": [1, 3], "Sex": ["female", "male"]}})
    assert same.status_code == 200 and len(same.get_json()["predictions"]) == 2
