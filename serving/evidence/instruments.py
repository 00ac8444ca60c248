"""The evidence metrics: their names (read by `python -m training.promote`, the dashboard and
the alert rules) and the instruments, created on first use (prometheus_client is imported then,
never with this module).

Shadow scoring, labelled by the version that answered (`live_version`) and the shadow's
(`shadow_version`, "none" while the shadow alias has no model loaded):

- `serving_shadow_rows_total`: rows the shadow scored; of them `serving_shadow_agree_total`
  with the live label, `serving_shadow_disagree_total{live_class, shadow_class}` without;
- `serving_shadow_errors_total`: rows the shadow failed to score (the live answer stands);
- `serving_shadow_dropped_total`: rows not scored because the worker's queue was full;
- `serving_shadow_duration_seconds`: the shadow's model time per request, sampled: the first
  request of each round of the evidence thread, scored on its own as the live model answered
  it (the others of the round are scored in one call); the buckets of the per-stage histogram,
  so that the live model's `predict` stage compares.

Drift, per served version: `serving_drift_window_rows{version}` (rows in the windows, summed
over the workers) and `serving_drift_window_bin_rows{version,column,bin}` (how many fall in each
bin of the training profile); from those, at every scrape, `serving_drift_psi{version,column}`
and `serving_drift_missing_rate{version,column}` (serving.evidence.drift).
"""

from __future__ import annotations

from functools import cache
from types import SimpleNamespace

from serving.stage_counts import STAGE_BUCKETS

SHADOW_ROWS = "serving_shadow_rows_total"
SHADOW_AGREE = "serving_shadow_agree_total"
SHADOW_DISAGREE = "serving_shadow_disagree_total"
SHADOW_ERRORS = "serving_shadow_errors_total"
SHADOW_DROPPED = "serving_shadow_dropped_total"
SHADOW_DURATION = "serving_shadow_duration_seconds"
DRIFT_WINDOW_ROWS = "serving_drift_window_rows"
DRIFT_BIN_ROWS = "serving_drift_window_bin_rows"
DRIFT_PSI = "serving_drift_psi"
DRIFT_MISSING = "serving_drift_missing_rate"
NO_MODEL = "none"
PAIR = ("live_version", "shadow_version")


def _name(full: str) -> str:
    """A counter's name as prometheus_client takes it (it adds `_total` itself)."""
    return full.removesuffix("_total")


@cache
def instruments() -> SimpleNamespace:
    from prometheus_client import Counter, Gauge, Histogram

    return SimpleNamespace(
        rows=Counter(_name(SHADOW_ROWS), "Rows the shadow version scored", PAIR),
        agree=Counter(_name(SHADOW_AGREE), "Shadow-scored rows whose labels agree", PAIR),
        disagree=Counter(
            _name(SHADOW_DISAGREE),
            "Shadow-scored rows whose labels disagree, by the live and the shadow label",
            [*PAIR, "live_class", "shadow_class"],
        ),
        errors=Counter(_name(SHADOW_ERRORS), "Rows the shadow version failed to score", PAIR),
        dropped=Counter(
            _name(SHADOW_DROPPED), "Rows not shadow-scored: the worker's queue was full", PAIR
        ),
        duration=Histogram(
            SHADOW_DURATION,
            "The shadow version's model time per request (sampled: one request per slice)",
            PAIR,
            buckets=STAGE_BUCKETS,
        ),
        window_rows=Gauge(
            DRIFT_WINDOW_ROWS,
            "Rows in the drift windows of a served version (all workers)",
            ["version"],
            multiprocess_mode="livesum",
        ),
        bin_rows=Gauge(
            DRIFT_BIN_ROWS,
            "Rows of the drift windows in each bin of the training profile, by column",
            ["version", "column", "bin"],
            multiprocess_mode="livesum",
        ),
    )
