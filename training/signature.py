"""The model's MLflow signature: the /predict contract written down where serving can read it."""

from __future__ import annotations

from mlflow.models import ModelSignature
from mlflow.types.schema import ColSpec, ParamSchema, ParamSpec, Schema

from training.pyfunc_loader import PROBA_PARAM

# Sex and Pclass are required; every other column may be absent. Columns with gaps in the data
# (Age, Fare, Cabin, Embarked, Name) are nullable; the ones with gaps that pandas would read as
# integers (Age, Fare) are doubles, because an integer column cannot hold a null. Ticket finds a
# passenger's travelling group (training/passenger.py); without it the surname and fare do.
INPUT_SCHEMA = Schema(
    [
        ColSpec("long", "Pclass"),
        ColSpec("string", "Sex"),
        ColSpec("string", "Name", required=False),
        ColSpec("double", "Age", required=False),
        ColSpec("long", "SibSp", required=False),
        ColSpec("long", "Parch", required=False),
        ColSpec("double", "Fare", required=False),
        ColSpec("string", "Cabin", required=False),
        ColSpec("string", "Embarked", required=False),
        ColSpec("string", "Ticket", required=False),
    ]
)
OUTPUT_SCHEMA = Schema([ColSpec("long", "Survived")])
# `params={"proba": True}` (MLflow's scoring protocol: `{"inputs": ..., "params": {"proba": true}}`)
# answers each row's label and P(survived), as /predict?proba=true does (training/pyfunc_loader.py).
PARAMS_SCHEMA = ParamSchema([ParamSpec(PROBA_PARAM, "boolean", False)])
SIGNATURE = ModelSignature(inputs=INPUT_SCHEMA, outputs=OUTPUT_SCHEMA, params=PARAMS_SCHEMA)
