"""GET /drift: each served version's drift window against its training profile, as JSON
(serving.evidence: the same figures as `serving_drift_psi` and `serving_drift_missing_rate`)."""

from __future__ import annotations

from flask import Blueprint, Response

from serving.evidence.hook import Evidence
from serving.rest.errors import json_response


def drift_blueprint(evidence: Evidence) -> Blueprint:
    drift = Blueprint("drift", __name__)

    @drift.get("/drift")
    def drift_view() -> Response:
        return json_response(evidence.drift_report())

    return drift
