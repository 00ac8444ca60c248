"""The /predict parser: row order as pandas gives it, values typed by the signature, errors."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from serving.contract import Column, InputSpec, decode_json, parse_batch
from serving.errors import ApiError

SPEC = InputSpec(
    (
        Column("Pclass", "long"),
        Column("Sex", "string"),
        Column("Age", "double", required=False),
        Column("SibSp", "long", required=False),
        Column("Cabin", "string", required=False),
    )
)

keys = st.lists(st.text(alphabet="0123456789ab", min_size=1, max_size=3), max_size=6, unique=True)


@given(st.lists(keys, min_size=1, max_size=4))
def test_row_keys_come_in_the_order_pandas_gives_them(columns_keys):
    body = {f"c{i}": dict.fromkeys(ks, 1) for i, ks in enumerate(columns_keys)}
    body["Pclass"] = dict.fromkeys([k for ks in columns_keys for k in ks], 1)
    body["Sex"] = dict.fromkeys(body["Pclass"], "male")
    assert parse_batch(body, SPEC, 1000).index == [str(k) for k in pd.DataFrame(body).index]


def test_the_articles_request_is_typed_by_the_signature(article_request):
    batch = parse_batch(article_request, SPEC, 1000)
    assert batch.index == ["53", "111"]
    assert batch.rows[0] == {"Pclass": 1, "Sex": "female", "Age": 28.0, "SibSp": 3,
                             "Cabin": "C23 C25 C27"}  # fmt: skip
    assert batch.rows[1]["Age"] is None and batch.rows[1]["Cabin"] is None
    assert type(batch.rows[0]["Age"]) is float and type(batch.rows[0]["Pclass"]) is int
    assert "Ticket" not in batch.rows[0]  # outside the signature: dropped


def test_records_lists_and_absent_optional_columns():
    records = parse_batch([{"Pclass": 3, "Sex": "male"}, {"Pclass": 1.0, "Sex": "f"}], SPEC, 10)
    assert records.index == ["0", "1"]
    assert records.rows[1] == {"Pclass": 1, "Sex": "f", "Age": None, "SibSp": None, "Cabin": None}
    lists = parse_batch({"Pclass": [3, 1], "Sex": ["male", "f"]}, SPEC, 10)
    assert lists.rows == records.rows and lists.index == records.index
    assert parse_batch({"Pclass": {}, "Sex": {}}, SPEC, 10).rows == []


@pytest.mark.parametrize(
    ("body", "code", "located"),
    [
        ({"Pclass": {"1": 3}}, "missing_column", {"columns": ["Sex"]}),
        ({"Pclass": {"1": 1.5}, "Sex": {"1": "m"}}, "invalid_value", {"column": "Pclass"}),
        ({"Pclass": {"1": True}, "Sex": {"1": "m"}}, "invalid_value", {"column": "Pclass"}),
        ({"Pclass": {"1": 1}, "Sex": {"1": 3}}, "invalid_value", {"column": "Sex", "row": "1"}),
        ({"Pclass": {"9": 1}, "Sex": {"9": "m"}, "Age": {"9": "abc"}}, "invalid_value",
         {"column": "Age", "row": "9"}),
        ({"Pclass": {"1": 1}, "Sex": {"2": "m"}}, "missing_value", {"column": "Pclass"}),
        ({"Pclass": [1, 2], "Sex": ["m"]}, "not_columns", {}),
        ({"Pclass": [1], "Sex": {"0": "m"}}, "not_columns", {}),
        ({"Pclass": 1, "Sex": "m"}, "not_columns", {"column": "Pclass"}),
        (["not a record"], "not_records", {"row": "0"}),
        (None, "not_columns", {}),
    ],
)  # fmt: skip
def test_bad_bodies_name_the_problem(body, code, located):
    with pytest.raises(ApiError) as raised:
        parse_batch(body, SPEC, 1000)
    assert raised.value.code == code
    assert 400 <= raised.value.status < 500
    for key, value in located.items():
        assert raised.value.details[key] == value


def test_row_limit_and_undecodable_bodies():
    with pytest.raises(ApiError) as too_many:
        parse_batch([{"Pclass": 1, "Sex": "m"}] * 11, SPEC, 10)
    assert (too_many.value.status, too_many.value.details["limit_rows"]) == (413, 10)
    for raw, code in ((b"", "empty_body"), (b"  \n", "empty_body"), (b"{", "malformed_json")):
        with pytest.raises(ApiError) as raised:
            parse_batch(decode_json(raw), SPEC, 10)
        assert raised.value.code == code


def test_the_spec_comes_from_the_models_signature():
    from training.signature import INPUT_SCHEMA  # the test may look at training; serving may not

    spec = InputSpec.from_signature_json(INPUT_SCHEMA.to_json())
    assert spec.required == ["Pclass", "Sex"]
    assert {c.name: c.kind for c in spec.columns}["Age"] == "double"
