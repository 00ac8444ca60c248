"""Fast checks of the container files (no podman): compose.yaml's wiring, the serving requirements.

compose.yaml cannot run here (no container daemon); these tests hold it to what the stack needs,
and tests/e2e/test_postgres_registry.py runs the same Postgres -> mlflow -> train -> serve path
for real without containers.
"""

from __future__ import annotations

import re

import pytest
import yaml

from training.config import REPO_ROOT

COMPOSE = REPO_ROOT / "compose.yaml"
DOCKERFILE = REPO_ROOT / "Dockerfile"


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_names(path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict) -> dict:
    return compose["services"]


def test_the_stack_has_its_seven_services(services):
    assert set(services) == {
        *("postgres", "mlflow", "training", "serving-1", "serving-2"),
        *("prometheus", "grafana"),
    }


def test_every_built_target_exists_in_the_dockerfile(services):
    stages = set(re.findall(r"^FROM \S+ AS (\S+)$", DOCKERFILE.read_text(), re.MULTILINE))
    for name, service in services.items():
        if "build" in service:
            assert service["build"]["target"] in stages, name
            assert service["image"].startswith("localhost/"), name


def test_long_running_services_are_health_checked(services):
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    assert "/health" in " ".join(services["mlflow"]["healthcheck"]["test"])
    # the serving image's own HEALTHCHECK probes /ready (a model is loaded), not /health
    assert re.search(r"^HEALTHCHECK .*\n.*/ready", DOCKERFILE.read_text(), re.MULTILINE)


def test_the_tracking_server_runs_on_postgres_and_serves_artifacts(services):
    command = services["mlflow"]["command"]
    options = dict(zip(command[::2], command[1::2], strict=True))
    assert options["--backend-store-uri"].startswith("postgresql+psycopg2://")
    assert "@postgres:5432/" in options["--backend-store-uri"]
    volume = options["--artifacts-destination"]
    assert any(mount.endswith(":" + volume) for mount in services["mlflow"]["volumes"])
    assert "mlflow:5000" in options["--allowed-hosts"].split(",")  # else 403 to the others
    assert services["mlflow"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_training_and_serving_use_the_tracking_server_in_order(services):
    assert services["training"]["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert services["training"]["restart"] == "no"
    for name in ("serving-1", "serving-2"):
        service = services[name]
        assert service["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
        assert service["environment"]["SERVING_MODEL_URI"] == "models:/titanic@champion"
        assert service["build"]["target"] == "serving"
        assert service["depends_on"]["training"]["condition"] == "service_completed_successfully"
    ports = {services[name]["ports"][0] for name in ("serving-1", "serving-2")}
    assert len(ports) == 2


def test_serving_requirements_are_all_pinned_in_the_lock():
    """The image installs these with `-c requirements.lock`: an unlocked name would float."""
    lock = {
        normalize(line.split("==", 1)[0])
        for line in requirement_names(REPO_ROOT / "requirements.lock")
    }
    serving = [
        normalize(name)
        for name in requirement_names(REPO_ROOT / "containers" / "requirements-serving.txt")
    ]
    assert serving, "containers/requirements-serving.txt lists nothing"
    assert [name for name in serving if name not in lock] == []
    assert all("==" not in name for name in serving), "versions come from the lock, not here"


def test_prometheus_and_grafana_are_provisioned_from_the_repo(services):
    mounts = {
        name: {v.split(":")[0]: v.split(":")[1] for v in services[name]["volumes"] if v[0] == "."}
        for name in ("prometheus", "grafana")
    }
    assert mounts["prometheus"] == {"./monitoring/prometheus": "/etc/prometheus"}
    assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]
    scrape = yaml.safe_load((REPO_ROOT / "monitoring/prometheus/prometheus.yml").read_text())
    targets = scrape["scrape_configs"][0]["static_configs"][0]["targets"]
    assert targets == ["serving-1:5000", "serving-2:5000"]
    assert scrape["rule_files"] == ["alerts.yml"]
    grafana = mounts["grafana"]
    assert grafana["./monitoring/grafana/provisioning"] == "/etc/grafana/provisioning"
    assert grafana["./monitoring/grafana/dashboards"] == "/var/lib/grafana/dashboards"
    for path in list(mounts["prometheus"]) + list(grafana):
        assert (REPO_ROOT / path).is_dir(), path


def test_the_lock_is_a_valid_constraints_file():
    """The image, the Spark extra and the peers install with `-c requirements.lock`, and pip
    refuses a constraints file with extras ("Constraints cannot have extras"): an extra's
    packages are pinned by name instead."""
    with_extras = [
        line for line in requirement_names(REPO_ROOT / "requirements.lock") if "[" in line
    ]
    assert with_extras == []
