"""The goals of this server's own cases: against the gunicorn front it had before, with the
stalled clients, its V2 endpoints against its /predict, and with `--shadow` against itself.

`front_goals` holds it to 3x the gunicorn front's requests per second at 32 connections (a p99
of at most P99_MS), 2x its rows per second, its p50 within P50_MARGIN, a cold start and memory
no worse, with the share of the no-op ceiling shown; `slow_goals` to a p99 of at most
SLOW_P99_MS with the stalled clients all open; `v2_goals` V2 REST to /predict's cost within
V2_MARGIN (gRPC shown); `shadow_goals` to SHADOW_RATE of its rate and a p99 within SHADOW_P99.
The thresholds and the `Goal` they make are bench/goals.py's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench.fronts import CEILING, REFERENCE_FRONT
from bench.goals import (
    P50_MARGIN,
    P99_MS,
    SHADOW_P99,
    SHADOW_RATE,
    SLOW_P99_MS,
    V2_MARGIN,
    Goal,
    goal,
)
from bench.lane_cost import lane_budget, machine_us
from bench.load import CASES, ServerResult
from bench.slow import SlowClients

RATE_GOALS = ((1, 3, "req/s"), (100, 2, "rows/s"))  # (rows a request, factor, of what)


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
        goal(
            "req/s, 1 row, 32 conns",
            peer,
            mine32.req_per_s,
            theirs32.req_per_s,
            ">= 3x, 0 errors",
            mine32.req_per_s >= 3 * theirs32.req_per_s and mine32.errors == 0,
            lower=False,
        ),
        goal(
            "p99 ms, 1 row, 32 conns",
            peer,
            mine32.p99_ms,
            theirs32.p99_ms,
            f"<= {P99_MS:g} ms",
            mine32.p99_ms <= P99_MS,
            lower=True,
        ),
        goal(
            "rows/s, 100 rows, 8 conns",
            peer,
            rows,
            their_rows,
            ">= 2x",
            rows >= 2 * their_rows,
            lower=False,
        ),
        goal(
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
        out.append(goal(name, peer, mine, theirs, target, mine <= theirs, lower=True))
    if ceiling is not None:
        share = "share of the no-op ceiling, req/s, 1 row, 32 conns"
        top = ceiling.case(many).req_per_s
        out.append(goal(share, ceiling.server, mine32.req_per_s, top, "shown", None, lower=False))
    return out


def bound_goals(
    lane: Mapping[int, Mapping[str, Any]],
    gunicorn_noop: ServerResult,
    ceiling: ServerResult,
    cpus: int,
) -> list[Goal]:
    """Shown, not judged: for each rate goal (3x the requests at 1 row, 2x the rows at 100)
    the most the lane may cost per request for it (bench/lane_cost.py's `lane_budget`, from the
    machine time per request of the no-op app on gunicorn and on Granian RSGI), beside the
    lane's cost with no HTTP at all (the least it costs in a server). The no-op rows ran one
    row at 32 connections; a larger body costs both fronts more, which only lowers the budget
    of the 100-row goal: its figure here is an upper bound."""
    many = CASES[1].name
    theirs = machine_us(gunicorn_noop.case(many).req_per_s, cpus)
    mine = machine_us(ceiling.case(many).req_per_s, cpus)
    peer = (
        f"the no-op rows: {REFERENCE_FRONT} {theirs:,.0f} us, {CEILING} {mine:,.0f} us of "
        "machine time per request"
    )
    out = []
    for rows, factor, what in RATE_GOALS:
        cost = lane.get(rows)
        if cost is None:
            continue
        budget = lane_budget(theirs, mine, factor)
        out.append(
            goal(
                f"lane us per request without HTTP, {rows} row{'s' if rows > 1 else ''}: "
                f"the budget of {factor}x the {what}",
                peer,
                cost["full_us"],
                max(budget, 0.0),
                f"shown: {factor}x needs <= {budget:,.0f} us (the bare core alone: "
                f"{cost['bare_us']:,.0f})",
                None,
                lower=True,
            )
        )
    return out


def slow_goals(ours: SlowClients, reference: SlowClients | None) -> list[Goal]:
    """With the stalled clients: ours at most SLOW_P99_MS at p99, no errors (wrk's or the
    probe's), all of them open throughout; the gunicorn front's figures beside it, not judged."""
    seen, held, probe = ours.measurement, ours.held, ours.probe
    out = [
        goal(
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
            goal(
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


def v2_goals(ours: ServerResult, v2: list[ServerResult]) -> list[Goal]:
    """Each V2 endpoint's one-row figures against this server's /predict measured in turn on
    the same process (kind "ours-v2-baseline"; else `ours`): judged for REST (no more cost,
    within V2_MARGIN, no errors), shown for gRPC."""
    one, many, _ = (c.name for c in CASES)
    ours = next((r for r in v2 if r.kind == "ours-v2-baseline"), ours)
    peer = ours.server
    out = []
    for result in (r for r in v2 if r.kind != "ours-v2-baseline"):
        judged = result.kind == "ours-v2-rest"
        protocol = "V2 REST" if judged else "V2 gRPC"
        rate, p50 = result.case(many), result.case(one).p50_ms
        mine_rate, mine_p50 = ours.case(many).req_per_s, ours.case(one).p50_ms
        out += [
            goal(f"{protocol}: req/s, 1 row, 32 conns", peer, rate.req_per_s, mine_rate,
                  f">= {1 - V2_MARGIN:.0%} of /predict, 0 errors" if judged else "shown",
                  rate.req_per_s >= (1 - V2_MARGIN) * mine_rate and rate.errors == 0
                  if judged else None, lower=False),
            goal(f"{protocol}: p50 ms, 1 row, 1 conn", peer, p50, mine_p50,
                  f"no worse (+{V2_MARGIN:.0%} for noise)" if judged else "shown",
                  p50 <= mine_p50 * (1 + V2_MARGIN) if judged else None, lower=True),
        ]  # fmt: skip
    return out


def shadow_goals(ours: ServerResult, shadowed: ServerResult) -> list[Goal]:
    """This server with `--shadow` (bench/shadow.py) against `ours`, the same server without
    it, one row at 32 connections in the same run: SHADOW_RATE of the rate, a p99 within
    SHADOW_P99, no errors."""
    many = CASES[1].name
    mine, theirs = shadowed.case(many), ours.case(many)
    return [
        goal("with --shadow: req/s, 1 row, 32 conns", ours.server, mine.req_per_s,
              theirs.req_per_s, f">= {SHADOW_RATE:.0%}, 0 errors",
              mine.req_per_s >= SHADOW_RATE * theirs.req_per_s and mine.errors == 0,
              lower=False),
        goal("with --shadow: p99 ms, 1 row, 32 conns", ours.server, mine.p99_ms, theirs.p99_ms,
              f"<= +{SHADOW_P99:.0%}", mine.p99_ms <= theirs.p99_ms * (1 + SHADOW_P99),
              lower=True),
    ]  # fmt: skip
