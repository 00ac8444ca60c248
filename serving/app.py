"""The Flask app factory: /predict, /invocations, /health, /ready, /version.

`create_app(settings, model_store=None)` does all the work when called (never at import): it
builds a `ModelStore` unless given one and tries to load the model once. A server that cannot
load its model stays up: /health answers 200, /ready and the prediction endpoints 503 with the
reason, and (under gunicorn) each worker retries the load every `load_retry_seconds`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from flask import Flask, Request, Response, g, request

from serving import metrics, openapi, scoring
from serving.admin import admin_blueprint
from serving.config import Settings
from serving.contract import decode_json, parse_batch
from serving.deadline import limit_request_time
from serving.errors import ApiError, json_response, register_error_handlers
from serving.model_store import LoadedModel, ModelNotReady, ModelStore
from serving.predict_lane import PredictLane
from serving.reload import ReloadFlag
from serving.request_log import log_request, request_id

log = logging.getLogger("serving.app")

JSON_TYPES = {"application/json"}
LENIENT_TYPES = {"", "application/x-www-form-urlencoded"}  # curl --data, or no header at all
CSV_TYPE = scoring.CSV_TYPE
TRUE, FALSE = {"true", "1", "yes"}, {"false", "0", "no", ""}


def create_app(settings: Settings | None = None, model_store: ModelStore | None = None) -> Flask:
    settings = settings or Settings.from_env()
    if model_store is None:
        model_store = ModelStore.from_settings(settings)
        model_store.reload_flag = ReloadFlag.create()  # (python -m serving makes one per server)
        model_store.try_load()
    store = model_store

    app = Flask(__name__, root_path=str(Path(__file__).parent))
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.extensions["serving"] = {"settings": settings, "store": store}
    register_error_handlers(app)
    recorder = metrics.instrument(app, store)  # GET /metrics, and counts every request
    openapi.register(app, settings, store)  # GET /openapi.json and /docs

    @app.before_request
    def _start() -> None:
        ctx = g._get_current_object()  # the proxies cost a lookup on every use: resolve once
        ctx.started = time.perf_counter()
        ctx.request_id = request_id(request.environ.get("HTTP_X_REQUEST_ID", ""))
        ctx.model = None
        ctx.rows = None

    @app.after_request
    def _finish(response: Response) -> Response:
        req, ctx = request._get_current_object(), g._get_current_object()
        request_id = getattr(ctx, "request_id", "")
        headers = response.headers
        headers["X-Request-ID"] = request_id
        model: LoadedModel | None = getattr(ctx, "model", None) or store.current
        version = model.info.version if model is not None else None
        if version is not None:
            headers["X-Model-Version"] = version
        status = response.status_code
        error = None
        if status >= 400 and response.is_json:
            error = (response.get_json(silent=True) or {}).get("error", {}).get("code")
        log_request(
            method=req.method,
            path=req.path,
            status=status,
            started=getattr(ctx, "started", None) or time.perf_counter(),
            request_id=request_id,
            model_version=version,
            rows=getattr(ctx, "rows", None),
            error=error,
        )
        return response

    def serving_model() -> LoadedModel:
        try:
            g.model = store.get()
        except ModelNotReady as exc:
            raise ApiError("model_not_ready", str(exc), status=503) from None
        return g.model

    @app.get("/health")
    def health():
        return json_response({"status": "alive"})

    @app.get("/ready")
    def ready():
        model = store.ensure()
        if model is None:
            return json_response({"ready": False, "reason": store.reason}, 503)
        try:  # ready means answering: the model predicts its own input example
            model.predict(list(model.probe_rows))
        except Exception as exc:
            reason = f"the model does not answer its input example: {type(exc).__name__}"
            return json_response({"ready": False, "reason": reason}, 503)
        return json_response(
            {"ready": True, "version": model.info.version, "inference": model.info.inference}
        )

    @app.get("/version")
    def version():
        model = serving_model()
        return json_response({**model.info.as_dict(), **store.status()})

    @app.post("/predict")
    def predict():
        req = request._get_current_object()
        proba = _flag("proba", req)
        raw = _body(req, csv=False)
        model = serving_model()
        body = _json_body(raw, req)
        batch = parse_batch(body, model.spec, settings.max_rows)
        ctx = g._get_current_object()
        ctx.rows = len(batch.rows)
        labels, probabilities = model.predict(batch.rows, proba=proba)
        ctx.predicted = labels  # counted by class in serving.metrics
        answer: dict[str, Any] = {"prediction": labels, "index": batch.index}
        if probabilities is not None:
            answer["probability"] = probabilities
        answer["model_version"] = model.info.version
        return json_response(answer)

    @app.post("/invocations")
    def invocations():
        raw = _body(request, csv=True)
        model = serving_model()
        body = None if request.mimetype == CSV_TYPE else _json_body(raw, request)
        data, params = scoring.parse_input(raw, request.mimetype, body, model)
        rows = len(data) if hasattr(data, "__len__") else None
        g.rows = rows
        if rows is not None and rows > settings.max_rows:
            raise ApiError(
                "too_many_rows",
                f"the request has {rows} rows, more than {settings.max_rows}",
                status=413,
                limit_rows=settings.max_rows,
            )
        answer, g.predicted = scoring.predict(model, data, params)  # counted by serving.metrics
        return Response(answer, mimetype="application/json")

    # Hot reload and operator endpoints (serving.reload, serving.admin); request time limit.
    app.register_blueprint(admin_blueprint(store))
    limit_request_time(app, settings.request_timeout, endpoints=("predict", "invocations"))
    # POST /predict's common case is answered below Flask, exactly as the view above answers it.
    app.wsgi_app = PredictLane(  # type: ignore[method-assign]
        app.wsgi_app,
        store,
        recorder,
        max_rows=settings.max_rows,
        max_body_bytes=settings.max_body_bytes,
        request_timeout=settings.request_timeout,
    )
    return app


def _flag(name: str, req: Request) -> bool:
    if not req.query_string:  # the common case: no parameters at all
        return False
    value = req.args.get(name)
    if value is None:
        return False
    if value.lower() in TRUE:
        return True
    if value.lower() in FALSE:
        return False
    raise ApiError(
        "invalid_parameter",
        f"query parameter {name!r} must be true or false, got {value[:40]!r}",
        parameter=name,
    )


def _json_body(raw: bytes, req: Request) -> Any:
    """The body as JSON; a form-encoded body that is not JSON is an unsupported type (415)."""
    try:
        return decode_json(raw)
    except ApiError:
        if req.mimetype == "application/x-www-form-urlencoded":
            raise _unsupported("a form body that is not JSON", req) from None
        raise


def _unsupported(what: str, req: Request) -> ApiError:
    return ApiError(
        "unsupported_media_type",
        f"cannot read {what}; send JSON with Content-Type: application/json",
        status=415,
        content_type=req.content_type,
    )


def _body(req: Request, csv: bool) -> bytes:
    """The raw body, if its content type is one we read (JSON; CSV for /invocations)."""
    mimetype = req.mimetype
    known = mimetype in JSON_TYPES or mimetype in LENIENT_TYPES or mimetype.endswith("+json")
    if not known and not (csv and mimetype == CSV_TYPE):
        raise _unsupported(f"Content-Type {req.content_type!r}", req)
    charset = req.mimetype_params.get("charset", "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise ApiError(
            "unsupported_charset", f"only UTF-8 is supported, got {charset!r}", status=415
        )
    return req.get_data(cache=False)  # over MAX_CONTENT_LENGTH: werkzeug raises 413
