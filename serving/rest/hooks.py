"""What every request gets, however it is answered: its id, the model version headers, one JSON
access-log line and its metrics.

`install_hooks(app, store)` adds Flask's before/after hooks for that; `account` is the shared
tail (log line and metrics) that the hooks and the predict lane both call. Views may set
`g.model` (the model that answered), `g.rows` (rows answered) and `g.predicted` (the labels).
"""

from __future__ import annotations

import time
from typing import Any

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import Map

from serving.metrics import UNMATCHED, Recorder, show_model
from serving.request_log import log_request, request_id
from serving.rest.answers import answer_headers
from serving.stores import Stores

# Set in the environ of a request whose answer was given up on (a 504 already went out): its
# late answer is neither logged nor counted again.
ABANDONED = "serving.abandoned"
# Set by the front in the environ: the seconds the request's body took to arrive (its `read`
# stage in the metrics).
READ_SECONDS = "serving.read_seconds"


def account(
    recorder: Recorder,
    *,
    endpoint: str,
    method: str,
    path: str,
    status: int,
    started: float,
    rid: str,
    version: str | None,
    rows: int | None = None,
    error: str | None = None,
    predicted: Any = None,
) -> None:
    """The access-log line and the metrics of one answered request."""
    log_request(
        method=method,
        path=path,
        status=status,
        started=started,
        request_id=rid,
        model_version=version,
        rows=rows,
        error=error,
    )
    recorder.record(endpoint, method, status, time.perf_counter() - started, rows, predicted)


def rule_of(url_map: Map, path: str, method: str) -> str:
    """The URL rule a request matches, for the metrics' bounded `endpoint` label: a path that
    exists only with other methods (a 405) is its rule too; an unknown path is "unmatched"."""
    adapter = url_map.bind("localhost")
    try:
        rule, _ = adapter.match(path, method, return_rule=True)
    except MethodNotAllowed as exc:
        if not exc.valid_methods:
            return UNMATCHED
        try:
            rule, _ = adapter.match(path, next(iter(exc.valid_methods)), return_rule=True)
        except HTTPException:
            return UNMATCHED
    except HTTPException:
        return UNMATCHED
    return rule.rule


def install_hooks(app: Flask, stores: Stores) -> Recorder:
    """Count and log every request of `app`; returns the recorder, for the predict lane."""
    recorder = Recorder()
    store = stores.default

    @app.before_request
    def _start() -> None:
        ctx = g._get_current_object()  # the proxies cost a lookup on every use: resolve once
        ctx.started = time.perf_counter()
        ctx.request_id = request_id(request.environ.get("HTTP_X_REQUEST_ID", ""))
        ctx.model = None
        ctx.rows = None
        ctx.error_code = None
        for served in stores.all:
            model = served.current
            if model is not None:
                show_model(model.info)

    @app.after_request
    def _finish(response: Response) -> Response:
        req, ctx = request._get_current_object(), g._get_current_object()
        if req.environ.get(ABANDONED):
            return response
        rid = getattr(ctx, "request_id", "") or request_id("")
        model = getattr(ctx, "model", None) or store.current
        version = model.info.version if model is not None else None
        for name, value in answer_headers(rid, version):
            response.headers[name] = value
        status = response.status_code
        error = getattr(ctx, "error_code", None)  # set by the error handlers
        if error is None and status >= 400 and response.is_json:  # a view's own error answer
            detail = (response.get_json(silent=True) or {}).get("error")
            error = detail.get("code") if isinstance(detail, dict) else None
        account(
            recorder,
            endpoint=req.url_rule.rule
            if req.url_rule is not None
            else rule_of(app.url_map, req.path, req.method),
            method=req.method,
            path=req.path,
            status=status,
            started=getattr(ctx, "started", None) or time.perf_counter(),
            rid=rid,
            version=version,
            rows=getattr(ctx, "rows", None),
            error=error,
            predicted=getattr(ctx, "predicted", None),
        )
        return response

    return recorder
