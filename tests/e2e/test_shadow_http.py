"""Shadow scoring against a real server (two workers) with a champion and a different challenger:
every answered row is scored by the challenger off the response path, the counters account for
every row and agree with the two versions' own predictions, and the live answers are the
champion's, even once the challenger's files are gone."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import orjson
import pandas as pd
import pytest
import requests

from tests.e2e.evidence import batches, predict, records, settle, total

pytestmark = pytest.mark.slow

ROWS = 1000


def own_predictions(two_versions, frame: pd.DataFrame) -> tuple[list[int], list[int]]:
    """Each version's labels on `frame`, by MLflow's pyfunc of the registered version."""
    mlflow.set_tracking_uri(two_versions.tracking_uri)
    try:
        return tuple(  # type: ignore[return-value]
            np.asarray(
                mlflow.pyfunc.load_model(f"models:/{two_versions.name}/{version}").predict(frame)
            )
            .ravel()
            .astype(int)
            .tolist()
            for version in (two_versions.champion, two_versions.challenger)
        )
    finally:
        mlflow.set_tracking_uri(None)


def staged_paths(log: Path, alias: str) -> list[Path]:
    """Where the model agent staged `alias`'s versions (from its log lines)."""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        entry = json.loads(line) if line.startswith("{") else {}
        if entry.get("event") == "model_staged" and entry["model_uri"].endswith(f"@{alias}"):
            found.append(Path(entry["message"].rsplit(" in ", 1)[1]))
    return found


def invocations(url: str, rows: list[dict]) -> list[int]:
    body = orjson.dumps({"dataframe_records": rows})
    headers = {"Content-Type": "application/json"}
    answer = requests.post(url + "/invocations", data=body, headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()["predictions"]


def v2_infer(url: str, rows: list[dict]) -> list[int]:
    """A V2 REST infer request of `rows`, one tensor per column as the model's metadata says."""
    metadata = requests.get(url + "/v2/models/titanic", timeout=10).json()
    inputs = [
        {"name": spec["name"], "datatype": spec["datatype"], "shape": [len(rows)],
         "data": [row[spec["name"]] for row in rows]}
        for spec in metadata["inputs"]
    ]  # fmt: skip
    body = orjson.dumps({"inputs": inputs})
    headers = {"Content-Type": "application/json"}
    answer = requests.post(url + "/v2/models/titanic/infer", data=body, headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    (predict,) = [out for out in answer.json()["outputs"] if out["name"] == "predict"]
    return predict["data"]


def settle_challenger(url: str, rows: list[dict], timeout: float = 60) -> None:
    """Wait until the challenger answers (the agent has staged it)."""
    deadline = time.monotonic() + timeout
    headers = {"Content-Type": "application/json", "X-Model-Alias": "challenger"}
    while True:
        answer = requests.post(
            url + "/predict", data=orjson.dumps(rows), headers=headers, timeout=10
        )
        if answer.status_code == 200 or time.monotonic() > deadline:
            assert answer.status_code == 200, answer.text
            return
        time.sleep(0.2)


@pytest.fixture
def challenger_files(two_versions, tmp_path) -> Iterator[Path]:
    """The challenger's files in the registry's artifact store, put back after the test (the
    session's registry serves other tests)."""
    source = mlflow.MlflowClient(two_versions.tracking_uri).get_model_version_download_uri(
        two_versions.name, two_versions.challenger
    )
    files = Path(source.removeprefix("file://"))
    shutil.copytree(files, tmp_path / "backup")
    yield files
    shutil.rmtree(files, ignore_errors=True)
    shutil.copytree(tmp_path / "backup", files)


def test_the_challenger_scores_every_row_in_shadow_and_never_changes_an_answer(
    serve, two_versions, challenger_files: Path, raw_test: pd.DataFrame
):
    frame = pd.concat([raw_test] * 3, ignore_index=True).head(ROWS)
    champion, challenger = own_predictions(two_versions, frame.drop(columns=["PassengerId"]))
    assert champion != challenger, "the fixture's versions must disagree somewhere"
    rows = records(frame)
    pair = {"live_version": two_versions.champion, "shadow_version": two_versions.challenger}
    flags = {"serve_aliases": "champion,challenger", "shadow": "challenger"}
    with serve(two_versions.tracking_uri, workers=2, **flags) as server:
        # /ready is the champion's; the challenger is staged when a request for it is answered
        # (each worker's shadow then loads it itself, off the response path)
        settle_challenger(server.url, rows[:1])
        live: list[int] = []
        for batch in batches(rows[:400], 10):
            live += predict(server.url, batch)
        live += invocations(server.url, rows[400:450])  # MLflow's protocol is shadowed too
        live += v2_infer(server.url, rows[450:500])  # and the Open Inference Protocol

        # The challenger's files go away, in the registry and where the agent staged them.
        gone = [challenger_files, *staged_paths(server.log, "challenger")]
        assert len(gone) >= 2
        for path in gone:
            shutil.rmtree(path)
        for batch in batches(rows[500:], 1):
            live += predict(server.url, batch)

        assert live == champion  # the live answers are the champion's, row by row
        # A challenger request is its own answer, never scored again in shadow.
        assert predict(server.url, rows[:3], alias="challenger") == challenger[:3]

        def accounted(samples) -> float:
            return sum(
                total(samples, metric, **pair)
                for metric in ("serving_shadow_rows_total", "serving_shadow_errors_total",
                               "serving_shadow_dropped_total")
            )  # fmt: skip

        samples = settle(server.url, lambda s: accounted(s) == ROWS)
        assert accounted(samples) == ROWS
        assert total(samples, "serving_shadow_errors_total") == 0
        assert total(samples, "serving_shadow_dropped_total") == 0
        agree = sum(a == b for a, b in zip(champion, challenger, strict=True))
        assert total(samples, "serving_shadow_rows_total", **pair) == ROWS
        assert total(samples, "serving_shadow_agree_total", **pair) == agree
        for live_class in ("0", "1"):
            pairs = zip(champion, challenger, strict=True)
            expected = sum(a == int(live_class) != b for a, b in pairs)
            disagree = total(samples, "serving_shadow_disagree_total", live_class=live_class)
            assert disagree == expected, live_class
        # the shadow's latency: one request per round of the evidence thread, timed on its own
        requests_scored = 40 + 1 + 1 + 500  # /predict batches, /invocations, V2, single rows
        timed = total(samples, "serving_shadow_duration_seconds_count", **pair)
        assert 1 <= timed <= requests_scored

        shadow = requests.get(server.url + "/version", timeout=10).json()["shadow"]
        assert (shadow["alias"], shadow["version"]) == ("challenger", two_versions.challenger)
        (counts,) = shadow["counts"]
        assert counts["rows"] == ROWS and counts["agree"] == agree
        assert counts["agreement"] == pytest.approx(agree / ROWS)


def scorer_pid(server) -> int:
    """The shadow scorer's pid among the server's live processes."""
    import psutil

    found = []
    for child in psutil.Process(server.process.pid).children(recursive=True):
        try:
            if "serving.server.shadow_scorer" in " ".join(child.cmdline()):
                found.append(child.pid)
        except psutil.Error:  # gone, or a zombie not reaped yet
            continue
    (pid,) = found
    return pid


def test_the_challenger_scores_in_a_process_of_its_own_restarted_if_it_dies(
    serve, two_versions, raw_test: pd.DataFrame
):
    import os
    import signal

    rows = records(raw_test)[:60]
    champion, _ = own_predictions(two_versions, raw_test.drop(columns=["PassengerId"]).head(60))
    pair = {"live_version": two_versions.champion, "shadow_version": two_versions.challenger}
    flags = {"serve_aliases": "champion,challenger", "shadow": "challenger"}
    with serve(two_versions.tracking_uri, workers=2, **flags) as server:
        settle_challenger(server.url, rows[:1])
        first = scorer_pid(server)
        assert predict(server.url, rows[:20]) == champion[:20]
        settle(server.url, lambda s: total(s, "serving_shadow_rows_total", **pair) == 20)

        os.kill(first, signal.SIGKILL)  # the scorer dies: the live answers do not change
        assert [predict(server.url, [row])[0] for row in rows[20:40]] == champion[20:40]

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the master starts another one
            try:
                second = scorer_pid(server)
                break
            except ValueError:
                time.sleep(0.2)
        assert second != first

        sent = [40]  # rows answered by the champion so far

        def ready(samples) -> bool:  # the new scorer scores what comes once it listens
            predict(server.url, rows[40:41])
            sent[0] += 1
            return total(samples, "serving_shadow_rows_total", **pair) > 20

        settle(server.url, ready, timeout=60)

        def accounted(samples) -> float:
            return sum(total(samples, f"serving_shadow_{kind}_total", **pair)
                       for kind in ("rows", "dropped", "errors"))  # fmt: skip

        samples = settle(server.url, lambda s: accounted(s) == sent[0])
        assert accounted(samples) == sent[0]  # every row scored, or counted as not
        assert total(samples, "serving_shadow_rows_total", **pair) > 20  # scored after it too
