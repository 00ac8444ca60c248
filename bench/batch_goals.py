"""The batch benchmark's goals (issue 18), each judged 'pass' or 'FAIL' with its figure.

Parquet >= 150,000 rows/s and CSV >= 100,000 rows/s on the pandas engine, >= 80% of the
runtime's ceiling (with the file's read and write alone shown as a share of it: the bound of any
job on that format), a peak RSS of at most 600 MiB, the server's answers on every sampled row, and
each Spark engine's output the pandas engine's. A goal the run did not measure is left out.
"""

from __future__ import annotations

from typing import Any

GOALS = {"parquet": 150_000, "csv": 100_000}
CEILING_SHARE = 0.8
MAX_RSS_MIB = 600


def goals(result: dict[str, Any]) -> dict[str, str]:
    """Each goal of issue 18 that this run measured: 'pass' or 'FAIL', with the figures."""
    verdicts: dict[str, str] = {}
    runs = result["runs"]
    ceiling = result["ceiling"].get("best")
    for fmt, goal in GOALS.items():
        run = runs.get(f"pandas {fmt}")
        if run is None:
            continue
        rate = run["rows_per_second"]
        verdicts[f"pandas {fmt} >= {goal:,} rows/s"] = _verdict(rate >= goal, f"{rate:,}")
        if ceiling:
            share = rate / ceiling
            verdicts[f"pandas {fmt} >= {CEILING_SHARE:.0%} of the runtime's {ceiling:,}"] = (
                _verdict(share >= CEILING_SHARE, f"{share:.0%}")
            )
            io_rate = result.get("io_only", {}).get(fmt, {}).get("rows_per_second")
            if io_rate:
                verdicts[f"{fmt} read and written alone, as a share of the runtime's"] = (
                    f"shown ({io_rate:,} rows/s, {io_rate / ceiling:.0%})"
                )
        rss = run["peak_rss_mib"]
        verdicts[f"pandas {fmt} peak RSS <= {MAX_RSS_MIB} MiB"] = _verdict(
            rss <= MAX_RSS_MIB, f"{rss} MiB"
        )
    if "server_check" in result:
        check = result["server_check"]
        verdicts["the server's answers"] = _verdict(check["identical"], f"{check['rows']} rows")
    for kind in ("spark-local", "spark-standalone"):
        if "same_as_pandas" in runs.get(kind, {}):
            verdicts[f"{kind}: the pandas engine's output"] = _verdict(
                runs[kind]["same_as_pandas"], "every cell"
            )
    return verdicts


def _verdict(ok: bool, figure: str) -> str:
    return f"{'pass' if ok else 'FAIL'} ({figure})"
