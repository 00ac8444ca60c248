from importlib import metadata

import mlflow
import pandas as pd

from training.config import Paths
from training.register import FAST_REQUIREMENTS, MODEL_REQUIREMENTS
from training.train import load_model


def test_registered_champion_predicts_like_the_trained_pipeline(registry_env, article_request):
    served = mlflow.pyfunc.load_model(registry_env.champion_uri)
    trained = load_model(Paths(root=registry_env.root).model)
    frame = pd.DataFrame(article_request)
    assert served.predict(frame).tolist() == trained.predict(frame).tolist()


def test_the_registered_model_requires_exactly_its_runtime_pinned(registry_env):
    """What `mlflow models serve` (virtualenv by default) installs: no test tools, and not this
    project's own distribution, which is on no index (its code ships inside the model); and
    onnxruntime, which the fast python_function flavor runs the graph with."""
    local = mlflow.pyfunc.get_model_dependencies(registry_env.champion_uri, format="pip")
    with open(local) as lines:
        required = sorted(line.strip() for line in lines if line.strip())
    names = MODEL_REQUIREMENTS + FAST_REQUIREMENTS
    assert required == sorted(f"{name}=={metadata.version(name)}" for name in names)
