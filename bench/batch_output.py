"""A batch job's output, read back and checked against the server's own answers.

`read_output` reads a file, or a directory of part files, as one Arrow table (CSV columns as
strings, as written); `server_check` scores a sample of the input through the server's path
(JSON records, the contract's parser, `LoadedModel.predict`) and compares it bit for bit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np


def read_output(path: Path) -> Any:
    """A batch output as one Arrow table: a file, or a directory of part files in name order."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    files = sorted(path.glob("part-*")) if path.is_dir() else [path]
    tables = []
    for file in files:
        if file.suffix == ".parquet":
            tables.append(pq.read_table(file))
        else:
            names = pacsv.open_csv(file).schema.names
            types = pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()))
            tables.append(pacsv.read_csv(file, convert_options=types))
    return pa.concat_tables(tables)


def server_check(scorer: Any, source: Path, output: Path, sample: int) -> dict[str, Any]:
    """The server's own path (JSON records -> the contract's parser -> LoadedModel.predict) on
    `sample` rows spread over the file, against the batch output's answers."""
    import pyarrow.parquet as pq

    from serving.contract import parse_batch

    table = pq.read_table(source)
    out = read_output(output)
    rows = np.linspace(0, table.num_rows - 1, min(sample, table.num_rows)).astype(int)
    records = table.take(rows).to_pylist()
    body = json.loads(json.dumps(records))
    labels, proba = scorer.loaded.predict(parse_batch(body, scorer.spec, len(body)).rows, True)
    got = out.take(rows)
    same_labels = got.column("prediction").to_pylist() == labels
    same_proba = got.column("probability").to_pylist() == proba
    return {"rows": len(rows), "identical": bool(same_labels and same_proba)}
