"""The verdict of a run: every goal it measured, judged, and whether all the judged ones are met.

`judge` picks from a run's results what each goal needs (the gunicorn front, the `mlflow` and
`mlflow-plain` results, the batching peers, the V2 and shadow runs, the slow-client case) and
gathers the goals of bench/own_goals.py and bench/peer_goals.py; `all_met` is what bench/run.py
exits by. The thresholds are bench/goals.py's.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from typing import Any

from bench.fronts import REFERENCE_FRONT
from bench.goals import V2_KINDS, Goal, ceiling_of, noop_of
from bench.load import ServerResult
from bench.own_goals import bound_goals, front_goals, shadow_goals, slow_goals, v2_goals
from bench.peer_goals import ahead_of, flavor_goals, goals
from bench.slow import SlowClients


def judge(
    results: list[ServerResult],
    peers: Collection[str],
    slow: Collection[SlowClients] = (),
    lane: Mapping[int, Mapping[str, Any]] | None = None,
    cpus: int | None = None,
) -> list[Goal]:
    """Every goal of a run whose first result is this server's: `front_goals` against the
    gunicorn front (kind "reference") and `slow_goals` if they ran, `goals` against the
    `mlflow-plain` results and `flavor_goals` of the `mlflow` ones (with MLflow's no-op ceiling,
    kind "mlflow-noop", if it ran), then `ahead_of` each `mlflow` result and each result whose
    kind is one of `peers`, `v2_goals` of this server's V2 endpoints, and `shadow_goals` if this
    server ran with `--shadow` too (kind "shadow"), against the same server without the flag
    (kind "shadow-reference") when it ran beside it; with the lane's cost (bench/lane_cost.py,
    by rows a request) and both no-op rows of the front matrix, `bound_goals` on `cpus` cores."""
    ours, *others = results
    targets = []
    reference = next((r for r in others if r.kind == "reference"), None)
    if reference is not None:
        targets += front_goals(ours, reference, ceiling_of(results))
    gunicorn_noop, ceiling = noop_of(results, REFERENCE_FRONT), ceiling_of(results)
    if lane and gunicorn_noop is not None and ceiling is not None:
        targets += bound_goals(lane, gunicorn_noop, ceiling, cpus or os.cpu_count() or 1)
    shadowed = next((r for r in others if r.kind == "shadow"), None)
    if shadowed is not None:  # against the same server without the flag, if it ran beside it
        without = next((r for r in others if r.kind == "shadow-reference"), ours)
        targets += shadow_goals(without, shadowed)
    mine = next((s for s in slow if s.kind == ours.kind), None)
    if mine is not None:
        targets += slow_goals(mine, next((s for s in slow if s.kind == "reference"), None))
    plain = [r for r in others if r.kind == "mlflow-plain"]
    fast = [r for r in others if r.kind == "mlflow"]
    if plain:
        targets += goals(ours, plain)
    noop = next((r for r in others if r.kind == "mlflow-noop"), None)
    if plain and fast:
        targets += flavor_goals(fast, plain, noop)
    for other in others:
        if other.kind in peers or other.kind == "mlflow":
            targets += ahead_of(ours, other)
    targets += v2_goals(ours, [r for r in others if r.kind in V2_KINDS])
    return targets


def all_met(targets: Collection[Goal]) -> bool:
    """Whether every judged goal is met (those shown, not judged, do not count)."""
    return all(g.met is not False for g in targets)
