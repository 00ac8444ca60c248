"""The champion gate: beat the champion by more than noise, fit the budgets, come from a commit.

A candidate takes the champion alias only when every check passes:

- **committed**: it was trained from a committed, clean tree, not by `dvc exp run` nor from a
  dirty workspace (unless `register.allow_uncommitted_champion`);
- **budgets**: the served path's one-row latency (p99), the model's size on disk and its load
  time, measured at registration, are within `register.max_latency_ms`, `max_model_mb` and
  `max_load_seconds`;
- **better**: on the validation rows, a paired stratified bootstrap of the difference in
  `register.gate_metric` (candidate minus champion, both scored on the same resampled rows) has
  its one-sided `gate_confidence` lower bound above `gate_margin`. No champion, or one that
  cannot be loaded and scored, passes this check (with the reason said).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from training.config import RegisterParams
from training.evaluate import METRICS, stratified_resamples


@dataclass(frozen=True)
class Check:
    name: str  # committed | latency | size | load_time | better
    passed: bool
    detail: str


@dataclass(frozen=True)
class Comparison:
    """A paired bootstrap of `metric` (candidate - champion) on the same rows."""

    metric: str
    candidate: float
    champion: float
    difference: float
    low: float  # the one-sided lower bound at `confidence`
    high: float  # the matching upper bound
    confidence: float
    margin: float

    @property
    def better(self) -> bool:
        return self.low > self.margin

    def describe(self, champion_version: str) -> str:
        if self.better:
            verdict = f"beats champion v{champion_version} beyond noise"
        elif self.high < -self.margin:
            verdict = f"is worse than champion v{champion_version}"
        else:
            verdict = f"does not beat champion v{champion_version} beyond noise"
        return (
            f"{self.metric} {self.candidate:.4f} vs {self.champion:.4f} {verdict}: difference "
            f"{self.difference:+.4f}, {self.confidence:.0%} paired-bootstrap bound "
            f"[{self.low:+.4f}, {self.high:+.4f}], margin {self.margin:.4f}"
        )


@dataclass(frozen=True)
class GateResult:
    promoted: bool
    reason: str
    champion_version: str | None
    checks: list[Check] = field(default_factory=list)
    comparison: Comparison | None = None

    def record(self) -> dict[str, Any]:
        """JSON-ready, for metrics/registration.json."""
        return asdict(self)


def paired_bootstrap(
    y_true: np.ndarray,
    candidate: np.ndarray,
    champion: np.ndarray,
    params: RegisterParams,
    threshold: float,
) -> Comparison:
    """Resample the rows (within each class, so every sample has both) `params.gate_samples`
    times and score both models on each sample."""
    metric = METRICS[params.gate_metric]
    differences = np.array(
        [
            metric(y_true[rows], candidate[rows], threshold)
            - metric(y_true[rows], champion[rows], threshold)
            for rows in stratified_resamples(y_true, params.gate_samples, params.seed)
        ]
    )
    ours, theirs = metric(y_true, candidate, threshold), metric(y_true, champion, threshold)
    tail = 1 - params.gate_confidence
    return Comparison(
        metric=params.gate_metric,
        candidate=ours,
        champion=theirs,
        difference=ours - theirs,
        low=float(np.quantile(differences, tail)),
        high=float(np.quantile(differences, 1 - tail)),
        confidence=params.gate_confidence,
        margin=params.gate_margin,
    )


def budget_checks(measured: dict[str, float], params: RegisterParams) -> list[Check]:
    """The served path's figures (`register.measure_served_path`) against their limits."""
    limits = (
        ("latency", "latency_p99_ms", params.max_latency_ms, "ms one-row p99 latency"),
        ("size", "size_mb", params.max_model_mb, "MB on disk"),
        ("load_time", "load_seconds", params.max_load_seconds, "s to load"),
    )
    checks = []
    for name, key, limit, unit in limits:
        value = measured[key]
        passed = value <= limit
        checks.append(Check(name, passed, f"{value:.3g} {unit} {'<=' if passed else '>'} {limit}"))
    return checks


def committed_check(tags: dict[str, str], params: RegisterParams) -> Check:
    """Only a run from a committed, clean tree may take the champion alias."""
    why = []
    if tags.get("dvc_exp_name"):
        why.append(f"a DVC experiment ({tags['dvc_exp_name']})")
    if tags.get("git_commit", "unknown") == "unknown":
        why.append("no git commit")
    elif tags.get("git_dirty") != "false":
        why.append("an uncommitted tree")
    if not why:
        return Check("committed", True, f"from commit {tags.get('git_commit', '')[:12]}")
    if params.allow_uncommitted_champion:
        return Check("committed", True, f"{' and '.join(why)}, allowed by the params")
    return Check(
        "committed",
        False,
        f"trained from {' and '.join(why)}: a candidate only "
        "(register.allow_uncommitted_champion is false)",
    )


def decide(
    checks: Sequence[Check], comparison: Comparison | None, champion: str | None, note: str
) -> GateResult:
    """Promote only if every check passes; the reason names the failed checks with figures.

    `note` says what the better-check found when there is no comparison (no champion, or an
    unusable one).
    """
    better = (
        Check("better", comparison.better, comparison.describe(champion or "?"))
        if comparison is not None
        else Check("better", True, note)
    )
    every = [*checks, better]
    failed = [c for c in every if not c.passed]
    reason = "; ".join(c.detail for c in failed) if failed else better.detail
    return GateResult(not failed, reason, champion, every, comparison)
