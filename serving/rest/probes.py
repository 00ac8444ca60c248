"""The probes: GET / (what this is, and links), /health (alive), /ready (a model answers),
/ping (MLflow's scoring-server probe), /version (which one), /metrics.

/ready means the default model (the model URI's, e.g. the champion) is loaded and answers its
own logged input example: a challenger that does not load never makes the server unready.
/ping answers as `mlflow models serve` does (200 and a newline once the model is loaded; 404
before), for MLflow's `ScoringServerClient.wait_server_ready` and SageMaker-style hosts.
/version gives the default version's identity, lineage and training metrics, which inference
path serves it and the reload state (the last refusal, the registry's health), and under
`models` every served alias with the version it serves (or why none).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g

from serving import metrics
from serving.errors import ApiError
from serving.evidence.hook import current as evidence
from serving.model.loaded import LoadedModel
from serving.rest.errors import json_response
from serving.store import ModelNotReady, ModelStore
from serving.stores import Stores


def serving_model(store: ModelStore) -> LoadedModel:
    """The model this request is answered with (remembered for its headers), or a 503."""
    try:
        g.model = store.get()
    except ModelNotReady as exc:
        raise ApiError("model_not_ready", str(exc), status=503) from None
    return g.model


def served(store: ModelStore) -> dict[str, Any]:
    """One served model URI, as /version lists it: its alias and the version it serves, or why
    it serves none."""
    model = store.current
    entry: dict[str, Any] = {"alias": store.alias, "model_uri": store.model_uri}
    if model is None:
        return {**entry, "version": None, "ready": False, "reason": store.reason}
    info = model.info
    entry.update(version=info.version, ready=True, resolved_uri=info.resolved_uri)
    entry.update(run_id=info.run_id, inference=info.inference, loaded_at=info.loaded_at)
    if store.refused is not None:
        entry["refused"] = store.status()["refused"]
    return entry


def probes_blueprint(stores: Stores, reload_interval: float) -> Blueprint:
    probes = Blueprint("probes", __name__)
    store = stores.default

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
                    "invocations": "/invocations",
                    "v2": "/v2",
                    "drift": "/drift",
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

    @probes.get("/ping")
    def ping() -> Response:
        if store.ensure() is None:
            raise ApiError("model_not_ready", store.reason, status=404)
        return Response("\n", status=200, mimetype="application/json")

    @probes.get("/version")
    def version() -> Response:
        model = serving_model(store)
        interval = reload_interval if store.watches_alias else 0
        reload = {"interval_seconds": interval, **store.status()}
        answer = {**model.info.as_dict(), "reload": reload}
        answer["models"] = [served(s) for s in stores]
        if (running := evidence()) is not None and running.shadow is not None:
            answer["shadow"] = running.shadow_status()
        return json_response(answer)

    @probes.get("/metrics")
    def metrics_view() -> Response:
        body, content_type = metrics.render()
        return Response(body, status=200, headers={"Content-Type": content_type})

    return probes
