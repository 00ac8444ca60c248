"""The /predict answer and the headers every answer carries, defined once.

The Flask view and the predict lane both build their answers here, so the two paths cannot
drift apart:

    {"prediction": [1, 0], "index": ["53", "111"], "model_version": "3"}   (+ "probability")
"""

from __future__ import annotations

from typing import Any

REQUEST_ID_HEADER = "X-Request-ID"
VERSION_HEADER = "X-Model-Version"


def predict_answer(
    labels: list[int],
    index: list[str],
    version: str | None,
    probabilities: list[float] | None = None,
) -> dict[str, Any]:
    """One prediction per row (0/1), the row keys in the same order, the serving version."""
    answer: dict[str, Any] = {"prediction": labels, "index": index}
    if probabilities is not None:
        answer["probability"] = probabilities
    answer["model_version"] = version
    return answer


def answer_headers(request_id: str, version: str | None) -> list[tuple[str, str]]:
    """X-Request-ID always; X-Model-Version once a model is loaded."""
    headers = [(REQUEST_ID_HEADER, request_id)]
    if version is not None:
        headers.append((VERSION_HEADER, version))
    return headers
