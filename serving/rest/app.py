"""The Flask app factory: every endpoint, the hooks, the error answers, the predict lane.

`create_app(settings, store, reload_flag)` does all the work when called (never at import): it
builds a `ModelStore` unless given one and tries to load the model once, and returns the WSGI
app with POST /predict's common case answered below Flask (serving.rest.predict_lane). A server
that cannot load its model stays up: /health answers 200, /ready and the prediction endpoints
503 with the reason, and (under `python -m serving`) each worker's watcher retries the load.
`build_app` returns the same Flask app without the lane, and the lane, for the ASGI front
(serving.rest.asgi), which runs the lane itself.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from serving.config import Settings
from serving.evidence.hook import Evidence, install
from serving.rest.admin import admin_blueprint
from serving.rest.docs import docs_blueprint
from serving.rest.drift import drift_blueprint
from serving.rest.errors import register_error_handlers
from serving.rest.hooks import install_hooks
from serving.rest.invocations import invocations_blueprint
from serving.rest.openapi import openapi_blueprint
from serving.rest.predict import predict_blueprint
from serving.rest.predict_lane import PredictLane, WsgiLane
from serving.rest.probes import probes_blueprint
from serving.rest.v2 import v2_blueprint
from serving.rundir import ReloadFlag
from serving.store import ModelStore
from serving.stores import Stores, as_stores


def build_app(
    settings: Settings, stores: ModelStore | Stores, reload_flag: ReloadFlag | None = None
) -> tuple[Flask, PredictLane]:
    """The Flask app (every endpoint) and the predict lane that may answer in front of it."""
    stores = as_stores(stores)
    app = Flask(__name__, root_path=str(Path(__file__).parent))
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.extensions["serving"] = {
        "settings": settings,
        "store": stores.default,
        "stores": stores,
        "reload_flag": reload_flag,
    }
    register_error_handlers(app)
    evidence = install(Evidence.from_settings(settings, stores))  # drift, shadow: off the path
    recorder = install_hooks(app, stores)
    app.register_blueprint(probes_blueprint(stores, settings.reload_interval))
    app.register_blueprint(predict_blueprint(stores, settings.max_rows, recorder))
    app.register_blueprint(invocations_blueprint(stores, settings.max_rows, recorder))
    app.register_blueprint(v2_blueprint(stores, settings.max_rows, recorder))
    app.register_blueprint(admin_blueprint(stores, reload_flag))
    app.register_blueprint(openapi_blueprint(stores, settings))
    app.register_blueprint(docs_blueprint())
    app.register_blueprint(drift_blueprint(evidence))
    lane = PredictLane(stores, recorder, settings.max_rows, settings.max_body_bytes)
    return app, lane


def create_app(
    settings: Settings | None = None,
    model_store: ModelStore | Stores | None = None,
    reload_flag: ReloadFlag | None = None,
) -> Flask:
    """The WSGI app, for any WSGI server (and Flask's test client)."""
    settings = settings or Settings.from_env()
    if model_store is None:
        model_store = Stores.from_settings(settings)
        model_store.try_load()
    if reload_flag is None:
        reload_flag = ReloadFlag.create()  # python -m serving makes one per server instead
    app, lane = build_app(settings, model_store, reload_flag)
    app.wsgi_app = WsgiLane(app.wsgi_app, lane)  # type: ignore[method-assign]
    return app
