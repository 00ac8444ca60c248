"""The chart of a run: a PNG of horizontal bars, the servers above and the fronts below.

Above, one panel per load case with every server's requests (or rows) per second; below, the
front matrix (each front with the no-op app and with this server's app at 32 connections, and
with the app at 100 rows) and the slow-client case. The servers differ by orders of magnitude,
so the scales are logarithmic, but for the slow clients'.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.fronts import FRONTS, MODEL, NOOP
from bench.load import BIG, CASES, MANY, ServerResult
from bench.slow import SlowClients


def _bars(
    ax: Any, values: list[float], colors: list[str], title: str, offset: float = 0, log: bool = True
) -> Any:
    """Horizontal bars at y = 0, 1, ... (+ `offset`), labelled with their figures, on a log
    scale unless not `log` (the servers differ by orders of magnitude)."""
    from matplotlib.ticker import NullFormatter

    height = 0.4 if offset else 0.8
    ys = [y + offset for y in range(len(values))]
    bars = ax.barh(ys, values, height=height, color=colors)
    ax.bar_label(bars, labels=[f"{v:,.0f}" for v in values], padding=3, fontsize=7)
    if log:
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlim(min([v for v in values if v > 0], default=1) / 3, max([*values, 1]) * 8)
    ax.set_title(title, fontsize=9)
    return bars


def _names(ax: Any, names: list[str]) -> None:
    """`names` as the panel's y labels, top down."""
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_ylim(len(names) - 0.5, -0.5)


def chart(results: list[ServerResult], path: Path, slow: Sequence[SlowClients] = ()) -> None:
    """Above, the servers, one panel per case; below, the front matrix (no-op and model at 32
    connections, model at 100 rows) and the slow-client case."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    servers = [r for r in results if r.kind not in ("front", "shadow", "shadow-reference")]
    fronts = {(r.front, r.app): r for r in results if r.kind == "front"}
    colors = {"ours": "#2a7", "ours-v2-baseline": "#2a7", "ours-v2-rest": "#5b9",
              "ours-v2-grpc": "#8cb", "reference": "#d83"}  # fmt: skip
    fig, axes = plt.subplots(
        2, len(CASES), figsize=(16, 3 + 0.45 * (len(servers) + len(FRONTS))), squeeze=False
    )
    for i, (ax, case) in enumerate(zip(axes[0], CASES, strict=True)):
        big = case.rows > 1
        values = [_value(r, case.name, "rows_per_s" if big else "req_per_s") for r in servers]
        _bars(ax, values, [colors.get(r.kind, "#999") for r in servers], case.name)
        ax.set_xlabel(f"{'rows/s' if big else 'req/s'} (log scale)", fontsize=8)
        _names(ax, [r.server for r in servers] if i == 0 else [""] * len(servers))

    def figures(app: str, case: str, unit: str) -> list[float]:
        rows = [fronts.get((f.name, app)) for f in FRONTS]
        return [_value(r, case, unit) for r in rows]

    ax = axes[1][0]
    _bars(ax, figures(NOOP, MANY.name, "req_per_s"), ["#bcd"] * len(FRONTS), "", offset=-0.2)
    _bars(ax, figures(MODEL, MANY.name, "req_per_s"), ["#6a9"] * len(FRONTS), "", offset=0.2)
    ax.set_title(f"front matrix, {MANY.name}: no-op (light) and model", fontsize=9)
    ax.set_xlabel("req/s (log scale)", fontsize=8)
    _names(ax, [f.name for f in FRONTS])
    ax = axes[1][1]
    _bars(ax, figures(MODEL, BIG.name, "rows_per_s"), ["#6a9"] * len(FRONTS), "")
    ax.set_title(f"front matrix, {BIG.name}: model", fontsize=9)
    ax.set_xlabel("rows/s (log scale)", fontsize=8)
    _names(ax, [""] * len(FRONTS))
    ax = axes[1][2]
    if slow:
        values = [s.measurement.req_per_s for s in slow]
        _bars(ax, values, [colors.get(s.kind, "#999") for s in slow], "", offset=0.2, log=False)
        ax.set_title(slow[0].measurement.case, fontsize=9)
        ax.set_xlim(0, max([*values, 1]) * 1.4)
        ax.set_xlabel("req/s", fontsize=8)
        _names(ax, [""] * len(slow))
        for y, s in enumerate(slow):
            ax.text(
                0.02,
                y - 0.05,
                f"{s.server}\np99 {s.measurement.p99_ms:.1f} ms, probe {s.probe.answered} of "
                f"{s.probe.sent} answered",
                transform=ax.get_yaxis_transform(),
                fontsize=7,
            )
    else:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _value(result: ServerResult | None, case: str, attr: str) -> float:
    """`attr` of `result`'s measurement of `case`; 0 if it did not run."""
    if result is None or all(m.case != case for m in result.measurements):
        return 0.0
    return getattr(result.case(case), attr)
