"""The bench's own logic: the bodies MLServer and BentoML are sent, how a batching peer is
judged, and the report of a run with the front matrix and the slow-client case."""

from __future__ import annotations

import json

import pandas as pd

from bench.fronts import FRONTS, MODEL, NOOP
from bench.load import FRONT_CASES, V2_CASES
from bench.peer_goals import ahead_of
from bench.report import markdown, write
from bench.servers import records_body, v2_body
from bench.verdict import judge
from tests.bench.figures import result, slow


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


def a_run() -> tuple[list, list, list]:
    memory = {"peak_rss_mib": 400.0, "peak_pss_mib": 300.0}
    ours = result("ours", 7000, 0.4, 8, kind="ours", labels=[1, 0], **memory)
    today = result("today", 2000, 0.5, 20, kind="reference", labels=[1, 0], **memory)
    fronts = [
        result(f"{f.name}, {app}", 9000, 0.3, 5, kind="front", cases=FRONT_CASES[app],
               front=f.name, app=app, labels=[1, 0] if app == MODEL else [],
               command=f"granian {f.name}")
        for app in (NOOP, MODEL) for f in FRONTS
    ]  # fmt: skip
    stalled = [slow("ours", 6000, 12), slow("reference", 0, 0, probe_ok=0)]
    return [ours, today, *fronts], stalled, judge([ours, today, *fronts], (), stalled)


def test_the_report_shows_the_front_matrix_its_commands_the_slow_case_and_the_goals(tmp_path):
    results, stalled, goals = a_run()
    meta = {"model_uri": "models:/titanic/1", "version": "1", "when": "now", "cpus": 2,
            "load_average": "1.00/1.00/1.00 -> 2.00/2.00/2.00", "seconds": 15,
            "front_seconds": 8, "elapsed_s": 600, "stall_timeouts_s": 60}  # fmt: skip
    report = markdown(results, goals, meta, slow=stalled)
    matrix = report.split("## Front matrix")[1].split("\n\n")[1].splitlines()
    assert [line.split(" | ")[0] for line in matrix[2:]] == [
        *(f"| {f.name}" for f in FRONTS), "| ours *", "| today *",
    ]  # fmt: skip
    assert "| Granian RSGI | 9,000 | 5.00 | 9,000 | 5.00 | 100% | 900,000 |" in report
    assert "`granian uvicorn`" in report  # each front row's command
    assert "| reference | 1 row, 32 conns, 1,000 stalled | 0 |" in report
    assert "0 of 5" in report and "--header-timeout 60" in report
    assert "| shown |" in report and "n/a" in report  # the ceiling share; today's 0 req/s

    write(tmp_path, results, goals, meta, None, stalled)
    saved = json.loads((tmp_path / "latest.json").read_text())  # strict JSON: no Infinity
    assert [g["ratio"] for g in saved["goals"]].count(None) == 1
    assert saved["slow_clients"][1]["probe"]["timeouts"] == 5
    assert (tmp_path / "latest.png").stat().st_size > 0


def test_a_run_of_only_the_v2_cases_reports_and_charts(tmp_path):
    """`--only-v2`: this server's /predict, V2 REST and gRPC, the one-row cases of V2 only."""
    ours = result("ours", 7000, 0.4, 8, kind="ours", labels=[1, 0])
    beside = result("ours, /predict", 7100, 0.4, 8, kind="ours-v2-baseline", cases=V2_CASES,
                    labels=[1, 0])  # fmt: skip
    rest = result("ours, V2 REST", 6800, 0.41, 9, kind="ours-v2-rest", cases=V2_CASES,
                  labels=[1, 0])  # fmt: skip
    grpc = result("ours, V2 gRPC", 3000, 0.9, 20, kind="ours-v2-grpc", cases=V2_CASES,
                  labels=[1, 0])  # fmt: skip
    goals = judge([ours, beside, rest, grpc], ())
    meta = {"model_uri": "models:/titanic/1", "version": "1", "when": "now", "cpus": 2,
            "load_average": "-", "seconds": 3, "elapsed_s": 60}  # fmt: skip
    report = write(tmp_path, [ours, beside, rest, grpc], goals, meta, None, [])
    assert "| ours, V2 gRPC | 1 row, 32 conns | 3,000 |" in report
    assert "| V2 REST: req/s, 1 row, 32 conns | ours, /predict |" in report
    assert "| shown |" in report
    assert (tmp_path / "latest.png").stat().st_size > 0


def test_the_grpc_request_carries_each_column_as_raw_tensors_the_server_decodes():
    from bench.grpc_load import infer_request
    from serving.contract import InputSpec
    from serving.v2.grpc_service import as_rest_request
    from serving.v2.tensors import decode_inputs
    from training.signature import INPUT_SCHEMA

    frame = pd.DataFrame({"PassengerId": [892, 893], "Pclass": [3, 1], "Sex": ["male", "female"],
                          "Age": [34.5, float("nan")], "Cabin": [None, "C85"]})  # fmt: skip
    body, binary = as_rest_request(infer_request(frame))
    inputs = decode_inputs(body, InputSpec.from_signature_json(INPUT_SCHEMA.to_json()), binary)
    assert inputs.columns == {
        "Pclass": [3, 1],
        "Sex": ["male", "female"],
        "Age": [34.5, None],
        "Cabin": ["", "C85"],  # a missing string is empty: the model reads it missing
    }  # PassengerId is no model column: ignored
