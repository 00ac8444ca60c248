"""A baked model directory serves with its registry identity and never opens a registry."""

from __future__ import annotations

import json

from serving.bake import bake
from serving.config import Settings
from serving.rest.app import create_app


def test_a_baked_model_serves_with_its_identity_and_no_registry(registered_model, tmp_path):
    baked = tmp_path / "model"
    identity = bake(registered_model.champion_uri, registered_model.tracking_uri, baked)
    assert identity["version"] == registered_model.version
    assert (baked / "MLmodel").is_file()
    assert (baked / "extra_files" / "model.onnx").is_file()

    # A registry that cannot exist: serving a path must not touch it.
    nowhere = f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'mlflow.db'}"
    app = create_app(Settings(model_uri=str(baked), tracking_uri=nowhere, reload_interval=0))
    client = app.test_client()
    version = client.get("/version").get_json()
    assert version["name"] == registered_model.name
    assert version["version"] == registered_model.version
    assert version["inference"]["path"] == "onnx"
    answer = client.post("/predict", json={"Pclass": {"1": 1}, "Sex": {"1": "female"}})
    assert answer.status_code == 200
    assert answer.headers["X-Model-Version"] == registered_model.version
    assert json.loads((baked / "registry.json").read_text())["baked_from"].startswith("models:/")
    assert not (tmp_path / "no").exists()
