"""The batch benchmark's input: passengers sampled from data/raw/test.csv, as CSV or Parquet.

`generate(rows, path)` samples rows with replacement (seeded), gives them fresh PassengerIds and
writes them in pieces of 100,000, so that a million rows never sit in memory as one frame.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

TEST_CSV = Path(__file__).resolve().parent.parent / "data" / "raw" / "test.csv"


def generate(rows: int, path: Path, seed: int = 7) -> None:
    """`rows` passengers sampled from test.csv, written in pieces (no full frame in memory);
    Parquet columns typed as pandas reads test.csv (Pclass int64, Age double, ...)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = pd.read_csv(TEST_CSV)
    rng = np.random.default_rng(seed)
    piece = 100_000
    writer = None
    for start in range(0, rows, piece):
        n = min(piece, rows - start)
        sample = source.iloc[rng.integers(0, len(source), n)].reset_index(drop=True)
        sample["PassengerId"] = np.arange(start + 1, start + n + 1)
        if path.suffix == ".parquet":
            table = pa.Table.from_pandas(sample, preserve_index=False)
            writer = writer or pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
        else:
            sample.to_csv(path, mode="w" if start == 0 else "a", header=start == 0, index=False)
    if writer is not None:
        writer.close()
