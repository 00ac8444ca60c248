"""POST /invocations: MLflow's scoring protocol, with MLflow's own parsers and serializer.

Exactly what `mlflow models serve` accepts: JSON with one of `dataframe_split`,
`dataframe_records`, `instances`, `inputs` (and optional `params`), `text/csv` or Parquet
(`application/vnd.apache.parquet`); answered `{"predictions": [...]}` by MLflow's pyfunc of the
served version (`?alias=` or X-Model-Alias for another served alias). The Content-Type is taken
or refused by MLflow's own rules (`scoring_content_type`): its media type exactly, the only
parameter `charset=utf-8`; only a request with no Content-Type at all, which MLflow's server
answers with a 500, is read as JSON here. Errors have MLflow's shape (serving.rest.dialects).
MLflow (and pandas behind it) is imported on the first /invocations request, never before: a
worker that only answers /predict on the fast path does not carry it in memory.
"""

from __future__ import annotations

import inspect
import logging
import math
import threading
import time
import weakref
from io import BytesIO, StringIO
from typing import Any

import numpy as np
import orjson
from flask import Blueprint, Response, g, request

from serving.contract import Batch, InputSpec, out_of_domain, require_rows
from serving.errors import ApiError
from serving.evidence.hook import observe
from serving.jsonio import loads_allowing_nan
from serving.metrics import Recorder
from serving.model.loaded import LoadedModel
from serving.rest.hooks import READ_SECONDS
from serving.rest.probes import serving_model
from serving.rest.requests import CSV_TYPE, requested_alias
from serving.stores import Stores

log = logging.getLogger("serving.rest.invocations")

MAX_MESSAGE = 500
JSON_TYPE = "application/json"
PARQUET_TYPE = "application/vnd.apache.parquet"
SCORING_TYPES = (CSV_TYPE, JSON_TYPE, PARQUET_TYPE)  # MLflow's CONTENT_TYPES, in its order
_pyfuncs: weakref.WeakKeyDictionary[LoadedModel, Any] = weakref.WeakKeyDictionary()
_pyfunc_lock = threading.Lock()


def _mlflow_error(exc: Any) -> ApiError:
    """MLflow's parsing errors in our shape: its message (short, no payload echo), no trace."""
    message = exc.message.split("\nInput: ")[0].strip()
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE] + "..."
    status = exc.get_http_status_code()
    return ApiError(
        str(exc.error_code).lower(),
        message,
        status=status if 400 <= status < 500 else 400,
        error_code=str(exc.error_code),
    )


def scoring_content_type(header: str | None) -> str:
    """The media type of a scoring request, by `mlflow models serve`'s own rules (its
    `invocations`): split at ";", the first part exactly one of its types, the parameters only
    `charset`, which must be utf-8 (in any case); else a 415 with MLflow's message. No header
    at all is JSON here (MLflow's server fails with a 500 on it)."""
    if header is None:
        return JSON_TYPE
    mime_type, *pairs = (part.strip() for part in header.split(";"))
    parameters = {key: value for key, _, value in (pair.partition("=") for pair in pairs)}
    if parameters.get("charset", "utf-8").lower() != "utf-8":
        raise ApiError("unsupported_charset", "The scoring server only supports UTF-8", 415)
    if unexpected := set(parameters).difference({"charset"}):
        from mlflow.pyfunc.scoring_server import SCORING_PROTOCOL_CHANGE_INFO

        raise ApiError(
            "unsupported_media_type",
            f"Unrecognized content type parameters: {', '.join(sorted(unexpected))}. "
            f"{SCORING_PROTOCOL_CHANGE_INFO}",
            415,
        )
    if mime_type not in SCORING_TYPES:
        raise ApiError(
            "unsupported_media_type",
            "This predictor only supports the following content types: Types: "
            f"{list(SCORING_TYPES)}. Got '{header[:200]}'.",
            415,
        )
    return mime_type


def pyfunc_of(model: LoadedModel) -> Any:
    """MLflow's pyfunc of the loaded version's directory, loaded on first use per version."""
    pyfunc = _pyfuncs.get(model)
    if pyfunc is None:
        with _pyfunc_lock:
            pyfunc = _pyfuncs.get(model)
            if pyfunc is None:
                import mlflow.pyfunc

                pyfunc = _pyfuncs[model] = mlflow.pyfunc.load_model(model.info.path)
    return pyfunc


def plain_model(model: LoadedModel) -> Any:
    """The model's pyfunc (loaded on first use); 503 if it cannot load."""
    try:
        return pyfunc_of(model)
    except Exception as exc:
        log.warning("cannot load the plain model for /invocations", exc_info=True)
        raise ApiError(
            "model_not_ready",
            f"the plain model behind /invocations cannot load: {type(exc).__name__}",
            status=503,
        ) from None


def decode_body(raw: bytes) -> Any:
    """A JSON body (NaN tokens read as MLflow's `json.loads` reads them), or a 400
    (BAD_REQUEST, as MLflow's `_decode_json_input` answers)."""
    if not raw.strip():
        raise ApiError(
            "bad_request",
            "Invalid input. The request body is empty; send a JSON dictionary with exactly one "
            "of the input fields",
            error_code="BAD_REQUEST",
        )
    try:
        return loads_allowing_nan(raw)  # MLflow's own client sends NaN for a missing number
    except orjson.JSONDecodeError as exc:
        raise ApiError(
            "bad_request",
            f"Invalid input. Ensure that input is a valid JSON formatted string. Error: '{exc}'",
            error_code="BAD_REQUEST",
        ) from None


def parse_input(
    raw: bytes, mimetype: str, body: Any, model: LoadedModel
) -> tuple[Any, dict | None]:
    """MLflow's own parsers, by content type: (DataFrame or arrays, params).

    `body` is the decoded JSON body (None for CSV and Parquet).
    """
    from mlflow.exceptions import MlflowException
    from mlflow.pyfunc import scoring_server

    pyfunc = plain_model(model)
    schema = pyfunc.metadata.get_input_schema()
    try:
        if mimetype == CSV_TYPE:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise ApiError("malformed_csv", "the CSV body is not valid UTF-8") from None
            if not text.strip():
                raise ApiError("empty_body", "the request body is empty; send a CSV with a header")
            return scoring_server.parse_csv_input(StringIO(text), schema=schema), None
        if mimetype == PARQUET_TYPE:
            if not raw:
                raise ApiError("empty_body", "the request body is empty; send a Parquet file")
            return scoring_server.parse_parquet_input(BytesIO(raw)), None
        if not isinstance(body, dict):
            raise ApiError(
                "bad_request",
                f"Invalid input. {scoring_server.REQUIRED_INPUT_FORMAT}. Received a "
                f"{'list' if isinstance(body, list) else type(body).__name__}.",
                error_code="BAD_REQUEST",
            )
        parsed = scoring_server._parse_json_data(body, pyfunc.metadata, schema)
        return parsed.data, parsed.params
    except MlflowException as exc:
        raise _mlflow_error(exc) from None


def predict(model: LoadedModel, data: Any, params: dict | None) -> tuple[str, Any, float]:
    """Predict as MLflow's scoring server does: (its JSON serialization, the raw predictions,
    the seconds the serialization took)."""
    from mlflow.exceptions import MlflowException
    from mlflow.pyfunc import scoring_server

    pyfunc = plain_model(model)
    try:
        if "params" in inspect.signature(pyfunc.predict).parameters:
            predictions = pyfunc.predict(data, params=params)
        else:
            predictions = pyfunc.predict(data)
    except MlflowException as exc:
        raise _mlflow_error(exc) from None
    except Exception as exc:  # the model could not evaluate what the client sent
        log.warning("model failed on an /invocations input", exc_info=True)
        raise ApiError(
            "prediction_failed",
            "the model could not evaluate this input; check it against the model's "
            f"signature ({type(exc).__name__}: {str(exc)[:200]})",
            status=422,
        ) from None
    began = time.perf_counter()
    out = StringIO()
    scoring_server.predictions_to_json(predictions, out)
    return out.getvalue(), predictions, time.perf_counter() - began


def as_frame(data: Any) -> Any:
    """MLflow's parsed input as a DataFrame, whatever the request's format: `dataframe_*` and CSV
    parse to one already; `inputs` and `instances` to a dict of column arrays or a list of
    records, which MLflow's schema enforcement turns into the same DataFrame for a column
    signature. Columns of different lengths are left as they are too, for MLflow's schema
    enforcement to refuse (a frame would pad the short ones with nulls). Anything else (a
    tensor) is left as it is."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    try:
        if isinstance(data, dict):
            columns = {k: np.asarray(v).ravel() for k, v in data.items()}
            if len({len(column) for column in columns.values()}) > 1:
                return data
            return pd.DataFrame({k: pd.Series(column) for k, column in columns.items()})
        if isinstance(data, list) and all(isinstance(r, dict) for r in data):
            return pd.DataFrame(data)
    except (ValueError, TypeError):
        return data
    return data


def count_rows(data: Any) -> int | None:
    """Rows in a parsed input: a frame's length, a tensor's first dimension."""
    shape = getattr(data, "shape", None)
    if shape is not None:
        return int(shape[0]) if len(shape) else 1
    if isinstance(data, list | tuple):
        return len(data)
    return None


def apply_domain(frame: Any, spec: InputSpec) -> dict[str, int]:
    """The contract's domain rule on a DataFrame (serving.contract.apply_domain): a required
    value outside its column's training domain is a 422; an optional one becomes missing.
    Returns the optional values made missing, by column."""
    unknown: dict[str, int] = {}
    for column in spec.bounded:
        if column.name not in frame.columns:
            continue
        domain = column.domain
        assert domain is not None
        cells = frame[column.name]
        outside = []
        for position, value in enumerate(cells.tolist()):
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            try:
                admitted = domain.admits(value)
            except TypeError:  # a value of another type (MLflow types it later, or refuses it)
                continue
            if not admitted:
                if column.required:
                    raise out_of_domain(column, value, str(frame.index[position]))
                outside.append(position)
        if outside:
            missing = np.nan if column.type.numeric else None
            frame.iloc[outside, frame.columns.get_loc(column.name)] = missing
            unknown[column.name] = len(outside)
    return unknown


def invocations_blueprint(stores: Stores, max_rows: int, recorder: Recorder) -> Blueprint:
    invocations = Blueprint("invocations", __name__)

    @invocations.post("/invocations")
    def invocations_view() -> Response:
        mimetype = scoring_content_type(request.headers.get("Content-Type"))
        raw = request.get_data(cache=False)  # over MAX_CONTENT_LENGTH: werkzeug raises 413
        model = serving_model(stores.by_alias(requested_alias(request)))
        began = time.perf_counter()
        body = decode_body(raw) if mimetype == JSON_TYPE else None
        decoded = time.perf_counter()
        data, params = parse_input(raw, mimetype, body, model)
        data = as_frame(data)
        rows = count_rows(data)
        g.rows = rows
        if rows is not None and rows > max_rows:
            raise ApiError(
                "too_many_rows",
                f"the request has {rows} rows, more than {max_rows} (--max-rows, SERVING_MAX_ROWS)",
                status=413,
                limit_rows=max_rows,
            )
        if rows == 0:
            require_rows(Batch(index=[], rows=[]))
        if hasattr(data, "columns") and model.spec.bounded:
            unknown = apply_domain(data, model.spec)
            if unknown:
                recorder.out_of_domain("/invocations", unknown)
        validated = time.perf_counter()
        answer, g.predicted, encode = predict(model, data, params)  # counted by the hooks
        predicted = time.perf_counter() - encode
        if hasattr(data, "columns"):  # a frame of rows (not a tensor): drift and shadow
            observe(model, data, g.predicted)
        stages = (decoded - began, validated - decoded, predicted - validated, encode)
        read = request.environ.get(READ_SECONDS)
        recorder.stages("/invocations", model.info.version, (read, *stages))
        return Response(answer, mimetype="application/json")

    return invocations
