"""The probes: GET / (what this is, and links), /health (alive), /ready (a model answers),
/version (which one), /metrics.

/ready means a model is loaded and answers its own logged input example; /version gives the
served version's identity, lineage and training metrics, which inference path serves it, and
the reload state (the last refusal, the registry's health).
"""

from __future__ import annotations

from flask import Blueprint, Response, g

from serving import metrics
from serving.errors import ApiError
from serving.model.loaded import LoadedModel
from serving.rest.errors import json_response
from serving.store import ModelNotReady, ModelStore


def serving_model(store: ModelStore) -> LoadedModel:
    """The model this request is answered with (remembered for its headers), or a 503."""
    try:
        g.model = store.get()
    except ModelNotReady as exc:
        raise ApiError("model_not_ready", str(exc), status=503) from None
    return g.model


def probes_blueprint(store: ModelStore, reload_interval: float) -> Blueprint:
    probes = Blueprint("probes", __name__)

    @probes.get("/")
    def index() -> Response:
        model = store.current
        return json_response(
            {
                "service": "Titanic survival prediction",
                "model": {"name": model.info.name, "version": model.info.version}
                if model is not None
                else None,
                "ready": model is not None,
                "links": {
                    "predict": "/predict",
                    "docs": "/docs",
                    "openapi": "/openapi.json",
                    "version": "/version",
                    "ready": "/ready",
                    "metrics": "/metrics",
                },
            }
        )

    @probes.get("/health")
    def health() -> Response:
        return json_response({"status": "alive"})

    @probes.get("/ready")
    def ready() -> Response:
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

    @probes.get("/version")
    def version() -> Response:
        model = serving_model(store)
        interval = reload_interval if store.watches_alias else 0
        reload = {"interval_seconds": interval, **store.status()}
        return json_response({**model.info.as_dict(), "reload": reload})

    @probes.get("/metrics")
    def metrics_view() -> Response:
        body, content_type = metrics.render()
        return Response(body, status=200, headers={"Content-Type": content_type})

    return probes
