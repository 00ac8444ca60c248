"""The report of a run: Markdown tables and the same figures as JSON, written with the chart.

The servers through every case; their cold start, memory and agreement with this server; the
front matrix (each front with the no-op app and with this server's app, and the command each
ran); the slow-client case; the goals with their ratios; the soak. The PNG beside them is drawn
by bench/chart.py. All figures come from one run on one machine: compare them as ratios.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.chart import chart
from bench.fronts import FRONTS, MODEL, NOOP
from bench.goals import Goal, ceiling_of
from bench.load import BIG, MANY, ServerResult, Soak
from bench.slow import SlowClients


def _agreement(result: ServerResult, ours: ServerResult) -> str:
    """Whether `result` gave our labels to the 100-row body."""
    if result.app == NOOP:
        return "n/a (no model)"
    return "yes" if result.labels == ours.labels else "NO"


def _times(ratio: float) -> str:
    return f"{ratio:.2f}x" if math.isfinite(ratio) else "n/a"


def _met(goal: Goal) -> str:
    return "shown" if goal.met is None else "yes" if goal.met else "NO"


def _cell(result: ServerResult | None, case: str, attr: str, fmt: str = ",.0f") -> str:
    """`attr` of `result`'s measurement of `case`, or a dash if it did not run."""
    if result is None or all(m.case != case for m in result.measurements):
        return "-"
    return format(getattr(result.case(case), attr), fmt)


def _matrix_row(
    name: str, noop: ServerResult | None, model: ServerResult | None, ours: ServerResult
) -> str:
    """One front's row: its no-op and model figures side by side."""
    cells = [
        name,
        _cell(noop, MANY.name, "req_per_s"),
        _cell(noop, MANY.name, "p99_ms", ".2f"),
        _cell(model, MANY.name, "req_per_s"),
        _cell(model, MANY.name, "p99_ms", ".2f"),
        "-",
        _cell(model, BIG.name, "rows_per_s"),
        _cell(model, BIG.name, "p99_ms", ".2f"),
        "-",
        "-",
        "-",
    ]
    if noop is not None and model is not None:
        cells[5] = f"{model.case(MANY.name).req_per_s / noop.case(MANY.name).req_per_s:.0%}"
    if model is not None:
        cells[8:11] = [
            f"{model.cold_start_s:.2f}",
            f"{model.peak_pss_mib:.0f}",
            _agreement(model, ours),
        ]
    errors = sum(m.errors for r in (noop, model) if r is not None for m in r.measurements)
    return "| " + " | ".join([*cells, str(errors)]) + " |"


def matrix_lines(results: Sequence[ServerResult]) -> list[str]:
    """The front matrix: a row per front, its no-op and model figures side by side; then this
    server and the gunicorn front (from the main table) for comparison; then the commands."""
    rows = {(r.front, r.app): r for r in results if r.kind == "front"}
    if not rows:
        return []
    lines = [
        "",
        "## Front matrix",
        "",
        "| front | no-op req/s | no-op p99 ms | model req/s | model p99 ms | model / no-op | "
        "model rows/s, 100 rows | model p99 ms, 100 rows | model cold start s | "
        "model peak PSS MiB | same answer as ours | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    lines += [
        _matrix_row(f.name, rows.get((f.name, NOOP)), rows.get((f.name, MODEL)), results[0])
        for f in FRONTS
    ]
    lines += [
        _matrix_row(f"{r.server} *", None, r, results[0])
        for r in results
        if r.kind in ("ours", "reference")
    ]
    lines += [
        "",
        f"req/s and p99 at {MANY.name}; rows/s at {BIG.name}. Rows marked * are the full servers "
        "of the main table (with their agent, on the registry), measured there for its duration.",
        "",
        "| front row | command |",
        "| --- | --- |",
    ]
    lines += [f"| {r.server} | `{r.command}` |" for r in rows.values()]
    lines += [
        "",
        "The model rows run with `SERVING_MODEL_URI` set to the version baked by "
        "`python -m serving.bake` and a fresh `PROMETHEUS_MULTIPROC_DIR` at each start.",
    ]
    return lines


def slow_lines(slow: Sequence[SlowClients], timeouts: float | None = None) -> list[str]:
    """The slow-client case, one row per server; `timeouts`: this server's header and body
    timeouts in it."""
    if not slow:
        return []
    lines = [
        "",
        "## Slow clients",
        "",
        "| server | case | req/s | p50 ms | p99 ms | wrk errors | of which late | "
        "probe answered | probe timeouts | stalled open (fewest..most) | "
        "closed by the server (replaced) | failed to open |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    for s in slow:
        m, h, p = s.measurement, s.held, s.probe
        lines.append(
            f"| {s.server} | {m.case} | {m.req_per_s:,.0f} | {m.p50_ms:.2f} | {m.p99_ms:.2f} | "
            f"{m.errors:,} | {m.timeouts:,} | {p.answered} of {p.sent} | {p.timeouts} | "
            f"{h.open_min:,}..{h.open_max:,} of {h.asked:,} | {h.closed_by_server:,} | "
            f"{h.failed:,} |"
        )
    lines += [
        "",
        "Half of the stalled connections stop in their request head, half after their head and "
        "half of their body; one the server closes is replaced at once. wrk and the probe give "
        f"up on a request after {slow[0].wrk_timeout_s:g} s; wrk counts such a timeout only "
        "when the answer comes late (never answered, a request is not counted at all), so the "
        "probe (one request at a time on a fresh connection, at most 10 a second) shows whether "
        "the server still answers.",
    ]
    if timeouts is not None:
        lines[-1] += (
            f" This server runs with `--header-timeout {timeouts:g} --body-timeout {timeouts:g}` "
            "here, above the case's duration, so that its timeouts close none of them."
        )
    return lines


def markdown(
    results: list[ServerResult],
    targets: list[Goal],
    meta: dict[str, Any],
    endurance: Soak | None = None,
    slow: Sequence[SlowClients] = (),
) -> str:
    """The run as Markdown: every case of every server, cold start, memory and agreement with
    this server (`results[0]`), the front matrix, the share of the ceiling, the slow-client
    case, the goals, and the soak."""
    servers = [r for r in results if r.kind != "front"]
    lines = [
        f"# Benchmark: {meta['model_uri']} (version {meta['version']})",
        "",
        f"{meta['when']}, {meta['cpus']} cores, load average {meta['load_average']}, wrk 1 "
        f"thread, {meta['seconds']} s per case ({meta.get('front_seconds', '-')} s in the front "
        f"matrix), {meta.get('elapsed_s', 0) / 60:.1f} min in all.",
        "",
        "| server | case | req/s | rows/s | p50 ms | p99 ms | errors |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in servers:
        for m in r.measurements:
            lines.append(
                f"| {r.server} | {m.case} | {m.req_per_s:,.0f} | {m.rows_per_s:,.0f} | "
                f"{m.p50_ms:.2f} | {m.p99_ms:.2f} | {m.errors} |"
            )
    lines += [
        "",
        "| server | cold start s | peak RSS MiB (sum) | peak PSS MiB (sum) | "
        "100-row answer same as ours |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    lines += [
        f"| {r.server} | {r.cold_start_s:.2f} | {r.peak_rss_mib:.0f} | {r.peak_pss_mib:.0f} | "
        f"{_agreement(r, results[0])} |"
        for r in servers
    ]
    lines += matrix_lines(results)
    ceiling = ceiling_of(results)
    if ceiling is not None:
        share = results[0].case(MANY.name).req_per_s / ceiling.case(MANY.name).req_per_s
        lines += [
            "",
            f"At {MANY.name}, this server answers {share:.0%} of the requests per second of the "
            f"stack's ceiling: {ceiling.server}, with no model and no parsing "
            "(bench/noop_app.py).",
        ]
    lines += slow_lines(slow, meta.get("stall_timeouts_s"))
    lines += [
        "",
        "## Goals",
        "",
        "| goal | against | ours | theirs | ratio | target | met |",
        "| --- | --- | ---: | ---: | ---: | --- | --- |",
    ]
    lines += [
        f"| {g.name} | {g.peer} | {g.ours:,.2f} | {g.baseline:,.2f} | {_times(g.ratio)} | "
        f"{g.target} | {_met(g)} |"
        for g in targets
    ]
    if endurance is not None:
        lines += [
            "",
            f"Soak: {endurance.requests:,} one-passenger requests at 32 connections, "
            f"{endurance.req_per_s:,.0f} req/s, p99 {endurance.p99_ms:.2f} ms, "
            f"{endurance.errors} errors; largest RSS change of any process after warm-up "
            f"{endurance.max_growth:.1%} (target: 0 errors, <= 5%): "
            f"{'met' if endurance.met else 'NOT met'}.",
        ]
    return "\n".join(lines) + "\n"


def _finite(value: Any) -> Any:
    """`value` with every infinite float as None, for strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def write(
    out: Path,
    results: list[ServerResult],
    targets: list[Goal],
    meta: dict[str, Any],
    endurance: Soak | None,
    slow: Sequence[SlowClients] = (),
) -> str:
    """Write latest.md, latest.json and latest.png under `out`; return the Markdown."""
    out.mkdir(parents=True, exist_ok=True)
    report = markdown(results, targets, meta, endurance, slow)
    (out / "latest.md").write_text(report)
    (out / "latest.json").write_text(
        json.dumps(
            _finite(
                {
                    **meta,
                    "results": [asdict(r) for r in results],
                    "slow_clients": [asdict(s) for s in slow],
                    "goals": [asdict(g) for g in targets],
                    "soak": asdict(endurance) if endurance else None,
                }
            ),
            indent=2,
        )
        + "\n"
    )
    chart(results, out / "latest.png", slow)
    return report
