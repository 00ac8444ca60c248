"""params.yaml is validated once into typed Params; bad values fail with the key's name."""

from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError

from training.config import REPO_ROOT, Params, Paths, load_params
from training.pipeline import build_pipeline


def write(tmp_path, content: dict):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(content))
    return path


def test_the_repo_params_are_valid():
    params = load_params()
    assert params == load_params(REPO_ROOT / "params.yaml")
    assert params.train.model == "logistic_regression"  # chosen by repeated CV (README)
    assert params.registry.model_name == "titanic"  # read from the `register:` block
    assert params.registry.champion_alias == "champion"
    assert params.registry.gate_metric == "roc_auc"
    assert params.evaluate.cv_folds * params.evaluate.cv_repeats >= 50
    assert params.registry.allow_uncommitted_champion is False
    assert 0 < params.prepare.valid_size < 1


def test_every_block_of_the_repo_params_is_read():
    raw = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    params = load_params().model_dump(by_alias=True)
    for block, values in raw.items():
        for key, value in values.items():
            assert params[block][key] == value, f"{block}.{key}"


def test_an_empty_file_gives_the_defaults(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("")
    assert load_params(path) == Params()


@pytest.mark.parametrize(
    ("content", "where"),
    [
        ({"prepare": {"valid_size": 1.5}}, "prepare.valid_size"),
        ({"prepare": {"valid_size": 0}}, "prepare.valid_size"),
        ({"train": {"model": "xgboost"}}, "train.model"),
        ({"train": {"n_estimators": 0}}, "train.n_estimators"),
        ({"train": {"n_estimators": "many"}}, "train.n_estimators"),
        ({"train": {"max_depth": 0}}, "train.max_depth"),
        ({"train": {"C": -1}}, "train.C"),
        ({"train": {"max_features": "all"}}, "train.max_features"),
        ({"evaluate": {"cv_folds": 1}}, "evaluate.cv_folds"),
        ({"evaluate": {"threshold": 1.0}}, "evaluate.threshold"),
        ({"register": {"gate_metric": "log_loss"}}, "register.gate_metric"),
        ({"register": {"gate_confidence": 1.0}}, "register.gate_confidence"),
        ({"register": {"gate_margin": -0.1}}, "register.gate_margin"),
        ({"register": {"max_latency_ms": 0}}, "register.max_latency_ms"),
        ({"evaluate": {"cv_repeats": 0}}, "evaluate.cv_repeats"),
    ],
)
def test_bad_values_are_rejected_naming_the_key(tmp_path, content, where):
    with pytest.raises(ValidationError) as failure:
        load_params(write(tmp_path, content))
    block, key = where.split(".")
    assert any(error["loc"][:2] == (block, key) for error in failure.value.errors()), str(
        failure.value
    )


@pytest.mark.parametrize(
    ("content", "where"),
    [
        ({"train": {"n_estimator": 50}}, ("train", "n_estimator")),  # `-S train.n_estimator=50`
        ({"register": {"champion": "best"}}, ("register", "champion")),
        ({"evaluate": {"treshold": 0.4}}, ("evaluate", "treshold")),
    ],
)
def test_a_misspelt_key_in_a_stage_block_is_rejected(tmp_path, content, where):
    with pytest.raises(ValidationError) as failure:
        load_params(write(tmp_path, content))
    assert failure.value.errors()[0]["loc"] == where


def test_other_top_level_blocks_are_left_to_their_owners(tmp_path):
    assert load_params(write(tmp_path, {"serve": {"workers": 2}})) == Params()


def test_partial_params_keep_the_other_defaults(tmp_path):
    params = load_params(write(tmp_path, {"train": {"model": "logistic_regression", "C": 0.5}}))
    assert params.train.C == 0.5 and params.train.n_estimators == 200
    assert params.evaluate.cv_folds == 5


@pytest.mark.parametrize("model", ["random_forest", "gradient_boosting", "logistic_regression"])
def test_each_model_family_builds(model):
    params = Params.model_validate({"train": {"model": model, "n_estimators": 5}}).train
    classifier = build_pipeline(params).named_steps["classifier"]
    assert type(classifier).__name__.lower().startswith(model.split("_")[0][:5])


def test_paths_hang_off_the_root(tmp_path):
    paths = Paths(root=tmp_path)
    assert paths.model == tmp_path / "models" / "model.skops"
    assert paths.raw_dvc_file == tmp_path / "data" / "raw.dvc"
    assert Paths().root == REPO_ROOT and REPO_ROOT.is_absolute()
    assert (REPO_ROOT / "dvc.yaml").exists()
