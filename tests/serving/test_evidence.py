"""The evidence hook in-process (Flask's test client, a real registered model): a shadow that
cannot score, and a full queue, change no answer and are counted."""

from __future__ import annotations

import time

import pytest

from serving import metrics
from serving.config import Settings
from serving.evidence import hook
from serving.evidence.shadow import agreement
from serving.rest.app import create_app
from serving.store import ModelStore
from serving.stores import Stores
from tests.e2e.evidence import total

ROWS = [{"Pclass": 3, "Sex": "male"}, {"Pclass": 1, "Sex": "female", "Age": 30.0}]


def settled(condition, timeout: float = 10.0) -> dict:
    """The counts once `condition(counts)` holds: the evidence thread may be mid-round."""
    deadline = time.monotonic() + timeout
    while True:
        hook.current().process()
        now = counts()
        if condition(now) or time.monotonic() > deadline:
            return now
        time.sleep(0.05)


def counts() -> dict:
    samples = {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in metrics.collected()
        for sample in family.samples
    }
    return {
        name: total(samples, f"serving_shadow_{name}_total", live_version="1")
        for name in ("rows", "errors", "dropped")
    }


@pytest.fixture
def app_with_a_missing_shadow(store, registered_model):
    """The champion, and as shadow an alias the registry does not have (nothing loaded)."""
    uri = registered_model.tracking_uri
    settings = Settings.from_env(
        {}, tracking_uri=uri, serve_aliases="champion,nobody", shadow="nobody", shadow_queue=3
    )
    stores = Stores([store, ModelStore(f"models:/{registered_model.name}@nobody", uri)])
    return create_app(settings, stores).test_client()


def test_a_shadow_without_a_model_counts_errors_and_the_answer_stands(
    app_with_a_missing_shadow, store
):
    expected, _ = store.current.predict(ROWS)
    before = counts()
    answer = app_with_a_missing_shadow.post("/predict", json=ROWS)
    assert answer.status_code == 200 and answer.get_json()["prediction"] == expected
    after = settled(lambda now: now["errors"] - before["errors"] >= len(ROWS))
    assert after["errors"] - before["errors"] == len(ROWS)
    assert after["rows"] == before["rows"]
    status = app_with_a_missing_shadow.get("/version").get_json()["shadow"]
    assert (status["alias"], status["version"]) == ("nobody", None)
    assert any(c["shadow_version"] == "none" and c["errors"] >= 2 for c in status["counts"])


@pytest.fixture
def unthreaded(store, registered_model):
    """Evidence whose rounds the test runs itself: a 3-row queue, a shadow with no model."""
    shadow = ModelStore(f"models:/{registered_model.name}@nobody", registered_model.tracking_uri)
    return hook.Evidence(Stores([store, shadow]), 0, "nobody", queue_rows=3, thread=False)


def test_a_full_queue_drops_the_request_from_shadow_and_counts_it(unthreaded, store):
    before = counts()
    unthreaded.observe(store.current, ROWS, [0, 1])
    unthreaded.observe(store.current, ROWS, [0, 1])  # 2 + 2 rows do not fit in 3
    assert counts()["dropped"] - before["dropped"] == len(ROWS)
    unthreaded.process()
    assert counts()["errors"] - before["errors"] == len(ROWS)  # the first: no shadow model


def test_a_request_larger_than_the_queue_gets_in_when_nothing_waits(unthreaded, store):
    before = counts()
    unthreaded.observe(store.current, ROWS * 3, [0, 1] * 3)
    unthreaded.process()
    after = counts()
    assert after["dropped"] == before["dropped"]
    assert after["errors"] - before["errors"] == 3 * len(ROWS)


def test_shadow_must_name_another_served_alias():
    with pytest.raises(ValueError, match="--shadow"):
        Settings.from_env({}, serve_aliases="champion,challenger", shadow="champion")
    with pytest.raises(ValueError, match="--shadow"):
        Settings.from_env({}, shadow="challenger")


def test_agreement_is_read_from_the_counters():
    families = [
        type("F", (), {"samples": [sample]})()
        for sample in (
            _sample("serving_shadow_rows_total", 10),
            _sample("serving_shadow_agree_total", 9),
        )
    ]
    (pair,) = agreement(families)
    assert (pair["rows"], pair["agree"], pair["agreement"]) == (10, 9, 0.9)


def _sample(name: str, value: float):
    from prometheus_client.samples import Sample

    return Sample(name, {"live_version": "1", "shadow_version": "2"}, value)


def test_half_a_queue_of_rows_starts_a_round_before_the_period_ends(
    monkeypatch, store, registered_model
):
    monkeypatch.setattr(hook, "ROUND", 3600.0)  # only a wake can start a round in this test
    shadow = ModelStore(f"models:/{registered_model.name}@nobody", registered_model.tracking_uri)
    evidence = hook.Evidence(Stores([store, shadow]), 0, "nobody", queue_rows=4)
    before = counts()
    evidence.observe(store.current, ROWS[:1], [0])  # 1 row of 4: it waits
    evidence.observe(store.current, ROWS[1:], [1])  # 2 of 4: half the queue, a round now
    deadline = time.monotonic() + 10
    while counts()["errors"] - before["errors"] < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert counts()["errors"] - before["errors"] == 2  # both rows, in one round


def test_a_round_works_through_whole_requests_a_slice_at_a_time():
    one, three = [{}], [{}, {}, {}]
    pending = [(None, one, None), (None, three, None), (None, one, None), (None, one, None)]
    parts = [[len(rows) for _, rows, _ in part] for part in hook.slices(pending, 2)]
    assert parts == [[1, 3], [1, 1]]  # no request is split, none is left out
    assert [len(part) for part in hook.slices(pending, 100)] == [4]
    assert list(hook.slices([], 2)) == []
