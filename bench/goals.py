"""The goals a run is judged by: ratios of this server's figures to its peers', all from one run.

Against the gunicorn front the server had before (bench/gunicorn_reference.py: the same app,
model and agent under 2 gunicorn sync workers; the front's goals): 3x its requests per second
at 32 connections with a p99 of at most 10 ms and no errors, 2x its rows per second at 100
rows, a p50 at one connection no worse than its own (within P50_MARGIN, for noise), a cold
start no slower and no more memory (RSS and PSS of all processes); with 1,000 stalled clients a
p99 of at most 20 ms and no errors while all 1,000 stay open. Shown beside them, not judged:
the share of the stack's no-op ceiling (Granian RSGI) this server reaches, and how the gunicorn
front fares with the stalled clients (it is expected to fail: its two sync workers block on
them).

Against `mlflow models serve` on the plain scikit-learn flavor (what its users had before the
registered model's pyfunc ran the fast path; its best variant): 20x the requests per second and
1/20 of the p99 at 32 connections, 10x the rows per second at 100 rows, 1/5 of the p50 at one
connection, a cold start no slower and no more memory. `mlflow models serve` on the registered
model's own (fast) flavor: a p50 of at most 5 ms at one connection and 10x the plain flavor's
requests per second at 32 connections; this server ahead of it on every load case. Against a
batching peer (MLServer, BentoML, on the same fast flavor): ahead on every load case.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from bench.fronts import CEILING, NOOP
from bench.load import CASES, ServerResult
from bench.slow import SlowClients

P50_MARGIN = 0.10  # the p50 at one connection may be this much above the reference's: wrk's noise
P99_MS = 10.0  # the p99 at 32 connections, at most
SLOW_P99_MS = 20.0  # the p99 at 32 connections with the stalled clients, at most
FAST_P50_MS = 5.0  # mlflow models serve on the fast flavor: its one-row p50, at most


@dataclass
class Goal:
    """One goal: our figure and the peer's, their ratio (above 1: ours is better), met or not
    (None: shown beside the goals, not judged)."""

    name: str
    peer: str
    ours: float
    baseline: float
    ratio: float
    target: str
    met: bool | None


def _ratio(better: float, worse: float) -> float:
    """`better` / `worse`, infinite when `worse` is 0 (nothing to divide by)."""
    return better / worse if worse else float("inf")


def _best(peers: list[ServerResult], case: str, attr: str, lowest: bool = False) -> float:
    """The best of the peers' `attr` in `case`: the highest, or the lowest if `lowest`."""
    values = [getattr(r.case(case), attr) for r in peers]
    return min(values) if lowest else max(values)


def flavor_goals(fast: list[ServerResult], plain: list[ServerResult]) -> list[Goal]:
    """`mlflow models serve` on the registered model's own flavor (the fast path, wherever it is
    loaded) against the plain scikit-learn flavor: a one-row p50 of at most FAST_P50_MS at one
    connection, and 10x the plain flavor's requests per second at 32 connections."""
    one, many, _ = (c.name for c in CASES)
    p50 = _best(fast, one, "p50_ms", lowest=True)
    rate, plain_rate = _best(fast, many, "req_per_s"), _best(plain, many, "req_per_s")
    peer = "mlflow models serve, plain sklearn flavor (best)"
    return [
        _goal("mlflow models serve, fast flavor: p50 ms, 1 row, 1 conn", "the limit", p50,
              FAST_P50_MS, f"<= {FAST_P50_MS:g} ms", p50 <= FAST_P50_MS, lower=True),
        _goal("mlflow models serve, fast flavor: req/s, 1 row, 32 conns", peer, rate,
              plain_rate, ">= 10x", rate >= 10 * plain_rate, lower=False),
    ]  # fmt: skip


def goals(ours: ServerResult, mlflow: list[ServerResult]) -> list[Goal]:
    """The issue's goals, each as a ratio against `mlflow models serve`'s best variant on the
    plain scikit-learn flavor."""
    one, many, big = (c.name for c in CASES)
    peer = "mlflow models serve, plain sklearn flavor (best)"
    mine32 = ours.case(many)
    req32, p99 = _best(mlflow, many, "req_per_s"), _best(mlflow, many, "p99_ms", lowest=True)
    rows, p50 = _best(mlflow, big, "rows_per_s"), _best(mlflow, one, "p50_ms", lowest=True)
    rss_one_worker = mlflow[0].peak_rss_mib
    cold = min(r.cold_start_s for r in mlflow)
    return [
        Goal(
            "req/s, 1 row, 32 conns",
            peer,
            mine32.req_per_s,
            req32,
            mine32.req_per_s / req32,
            ">= 20x, 0 errors",
            mine32.req_per_s >= 20 * req32 and mine32.errors == 0,
        ),
        Goal(
            "p99 ms, 1 row, 32 conns",
            peer,
            mine32.p99_ms,
            p99,
            p99 / mine32.p99_ms,
            "<= 30 ms and 1/20",
            mine32.p99_ms <= 30 and mine32.p99_ms * 20 <= p99,
        ),
        Goal(
            "rows/s, 100 rows, 8 conns",
            peer,
            ours.case(big).rows_per_s,
            rows,
            ours.case(big).rows_per_s / rows,
            ">= 10x",
            ours.case(big).rows_per_s >= 10 * rows,
        ),
        Goal(
            "p50 ms, 1 row, 1 conn",
            peer,
            ours.case(one).p50_ms,
            p50,
            p50 / ours.case(one).p50_ms,
            "<= 1/5",
            ours.case(one).p50_ms * 5 <= p50,
        ),
        Goal(
            "cold start s",
            peer,
            ours.cold_start_s,
            cold,
            cold / ours.cold_start_s,
            "no slower",
            ours.cold_start_s <= cold,
        ),
        Goal(
            "peak RSS MiB (all processes)",
            mlflow[0].server,
            ours.peak_rss_mib,
            rss_one_worker,
            rss_one_worker / ours.peak_rss_mib,
            "no more",
            ours.peak_rss_mib <= rss_one_worker,
        ),
        Goal(
            "peak PSS MiB (all processes)",
            mlflow[0].server,
            ours.peak_pss_mib,
            mlflow[0].peak_pss_mib,
            mlflow[0].peak_pss_mib / ours.peak_pss_mib,
            "no more",
            ours.peak_pss_mib <= mlflow[0].peak_pss_mib,
        ),
    ]


def ahead_of(ours: ServerResult, peer: ServerResult) -> list[Goal]:
    """Ahead of a peer on the same flavor on every load case: more req/s and a lower p99 at 32
    connections, more rows/s at 100 rows, a lower p50 at one connection."""
    one, many, big = (c.name for c in CASES)
    out = []
    for name, case, attr, lower in (
        ("req/s, 1 row, 32 conns", many, "req_per_s", False),
        ("p99 ms, 1 row, 32 conns", many, "p99_ms", True),
        ("rows/s, 100 rows, 8 conns", big, "rows_per_s", False),
        ("p50 ms, 1 row, 1 conn", one, "p50_ms", True),
    ):
        mine, theirs = getattr(ours.case(case), attr), getattr(peer.case(case), attr)
        out.append(
            Goal(
                name,
                peer.server,
                mine,
                theirs,
                theirs / mine if lower else mine / theirs,
                "ahead",
                mine < theirs if lower else mine > theirs,
            )
        )
    return out


def _goal(
    name: str, peer: str, ours: float, theirs: float, target: str, met: bool | None, lower: bool
) -> Goal:
    """A goal whose ratio is ours over theirs, or theirs over ours if `lower` is better."""
    ratio = _ratio(theirs, ours) if lower else _ratio(ours, theirs)
    return Goal(name, peer, ours, theirs, ratio, target, met)


def front_goals(
    ours: ServerResult, reference: ServerResult, ceiling: ServerResult | None
) -> list[Goal]:
    """The front's goals against the gunicorn front, and the share of the no-op ceiling."""
    one, many, big = (c.name for c in CASES)
    peer = reference.server
    mine32, theirs32 = ours.case(many), reference.case(many)
    rows, their_rows = ours.case(big).rows_per_s, reference.case(big).rows_per_s
    p50, their_p50 = ours.case(one).p50_ms, reference.case(one).p50_ms
    out = [
        _goal(
            "req/s, 1 row, 32 conns",
            peer,
            mine32.req_per_s,
            theirs32.req_per_s,
            ">= 3x, 0 errors",
            mine32.req_per_s >= 3 * theirs32.req_per_s and mine32.errors == 0,
            lower=False,
        ),
        _goal(
            "p99 ms, 1 row, 32 conns",
            peer,
            mine32.p99_ms,
            theirs32.p99_ms,
            f"<= {P99_MS:g} ms",
            mine32.p99_ms <= P99_MS,
            lower=True,
        ),
        _goal(
            "rows/s, 100 rows, 8 conns",
            peer,
            rows,
            their_rows,
            ">= 2x",
            rows >= 2 * their_rows,
            lower=False,
        ),
        _goal(
            "p50 ms, 1 row, 1 conn",
            peer,
            p50,
            their_p50,
            f"no worse (+{P50_MARGIN:.0%} for noise)",
            p50 <= their_p50 * (1 + P50_MARGIN),
            lower=True,
        ),
    ]
    for name, attr, target in (
        ("cold start s", "cold_start_s", "no slower"),
        ("peak RSS MiB (all processes)", "peak_rss_mib", "no more"),
        ("peak PSS MiB (all processes)", "peak_pss_mib", "no more"),
    ):
        mine, theirs = getattr(ours, attr), getattr(reference, attr)
        out.append(_goal(name, peer, mine, theirs, target, mine <= theirs, lower=True))
    if ceiling is not None:
        share = "share of the no-op ceiling, req/s, 1 row, 32 conns"
        top = ceiling.case(many).req_per_s
        out.append(_goal(share, ceiling.server, mine32.req_per_s, top, "shown", None, lower=False))
    return out


def slow_goals(ours: SlowClients, reference: SlowClients | None) -> list[Goal]:
    """With the stalled clients: ours at most SLOW_P99_MS at p99, no errors (wrk's or the
    probe's), all of them open throughout; the gunicorn front's figures beside it, not judged."""
    seen, held, probe = ours.measurement, ours.held, ours.probe
    out = [
        _goal(
            f"p99 ms, {seen.case}",
            f"the limit ({held.open_min:,} stalled open at the fewest)",
            seen.p99_ms,
            SLOW_P99_MS,
            f"<= {SLOW_P99_MS:g} ms, 0 errors, {held.asked:,} open",
            seen.p99_ms <= SLOW_P99_MS
            and seen.errors == 0
            and probe.answered == probe.sent
            and held.open_min >= held.asked,
            lower=True,
        )
    ]
    if reference is not None:
        theirs, probed = reference.measurement, reference.probe
        peer = (
            f"{reference.server} ({theirs.errors:,} wrk errors; probe: {probed.answered} of "
            f"{probed.sent} answered, {probed.timeouts} timeouts)"
        )
        out.append(
            _goal(
                f"req/s, {seen.case}",
                peer,
                seen.req_per_s,
                theirs.req_per_s,
                "shown (the gunicorn front is expected to fail)",
                None,
                lower=False,
            )
        )
    return out


def ceiling_of(results: list[ServerResult]) -> ServerResult | None:
    """The stack's ceiling among `results`: the no-op app on Granian RSGI, if it ran."""
    return next((r for r in results if r.front == CEILING and r.app == NOOP), None)


def judge(
    results: list[ServerResult], peers: Collection[str], slow: Collection[SlowClients] = ()
) -> list[Goal]:
    """Every goal of a run whose first result is this server's: `front_goals` against the
    gunicorn front (kind "reference") and `slow_goals` if they ran, `goals` against the
    `mlflow-plain` results and `flavor_goals` of the `mlflow` ones, then `ahead_of` each
    `mlflow` result and each result whose kind is one of `peers`."""
    ours, *others = results
    targets = []
    reference = next((r for r in others if r.kind == "reference"), None)
    if reference is not None:
        targets += front_goals(ours, reference, ceiling_of(results))
    mine = next((s for s in slow if s.kind == ours.kind), None)
    if mine is not None:
        targets += slow_goals(mine, next((s for s in slow if s.kind == "reference"), None))
    plain = [r for r in others if r.kind == "mlflow-plain"]
    fast = [r for r in others if r.kind == "mlflow"]
    if plain:
        targets += goals(ours, plain)
    if plain and fast:
        targets += flavor_goals(fast, plain)
    for other in others:
        if other.kind in peers or other.kind == "mlflow":
            targets += ahead_of(ours, other)
    return targets


def all_met(targets: Collection[Goal]) -> bool:
    """Whether every judged goal is met (those shown, not judged, do not count)."""
    return all(g.met is not False for g in targets)
