"""MLflow's scoring protocol for POST /invocations, with MLflow's own parsers and serializer.

MLflow (and pandas behind it) is imported on the first /invocations request, never before: a
worker that only answers /predict on the fast path does not carry it in memory.
"""

from __future__ import annotations

import inspect
import logging
from io import StringIO
from typing import TYPE_CHECKING, Any

from serving.errors import ApiError

if TYPE_CHECKING:
    from serving.model_store import LoadedModel

log = logging.getLogger("serving.scoring")

CSV_TYPE = "text/csv"
MAX_MESSAGE = 500


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
    )


def plain_model(model: LoadedModel) -> Any:
    """The model's pyfunc (loaded on first use); 503 if it cannot load."""
    try:
        return model.pyfunc
    except Exception as exc:
        log.warning("cannot load the plain model for /invocations", exc_info=True)
        raise ApiError(
            "model_not_ready",
            f"the plain model behind /invocations cannot load: {type(exc).__name__}",
            status=503,
        ) from None


def parse_input(
    raw: bytes, mimetype: str, body: Any, model: LoadedModel
) -> tuple[Any, dict | None]:
    """MLflow's own parsers, by content type: (DataFrame or arrays, params).

    `body` is the decoded JSON body (None for CSV).
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
        if not isinstance(body, dict):
            raise ApiError(
                "bad_request",
                f"{scoring_server.REQUIRED_INPUT_FORMAT}; got a JSON array or scalar",
            )
        parsed = scoring_server._parse_json_data(body, pyfunc.metadata, schema)
        return parsed.data, parsed.params
    except MlflowException as exc:
        raise _mlflow_error(exc) from None


def predict(model: LoadedModel, data: Any, params: dict | None) -> tuple[str, Any]:
    """Predict as MLflow's scoring server does: (its JSON serialization, the raw predictions)."""
    from mlflow.exceptions import MlflowException
    from mlflow.pyfunc import scoring_server

    pyfunc = model.pyfunc
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
    out = StringIO()
    scoring_server.predictions_to_json(predictions, out)
    return out.getvalue(), predictions
