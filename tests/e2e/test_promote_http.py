"""`python -m training.promote` against a real server shadow-scoring the challenger and a real
sqlite registry: the report, a dry run that moves nothing, a refusal and a promotion."""

from __future__ import annotations

import subprocess

import mlflow
import pandas as pd
import pytest

from tests.e2e.evidence import batches, predict, records, settle, total
from tests.processes import VENV_BIN, venv_env
from training.config import REPO_ROOT

pytestmark = pytest.mark.slow

ROWS = 300


def promote(server, two_versions, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(VENV_BIN / "python"), "-m", "training.promote", "--server", server.url, *flags],
        capture_output=True,
        text=True,
        env=venv_env(MLFLOW_TRACKING_URI=two_versions.tracking_uri),
        cwd=REPO_ROOT,
        timeout=120,
    )


def test_promote_reports_refuses_and_moves_the_alias_only_when_the_thresholds_hold(
    serve, two_versions, raw_test: pd.DataFrame
):
    client = mlflow.MlflowClient(tracking_uri=two_versions.tracking_uri)

    def champion() -> str:
        return str(client.get_model_version_by_alias(two_versions.name, "champion").version)

    def decision() -> str | None:
        version = client.get_model_version(two_versions.name, two_versions.challenger)
        return version.tags.get("promote_decision")

    flags = {"serve_aliases": "champion,challenger", "shadow": "challenger"}
    try:
        with serve(two_versions.tracking_uri, workers=2, **flags) as server:
            for batch in batches(records(raw_test.head(ROWS)), 10):
                predict(server.url, batch)
            settle(server.url, lambda s: total(s, "serving_shadow_rows_total") == ROWS)

            dry = promote(server, two_versions, "--min-rows", str(ROWS))
            assert dry.returncode == 0, dry.stderr
            assert f"champion v{two_versions.champion}" in dry.stdout
            assert f"challenger v{two_versions.challenger}" in dry.stdout
            assert f"{ROWS} scored in shadow" in dry.stdout
            assert "agreement" in dry.stdout and "offline valid_roc_auc" in dry.stdout
            assert "dry run" in dry.stdout and "nothing moved" in dry.stdout
            assert champion() == two_versions.champion and decision() is None

            # the latency check compares two timings measured on a busy machine: a ratio no run
            # can break keeps this refusal about rows alone (unit tests cover the latency rule)
            lenient = ["--max-latency-ratio", "1000"]
            refused = promote(
                server, two_versions, "--apply", "--min-rows", str(ROWS + 1), *lenient
            )
            assert refused.returncode == 1, refused.stdout + refused.stderr
            assert "FAIL rows" in refused.stdout
            assert champion() == two_versions.champion
            assert decision() == "refused: rows"

            applied = promote(server, two_versions, "--apply", "--min-rows", str(ROWS), *lenient)
            assert applied.returncode == 0, applied.stdout + applied.stderr
            assert f"champion -> version {two_versions.challenger}" in applied.stdout
            assert champion() == two_versions.challenger
            assert decision() == "promoted"
    finally:  # the session's registry keeps its champion for the other tests
        client.set_registered_model_alias(two_versions.name, "champion", two_versions.champion)
        client.delete_model_version_tag(
            two_versions.name, two_versions.challenger, "promote_decision"
        )
