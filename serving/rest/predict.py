"""POST /predict: the article's contract, through Flask (every case the predict lane passes on).

The body is pandas column-oriented JSON (or column lists, or records; serving.contract); the
answer has one 0/1 int per row in `pd.DataFrame(body)` order (serving.rest.answers), with
`?proba=true` the survival probability of each row too.
"""

from __future__ import annotations

from flask import Blueprint, Response, g, request

from serving.contract import parse_batch, require_rows
from serving.metrics import Recorder
from serving.rest.answers import predict_answer
from serving.rest.errors import json_response
from serving.rest.probes import serving_model
from serving.rest.requests import flag, json_body, read_body
from serving.store import ModelStore


def predict_blueprint(store: ModelStore, max_rows: int, recorder: Recorder) -> Blueprint:
    predict = Blueprint("predict", __name__)

    @predict.post("/predict")
    def predict_view() -> Response:
        req = request._get_current_object()
        proba = flag("proba", req)
        raw = read_body(req)
        model = serving_model(store)
        batch = require_rows(parse_batch(json_body(raw, req), model.spec, max_rows))
        if batch.unknown:
            recorder.out_of_domain("/predict", batch.unknown)
        ctx = g._get_current_object()
        ctx.rows = len(batch.rows)
        labels, probabilities = model.predict(batch.rows, proba=proba)
        ctx.predicted = labels  # counted by class in the metrics
        return json_response(predict_answer(labels, batch.index, model.info.version, probabilities))

    return predict
