"""The served champion of the session registry, loaded once per module, and a Flask test client."""

from __future__ import annotations

from collections.abc import Iterator

import mlflow
import pytest
from flask.testing import FlaskClient

from serving.app import create_app
from serving.config import Settings
from serving.model_store import ModelStore


@pytest.fixture(scope="module")
def store(registered_model) -> Iterator[ModelStore]:
    store = ModelStore(registered_model.champion_uri, registered_model.tracking_uri)
    store.load()
    yield store
    mlflow.set_tracking_uri(None)


@pytest.fixture
def client(store: ModelStore, registered_model) -> FlaskClient:
    settings = Settings.from_env({}, tracking_uri=registered_model.tracking_uri, max_rows=100)
    return create_app(settings, store).test_client()
