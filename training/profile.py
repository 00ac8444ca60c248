"""The training profile logged with every registered model: per input column, the bins and
shares of the training rows (serving/model/profile.py defines the format, which the server reads
to measure drift)."""

from __future__ import annotations

import pandas as pd

from serving.model.profile import Profile, numeric_profile, string_profile
from training.signature import INPUT_SCHEMA

NUMERIC_TYPES = frozenset({"long", "integer", "double", "float"})


def training_profile(frame: pd.DataFrame) -> Profile:
    """The profile of the signature's input columns in `frame` (the training split)."""
    columns = {}
    for spec in INPUT_SCHEMA.inputs:
        values = frame[spec.name].tolist() if spec.name in frame else [None] * len(frame)
        if spec.type.name in NUMERIC_TYPES:
            columns[spec.name] = numeric_profile(values)
        else:
            columns[spec.name] = string_profile(values)
    return Profile(rows=len(frame), columns=columns)
