"""The report of a run: a Markdown table, the same figures as JSON, and a PNG chart.

All figures come from one run on one machine: compare them as ratios.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.goals import Goal
from bench.load import CASES, ServerResult, Soak


def _agreement(result: ServerResult, ours: ServerResult) -> str:
    """Whether `result` gave our labels to the 100-row body."""
    if result.kind == "ceiling":
        return "n/a (no model)"
    return "yes" if result.labels == ours.labels else "NO"


def markdown(
    results: list[ServerResult],
    targets: list[Goal],
    meta: dict[str, Any],
    endurance: Soak | None = None,
) -> str:
    """The run as Markdown: every case of every server, cold start, memory and agreement with
    this server (`results[0]`), the share of the ceiling, the goals, and the soak."""
    lines = [
        f"# Benchmark: {meta['model_uri']} (version {meta['version']})",
        "",
        f"{meta['when']}, {meta['cpus']} cores, wrk 1 thread, {meta['seconds']} s per case.",
        "",
        "| server | case | req/s | rows/s | p50 ms | p99 ms | errors |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
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
        for r in results
    ]
    ceiling = next((r for r in results if r.kind == "ceiling"), None)
    if ceiling is not None:
        many = CASES[1].name
        share = results[0].case(many).req_per_s / ceiling.case(many).req_per_s
        lines += [
            "",
            f"At {many}, this server answers {share:.0%} of the requests per second of the "
            f"stack's ceiling: {ceiling.server}, with no model and no parsing "
            "(bench/noop_app.py).",
        ]
    lines += [
        "",
        "| goal | against | ours | theirs | ratio | target | met |",
        "| --- | --- | ---: | ---: | ---: | --- | --- |",
    ]
    lines += [
        f"| {g.name} | {g.peer} | {g.ours:,.2f} | {g.baseline:,.2f} | {g.ratio:.1f}x | "
        f"{g.target} | {'yes' if g.met else 'NO'} |"
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


def chart(results: list[ServerResult], path: Path) -> None:
    """One panel per case: throughput on a log scale (the servers differ by orders of
    magnitude), each bar labelled with its figure."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, axes = plt.subplots(1, len(CASES), figsize=(4 * len(CASES) + 2.5, 3.6), sharey=True)
    names = [r.server for r in results]
    for ax, case in zip(axes, CASES, strict=True):
        unit = "rows/s" if case.rows > 1 else "req/s"
        values = [
            r.case(case.name).rows_per_s if case.rows > 1 else r.case(case.name).req_per_s
            for r in results
        ]
        colors = {"ours": "#2a7", "ceiling": "#bcd"}
        bars = ax.barh(names, values, color=[colors.get(r.kind, "#999") for r in results])
        ax.bar_label(bars, labels=[f"{v:,.0f}" for v in values], padding=3, fontsize=8)
        ax.set_xscale("log")
        ax.set_xlim(right=max(values) * 8)
        ax.set_title(case.name)
        ax.set_xlabel(f"{unit} (log scale)")
    axes[0].invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(
    out: Path,
    results: list[ServerResult],
    targets: list[Goal],
    meta: dict[str, Any],
    endurance: Soak | None,
) -> str:
    """Write latest.md, latest.json and latest.png under `out`; return the Markdown."""
    out.mkdir(parents=True, exist_ok=True)
    report = markdown(results, targets, meta, endurance)
    (out / "latest.md").write_text(report)
    (out / "latest.json").write_text(
        json.dumps(
            {
                **meta,
                "results": [asdict(r) for r in results],
                "goals": [asdict(g) for g in targets],
                "soak": asdict(endurance) if endurance else None,
            },
            indent=2,
        )
        + "\n"
    )
    chart(results, out / "latest.png")
    return report
