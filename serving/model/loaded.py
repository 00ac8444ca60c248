"""A model version loaded from its directory and checked: what a request is answered with.

`load_local(model_dir, info)` reads the directory without MLflow (serving.model.files), takes the
ONNX fast path if it proves itself against the registered pipeline's own answers
(serving.model.fast), else the plain scikit-learn pipeline (serving.model.plain), and runs the
self-check: the model answers its own logged input example, labels 0/1 and probabilities in
[0, 1]. The result is a frozen `LoadedModel`: a server swaps a whole one in, never parts of one.
"""

from __future__ import annotations

import json
import logging
import time
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from serving.contract import InputSpec
from serving.errors import describe_error
from serving.model.fast import FastModel, load_fast_model
from serving.model.files import ModelFiles, read_model_dir
from serving.model.identity import ModelInfo
from serving.model.plain import PlainModel

log = logging.getLogger("serving.model.loaded")


class SelfCheckFailed(Exception):
    """The model does not load, or does not answer its own input example as it must."""


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: one object per load
class LoadedModel:
    spec: InputSpec
    info: ModelInfo
    positive_column: int  # predict_proba column of the class 1 (survived)
    plain: PlainModel  # the scikit-learn pipeline, loaded on first use when the fast path serves
    fast: FastModel | None = None  # the ONNX path, when the model carries one that checks out
    probe_rows: tuple[dict[str, Any], ...] = ()  # the logged input example, typed: /ready asks it

    @property
    def raw(self) -> Any:
        """The scikit-learn Pipeline."""
        return self.plain.pipeline

    def predict(
        self, rows: list[dict[str, Any]], proba: bool = False
    ) -> tuple[list[int], list[float] | None]:
        """Typed rows -> (labels, P(survived) per row if `proba`, else None)."""
        if not rows:
            return [], [] if proba else None
        if self.fast is not None:
            labels, probabilities = self.fast.predict(rows)
            return labels, probabilities if proba else None
        return self.plain.predict(rows, self.spec, proba)


def load_local(model_dir: Path, info: ModelInfo, fast_path: bool = True) -> LoadedModel:
    """Load and self-check the model in `model_dir`: the fast path if it proves itself, else
    the plain pipeline (which loads scikit-learn)."""
    started = time.monotonic()
    files = read_model_dir(model_dir)
    plain = PlainModel(model_dir, files)
    fast, detail = load_fast_model(model_dir) if fast_path else (None, "fast path disabled")
    if fast is None:
        log.warning("serving %s without the fast path: %s", info.resolved_uri, detail)
        try:
            positive = plain.positive_column
        except Exception as exc:
            raise SelfCheckFailed(f"the plain model does not load: {describe_error(exc)}") from exc
    else:
        check_plain_model_file(model_dir, files)  # the plain path may load it later: intact now
        positive = fast.positive_column
    loaded = LoadedModel(
        spec=files.spec,
        info=replace(
            info,
            loaded_at=time.time(),
            inference="onnx" if fast is not None else "sklearn",
            inference_detail=detail,
            path=str(model_dir),
        ),
        positive_column=positive,
        plain=plain,
        fast=fast,
        probe_rows=files.example_rows,
    )
    self_check(loaded)
    log.info("loaded %s in %.2f s", info.resolved_uri, time.monotonic() - started)
    return loaded


def check_plain_model_file(model_dir: Path, files: ModelFiles) -> None:
    """Raise SelfCheckFailed unless the skops file is an intact archive (every member's CRC
    checked) with its schema: what the plain path would read, checked without loading
    scikit-learn. Other serialization formats are not inspected here."""
    if files.skops_file is None:
        return
    try:
        with zipfile.ZipFile(model_dir / files.skops_file) as archive:
            damaged = archive.testzip()
            if damaged is not None:
                raise zipfile.BadZipFile(f"member {damaged} is damaged")
            json.loads(archive.read("schema.json"))
    except Exception as exc:
        reason = f"the model file {files.skops_file} is unreadable: {describe_error(exc)}"
        raise SelfCheckFailed(reason) from None


def self_check(model: LoadedModel) -> None:
    """The model must answer its own logged input example through the /predict path: labels
    0/1 and probabilities in [0, 1]. The fast path has already proven itself against the
    registered pipeline's answers (serving.model.fast)."""
    if not model.probe_rows:
        raise SelfCheckFailed("the model has no logged input example to check itself with")
    labels, probabilities = model.predict(list(model.probe_rows), proba=True)
    if not set(labels) <= {0, 1}:
        raise SelfCheckFailed(f"labels {labels} on the input example are not 0/1")
    if probabilities is None or not all(0.0 <= p <= 1.0 for p in probabilities):
        raise SelfCheckFailed(f"probabilities out of range on the input example: {probabilities}")
