"""Made-up bench results for the tests of goals and reports: no server runs."""

from __future__ import annotations

from bench.load import CASES, Case, Measurement, ServerResult
from bench.slow import Probed, SlowClients
from bench.stall import Held


def measured(case: Case, req_per_s: float, p50: float, p99: float, errors: int = 0) -> Measurement:
    """`case` measured at `req_per_s` with these latencies (ms)."""
    return Measurement(
        case.name,
        case.rows,
        case.connections,
        1,
        req_per_s,
        req_per_s * case.rows,
        p50,
        p99,
        errors,
    )


def result(
    name: str,
    req_per_s: float,
    p50: float,
    p99: float,
    kind: str = "x",
    cases: list[Case] = CASES,
    **more: object,
) -> ServerResult:
    """A server with the same figures in each of `cases`; `more` sets other fields (memory,
    cold start, front, app)."""
    return ServerResult(
        server=name,
        kind=kind,
        cold_start_s=more.pop("cold_start_s", 1.0),  # type: ignore[arg-type]
        measurements=[measured(c, req_per_s, p50, p99) for c in cases],
        **more,  # type: ignore[arg-type]
    )


def slow(kind: str, req_per_s: float, p99: float, **faults: int) -> SlowClients:
    """The slow-client case on a server of `kind`: 1,000 asked, five probe requests; `faults`
    may set wrk's `errors`, the fewest stalled clients open (`open_min`, else 1,000) and the
    probe requests answered (`probe_ok`, else 5)."""
    held = Held(1000, 1000, faults.get("open_min", 1000), 1000, 1000, 0, 0)
    case = Case("1 row, 32 conns, 1,000 stalled", 1, 32)
    answered = faults.get("probe_ok", 5)
    probed = Probed(sent=5, answered=answered, timeouts=5 - answered)
    seen = measured(case, req_per_s, 1.0, p99, faults.get("errors", 0))
    return SlowClients(kind, kind, held, 2, seen, probed)
