"""The bench's own logic: the bodies MLServer and BentoML are sent, and how goals are judged."""

from __future__ import annotations

import json

import pandas as pd

from bench.goals import ahead_of
from bench.load import CASES, Measurement, ServerResult
from bench.servers import records_body, v2_body


def test_the_v2_body_keeps_types_and_nulls_column_by_column():
    frame = pd.DataFrame(
        {"Pclass": [3, 1], "Age": [34.5, float("nan")], "Cabin": [None, "C85"]},
    )
    body = json.loads(v2_body(frame))
    assert body["parameters"] == {"content_type": "pd"}
    columns = {spec["name"]: spec for spec in body["inputs"]}
    assert columns["Pclass"]["datatype"] == "INT64" and columns["Pclass"]["data"] == [3, 1]
    assert columns["Age"]["datatype"] == "FP64" and columns["Age"]["data"] == [34.5, None]
    assert columns["Cabin"]["datatype"] == "BYTES" and columns["Cabin"]["data"] == [None, "C85"]
    assert all(spec["shape"] == [2] for spec in body["inputs"])


def test_the_records_body_has_one_record_per_row_with_nulls():
    frame = pd.DataFrame({"Age": [34.5, float("nan")], "Cabin": [None, "C85"]})
    assert json.loads(records_body(frame)) == {
        "rows": [{"Age": 34.5, "Cabin": None}, {"Age": None, "Cabin": "C85"}]
    }


def result(name: str, req_per_s: float, p50: float, p99: float) -> ServerResult:
    return ServerResult(
        server=name,
        kind="x",
        cold_start_s=1.0,
        measurements=[
            Measurement(
                c.name, c.rows, c.connections, 1, req_per_s, req_per_s * c.rows, p50, p99, 0
            )
            for c in CASES  # the same figures in every case
        ],
    )


def test_ahead_means_more_throughput_and_lower_latency_on_every_case():
    ours, slower = result("ours", 2000, 0.5, 20), result("peer", 300, 70, 200)
    goals = ahead_of(ours, slower)
    assert [g.met for g in goals] == [True] * 4
    assert {g.name: round(g.ratio, 1) for g in goals}["p99 ms, 1 row, 32 conns"] == 10.0

    mixed = result("peer", 3000, 70, 10)  # more req/s and a lower p99 than ours
    verdicts = {g.name: g.met for g in ahead_of(ours, mixed)}
    assert verdicts["req/s, 1 row, 32 conns"] is False
    assert verdicts["p99 ms, 1 row, 32 conns"] is False
    assert verdicts["p50 ms, 1 row, 1 conn"] is True
