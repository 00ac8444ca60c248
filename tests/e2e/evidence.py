"""Helpers of the evidence tests: test.csv as request bodies, and /metrics through
prometheus_client's parser."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import orjson
import pandas as pd
import requests
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset], float]


def records(frame: pd.DataFrame) -> list[dict]:
    """Rows as a client sends them: missing cells as null."""
    return [
        {k: (None if pd.isna(v) else v) for k, v in row.items()}
        for row in frame.drop(columns=["PassengerId"]).to_dict("records")
    ]


def batches(rows: list[dict], size: int) -> Iterator[list[dict]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def predict(url: str, rows: list[dict], alias: str | None = None) -> list[int]:
    headers = {"Content-Type": "application/json"}
    if alias:
        headers["X-Model-Alias"] = alias
    answer = requests.post(url + "/predict", data=orjson.dumps(rows), headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()["prediction"]


def scrape(url: str) -> Samples:
    text = requests.get(url + "/metrics", timeout=10).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def total(samples: Samples, metric: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, got), v in samples.items() if n == metric and wanted <= got)


def by_label(samples: Samples, metric: str, label: str, **labels: str) -> dict[str, float]:
    wanted = set(labels.items())
    return {
        dict(got)[label]: v
        for (n, got), v in samples.items()
        if n == metric and wanted <= got and label in dict(got)
    }


def settle(url: str, done: Callable[[Samples], bool], timeout: float = 30) -> Samples:
    """Scrape until `done` holds (the evidence thread works off the response path)."""
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(url)
        if done(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.2)
