"""The stack's ceiling for `make bench`: Flask under gunicorn's sync workers, answering POST
/predict with a fixed JSON body after reading (not parsing) the request. No model, no parsing:
what the HTTP stack alone costs."""

from __future__ import annotations

from flask import Flask, Response, request

ANSWER = b'{"prediction":[0]}'


def create_app() -> Flask:
    app = Flask("noop")

    @app.post("/predict")
    def predict() -> Response:
        request.get_data()
        return Response(ANSWER, mimetype="application/json")

    @app.get("/ready")
    def ready() -> Response:
        return Response(b"{}", mimetype="application/json")

    return app
