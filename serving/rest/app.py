"""The Flask app factory: every endpoint, the hooks, the error answers, the predict lane.

`create_app(settings, store, reload_flag)` does all the work when called (never at import): it
builds a `ModelStore` unless given one and tries to load the model once. A server that cannot
load its model stays up: /health answers 200, /ready and the prediction endpoints 503 with the
reason, and (under `python -m serving`) each worker's watcher retries the load.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from serving.config import Settings
from serving.rest.admin import admin_blueprint
from serving.rest.docs import docs_blueprint
from serving.rest.errors import register_error_handlers
from serving.rest.hooks import install_hooks
from serving.rest.invocations import invocations_blueprint
from serving.rest.limits import limit_request_time
from serving.rest.openapi import openapi_blueprint
from serving.rest.predict import predict_blueprint
from serving.rest.predict_lane import PredictLane
from serving.rest.probes import probes_blueprint
from serving.store import ModelStore
from serving.watcher import ReloadFlag

TIME_LIMITED = ("predict.predict_view", "invocations.invocations_view")


def create_app(
    settings: Settings | None = None,
    model_store: ModelStore | None = None,
    reload_flag: ReloadFlag | None = None,
) -> Flask:
    settings = settings or Settings.from_env()
    if model_store is None:
        model_store = ModelStore.from_settings(settings)
        model_store.try_load()
    if reload_flag is None:
        reload_flag = ReloadFlag.create()  # python -m serving makes one per server instead
    store = model_store

    app = Flask(__name__, root_path=str(Path(__file__).parent))
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.extensions["serving"] = {"settings": settings, "store": store, "reload_flag": reload_flag}
    register_error_handlers(app)
    recorder = install_hooks(app, store)
    app.register_blueprint(probes_blueprint(store, settings.reload_interval))
    app.register_blueprint(predict_blueprint(store, settings.max_rows))
    app.register_blueprint(invocations_blueprint(store, settings.max_rows))
    app.register_blueprint(admin_blueprint(store, reload_flag))
    app.register_blueprint(openapi_blueprint(store, settings))
    app.register_blueprint(docs_blueprint())
    limit_request_time(app, settings.request_timeout, endpoints=TIME_LIMITED)
    # POST /predict's common case is answered below Flask, exactly as the view answers it.
    app.wsgi_app = PredictLane(  # type: ignore[method-assign]
        app.wsgi_app,
        store,
        recorder,
        max_rows=settings.max_rows,
        max_body_bytes=settings.max_body_bytes,
        request_timeout=settings.request_timeout,
    )
    return app
