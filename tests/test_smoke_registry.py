import mlflow
import pandas as pd

from training.config import Paths
from training.train import load_model


def test_registered_champion_predicts_like_the_trained_pipeline(registry_env, article_request):
    served = mlflow.pyfunc.load_model(registry_env.champion_uri)
    trained = load_model(Paths(root=registry_env.root).model)
    frame = pd.DataFrame(article_request)
    assert served.predict(frame).tolist() == trained.predict(frame).tolist()
