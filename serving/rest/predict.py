"""POST /predict: the article's contract, through Flask (every case the predict lane passes on).

The body is pandas column-oriented JSON (or column lists, or records; serving.contract); the
answer has one 0/1 int per row in `pd.DataFrame(body)` order (serving.rest.answers), with
`?proba=true` the survival probability of each row too. `?alias=challenger` (or the header
X-Model-Alias) asks for another served alias than the default.
"""

from __future__ import annotations

import time

from flask import Blueprint, Response, g, request

from serving.contract import parse_batch, require_rows
from serving.evidence.hook import observe
from serving.metrics import Recorder
from serving.rest.answers import predict_answer
from serving.rest.errors import json_response
from serving.rest.hooks import READ_SECONDS
from serving.rest.probes import serving_model
from serving.rest.requests import flag, json_body, read_body, requested_alias
from serving.stores import Stores


def predict_blueprint(stores: Stores, max_rows: int, recorder: Recorder) -> Blueprint:
    predict = Blueprint("predict", __name__)

    @predict.post("/predict")
    def predict_view() -> Response:
        req = request._get_current_object()
        proba = flag("proba", req)
        raw = read_body(req)
        model = serving_model(stores.by_alias(requested_alias(req)))
        began = time.perf_counter()
        body = json_body(raw, req)
        decoded = time.perf_counter()
        batch = require_rows(parse_batch(body, model.spec, max_rows))
        if batch.unknown:
            recorder.out_of_domain("/predict", batch.unknown)
        ctx = g._get_current_object()
        ctx.rows = len(batch.rows)
        validated = time.perf_counter()
        labels, probabilities = model.predict(batch.rows, proba=proba)
        ctx.predicted = labels  # counted by class in the metrics
        predicted = time.perf_counter()
        observe(model, batch.rows, labels)  # drift and shadow, off the response path
        version = model.info.version
        answer = json_response(predict_answer(labels, batch.index, version, probabilities))
        stages = (decoded - began, validated - decoded, predicted - validated,
                  time.perf_counter() - predicted)  # fmt: skip
        recorder.stages("/predict", version, (req.environ.get(READ_SECONDS), *stages))
        return answer

    return predict
