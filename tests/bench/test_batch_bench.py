"""bench/batch_ceiling.py's I/O-only bound and bench/batch_goals.py's verdicts, on small files."""

from __future__ import annotations

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from bench.batch_ceiling import io_ceiling
from bench.batch_goals import goals
from bench.batch_input import generate


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_the_io_only_bound_reads_and_writes_every_row_unchanged(fmt, tmp_path) -> None:
    source, output = tmp_path / f"in.{fmt}", tmp_path / f"out.{fmt}"
    generate(2_500, source)
    figures = io_ceiling(source, fmt, output, chunk_size=1_000)
    assert figures["rows"] == 2_500 and figures["rows_per_second"] > 0
    read = pacsv.read_csv if fmt == "csv" else pq.read_table
    assert read(output).equals(read(source))


def test_the_io_only_rate_is_shown_beside_the_ceiling_share_not_judged() -> None:
    run = {"rows_per_second": 400_000, "peak_rss_mib": 500}
    result = {
        "runs": {"pandas csv": run},
        "ceiling": {"best": 2_000_000},
        "io_only": {"csv": {"rows_per_second": 1_000_000}},
    }
    verdicts = goals(result)
    assert verdicts["pandas csv >= 80% of the runtime's 2,000,000"] == "FAIL (20%)"
    shown = verdicts["csv read and written alone, as a share of the runtime's"]
    assert shown == "shown (1,000,000 rows/s, 50%)"
