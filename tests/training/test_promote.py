"""The promotion decision's arithmetic: histogram quantiles and the threshold checks."""

from __future__ import annotations

import pytest

from training.promote import Evidence, checks, quantile


def test_quantiles_interpolate_within_the_bucket_as_prometheus_does():
    buckets = {0.001: 50.0, 0.002: 90.0, 0.005: 100.0, float("inf"): 100.0}
    assert quantile(0.5, buckets) == pytest.approx(0.001)
    assert quantile(0.7, buckets) == pytest.approx(0.0015)
    assert quantile(0.99, buckets) == pytest.approx(0.0047)
    assert quantile(0.5, {float("inf"): 0.0}) is None


def evidence(rows: int = 1000, errors: int = 0, p99: float = 0.2) -> Evidence:
    return Evidence(rows, rows - 10, errors, 0, {"0": 10}, (0.1, 0.2), (0.1, p99))


def test_every_threshold_holds_on_good_evidence():
    assert all(c.passed for c in checks(evidence(), 1000, 0, 1.5))


@pytest.mark.parametrize(
    ("found", "failed"),
    [
        (evidence(rows=999), "rows"),
        (evidence(errors=1), "errors"),
        (evidence(p99=0.31), "latency"),
        (Evidence(1000, 990, 0, 0, {}, (None, None), (0.1, 0.2)), "latency"),
    ],
)
def test_each_threshold_fails_on_its_own(found, failed):
    results = {c.name: c for c in checks(found, 1000, 0, 1.5)}
    assert [name for name, c in results.items() if not c.passed] == [failed]
