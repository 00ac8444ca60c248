"""JSON bodies as the protocols that allow NaN send them, read once.

MLflow's scoring client (`ScoringServerClient.invoke`, through pandas) and Triton's HTTP client
(through rapidjson) write a missing number as the bare token `NaN`, which strict JSON (orjson)
refuses and Python's own `json` reads, as MLflow's scoring server does. `loads_allowing_nan`
takes the fast strict parser first and falls back only for such bodies. Python's parser
recurses: a body nested deeper than its stack allows is refused as orjson refuses one nested
past its own depth limit (a JSONDecodeError, never a RecursionError).
"""

from __future__ import annotations

import json
from typing import Any

import orjson

DEEP = "the JSON is nested too deeply"


def loads_allowing_nan(raw: bytes) -> Any:
    """`raw` as JSON, NaN and Infinity tokens included (as float); raises orjson's
    JSONDecodeError (its message) if it is not JSON even so, or is nested too deeply."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as strict:
        try:
            return json.loads(raw)
        except ValueError:
            raise strict from None
        except RecursionError:
            raise orjson.JSONDecodeError(DEEP, "", 0) from None
