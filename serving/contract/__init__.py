"""The /predict contract: a request body -> row keys and rows typed by the model's input schema.

Accepted bodies (JSON):

- columns, the article's pandas orient: ``{"Age": {"53": 28, "111": null}, ...}``; rows are the
  union of the row keys across columns, in the order ``pd.DataFrame(body)`` gives them (first
  appearance, column by column);
- lists of equal length per column: ``{"Age": [28, null], ...}`` (row keys "0", "1", ...);
- records: ``[{"Age": 28, ...}, ...]`` (row keys "0", "1", ...).

Values are typed by the schema: ``long``/``integer`` -> int, ``double``/``float`` -> float,
``string`` -> str, ``boolean`` -> bool; null (or an absent cell) -> None, which only optional
columns accept. Columns outside the schema are ignored. This path uses no pandas: a fast path
consumes the typed rows directly. Every problem raises `ApiError` naming the column and row.

The training domain. A model may carry, beside its signature, the values and ranges its training
data held (MLmodel's `metadata.domain`, written by training from `training/schema.py`): a
required column's value outside it is refused (422 `out_of_domain`, naming the column, the value
and what is allowed); an optional column's value outside it is treated as unknown (None, as if
absent) and counted in `Batch.unknown`, which the server exports in /metrics.

The common shape (an object of columns that all hold the same row keys, every required column
present) takes a shortcut that accepts values of the exact type as they are; anything else, and
the first value that is not plainly valid, goes through the same checks in the same order, so
both ways give the same batch or the same error.
"""

from serving.contract.kinds import KINDS, Kind
from serving.contract.parse import decode_json, parse_batch
from serving.contract.spec import (
    Batch,
    Column,
    Domain,
    InputSpec,
    apply_domain,
    out_of_domain,
    require_rows,
)

__all__ = [
    "KINDS",
    "Batch",
    "Column",
    "Domain",
    "InputSpec",
    "Kind",
    "apply_domain",
    "decode_json",
    "out_of_domain",
    "parse_batch",
    "require_rows",
]
