"""The serving image, built with podman and run against a real MLflow tracking server.

Run with `make container-test` (root, about 5 min cold, 1-2 min with cached layers). It makes a
local Debian bookworm base (containers/base-image.sh, cached under /var/tmp), builds the
Dockerfile's `serving` target FROM it, trains a champion into an `mlflow server` on the host, runs
the image with `--network host` against that server, waits for the image's own HEALTHCHECK to pass,
posts the article's request, and checks the server runs as a non-root user. A second test bakes the
champion into the image (`serving-baked`) and serves it with no network at all.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest
import requests

from serving.bake import bake
from tests.conftest import CONTRACT_REQUEST, make_layout, run_pipeline
from tests.processes import free_port, mlflow_server_command, running, venv_env
from training.config import REPO_ROOT

pytestmark = pytest.mark.container

CONTAINERS = REPO_ROOT / "containers"
BASE_IMAGE = "localhost/bookworm-python:3.11"
IMAGE = "localhost/titanic-serving:test"
BAKED_IMAGE = "localhost/titanic-serving:test-baked"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
SERVING_UID = 10001
FIGURES = Path("/var/tmp/titanic-containers/figures.json")  # measured here, for the README


def podman_env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS / "containers.conf")}


def podman(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    done = subprocess.run(
        ["podman", *args], env=podman_env(), capture_output=True, text=True, timeout=timeout
    )
    if check and done.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return done


def record(**figures: float) -> None:
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    known = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    FIGURES.write_text(json.dumps({**known, **figures}, indent=2) + "\n")


@pytest.fixture(scope="session")
def tools() -> None:
    """podman, runc and debootstrap, installed with apt-get when missing (needs root)."""
    missing = [tool for tool in ("podman", "runc", "debootstrap") if not shutil.which(tool)]
    if not missing:
        return
    if os.geteuid() != 0:
        pytest.fail(f"{', '.join(missing)} missing, and only root can apt-get install them")
    apt = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], env=apt, check=True, timeout=600)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "podman", "runc", "debootstrap"],
        env=apt,
        check=True,
        timeout=1200,
    )


@pytest.fixture(scope="session")
def base_image(tools: None) -> str:
    subprocess.run(
        [str(CONTAINERS / "base-image.sh"), BASE_IMAGE], env=podman_env(), check=True, timeout=1800
    )
    return BASE_IMAGE


def build(target: str, tag: str, context: Path, base: str) -> float:
    """`podman build` one target of the Dockerfile; returns the seconds it took."""
    command = [
        "build", "--format", "docker",  # the OCI format drops HEALTHCHECK
        "--build-arg", f"BASE_IMAGE={base}",
        "--target", target, "--tag", tag,
        "--file", str(REPO_ROOT / "Dockerfile"),
    ]  # fmt: skip
    if CA_BUNDLE.exists():  # a TLS-intercepting proxy: pip needs the host's CA bundle
        command += ["--secret", f"id=pip-ca,src={CA_BUNDLE}"]
    started = time.monotonic()
    podman(*command, str(context), timeout=1800)
    return time.monotonic() - started


@pytest.fixture(scope="session")
def image(base_image: str) -> str:
    seconds = build("serving", IMAGE, REPO_ROOT, base_image)
    size = int(podman("image", "inspect", "--format", "{{.Size}}", IMAGE).stdout.strip())
    record(build_seconds=round(seconds, 1), image_bytes=size)
    return IMAGE


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """An `mlflow server` on the host (sqlite, proxied artifacts) holding a trained champion."""
    home = tmp_path_factory.mktemp("registry")
    port = free_port()
    command = mlflow_server_command(f"sqlite:///{home / 'mlflow.db'}", home / "artifacts", port)
    url = f"http://127.0.0.1:{port}"
    env = venv_env(MLFLOW_TRACKING_URI=None)
    with running(command, url + "/health", log=home / "server.log", env=env, cwd=home, timeout=120):
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("MLFLOW_TRACKING_URI", url)
            try:
                champion = run_pipeline(make_layout(home / "repo"))
            finally:
                mlflow.set_tracking_uri(None)
        yield {"url": url, "home": home, **champion}


@dataclass(frozen=True)
class Container:
    name: str
    url: str
    seconds_to_healthy: float


def run_container(image: str, name: str, port: int, *options: str) -> Container:
    podman("rm", "--force", name, check=False)
    # no systemd here to schedule the HEALTHCHECK: run it by hand (`podman healthcheck run`)
    podman(
        "run", "--detach", "--name", name, "--health-interval", "disable",
        "--env", f"SERVING_PORT={port}", *options, image,
    )  # fmt: skip
    started = time.monotonic()
    deadline = started + 180
    while time.monotonic() < deadline:
        state = podman("inspect", "--format", "{{.State.Status}}", name).stdout.strip()
        if state != "running":
            logs = podman("logs", name, check=False)
            raise AssertionError(f"container {state}:\n{logs.stdout}{logs.stderr}")
        # the image's own HEALTHCHECK (python -c ... /ready): 0 once a model is loaded
        if podman("healthcheck", "run", name, check=False).returncode == 0:
            return Container(name, f"http://127.0.0.1:{port}", time.monotonic() - started)
        time.sleep(1)
    logs = podman("logs", name, check=False)
    raise AssertionError(f"{name} not healthy after 180 s:\n{logs.stdout[-4000:]}{logs.stderr}")


@pytest.fixture
def container(image: str, registry: dict) -> Iterator[Container]:
    port = free_port()
    name = f"titanic-serving-test-{port}"
    try:
        yield run_container(
            image,
            name,
            port,
            "--network", "host",
            "--env", f"MLFLOW_TRACKING_URI={registry['url']}",
            "--env", "SERVING_WORKERS=2",
            "--read-only", "--tmpfs", "/tmp",
        )  # fmt: skip
    finally:
        podman("rm", "--force", "--time", "20", name, check=False)


def predict(url: str) -> requests.Response:
    return requests.post(
        url + "/predict",
        data=CONTRACT_REQUEST.read_bytes(),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )


def assert_two_labels(answer: requests.Response) -> None:
    assert answer.status_code == 200, answer.text
    labels = answer.json()["prediction"]
    assert len(labels) == 2
    assert all(type(label) is int and label in (0, 1) for label in labels)


def test_the_image_serves_the_champion_from_the_registry(container: Container, registry: dict):
    record(seconds_to_healthy=round(container.seconds_to_healthy, 1))
    assert podman("healthcheck", "run", container.name).returncode == 0
    ready = requests.get(container.url + "/ready", timeout=10).json()
    assert ready["ready"] is True and ready["version"] == str(registry["version"])
    answer = predict(container.url)
    assert_two_labels(answer)
    assert answer.headers["X-Model-Version"] == str(registry["version"])


def test_the_server_runs_as_a_non_root_user(container: Container):
    # PID 1 is the server's master (no shell in between); its workers are its children.
    status = podman("exec", container.name, "cat", "/proc/1/status").stdout
    uids = re.search(r"^Uid:\s+(\d+)\s+(\d+)", status, re.MULTILINE)
    assert uids is not None and {int(uids[1]), int(uids[2])} == {SERVING_UID}
    cmdline = podman("exec", container.name, "cat", "/proc/1/cmdline").stdout
    assert cmdline.split("\0")[:3] == ["python", "-m", "serving"]
    ids = podman("exec", container.name, "id").stdout.strip()
    assert ids.startswith(f"uid={SERVING_UID}(serving) gid={SERVING_UID}(serving)")


def test_the_image_holds_only_locked_serving_packages(image: str):
    """Every distribution in the image is at the version requirements.lock pins; no dev tools."""
    script = (
        "import importlib.metadata as m, json;"
        "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"
    )
    installed = json.loads(
        podman(
            "run", "--rm", "--network", "none", "--entrypoint", "python", image, "-c", script
        ).stdout
    )
    lock = locked_versions()
    normalized = {normalize(name): version for name, version in installed.items()}
    unlocked = {name: v for name, v in normalized.items() if lock.get(name) != v}
    assert unlocked == {}, f"not at the lock's versions: {unlocked}"
    for dev_only in ("pytest", "dvc", "ruff", "hypothesis", "matplotlib", "pip"):
        assert dev_only not in normalized


def test_a_baked_model_serves_without_any_registry(
    base_image: str, image: str, registry: dict, tmp_path: Path
):
    """serving-baked: the champion downloaded into the build context's model/ at build time."""
    context = tmp_path / "context"
    for path in ("requirements.lock", "containers/requirements-serving.txt"):
        (context / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / path, context / path)
    shutil.copytree(REPO_ROOT / "serving", context / "serving", ignore=ignore_caches)
    identity = bake("models:/titanic@champion", registry["url"], context / "model")
    assert (context / "model" / "MLmodel").is_file()
    build("serving-baked", BAKED_IMAGE, context, base_image)

    name = "titanic-serving-baked-test"
    try:
        # no registry and no network at all: the healthcheck and the request run inside
        baked = run_container(BAKED_IMAGE, name, 5000, "--network", "none")
        record(baked_seconds_to_healthy=round(baked.seconds_to_healthy, 1))
        script = (
            "import sys, urllib.request as u;"
            "r = u.Request('http://127.0.0.1:5000' + sys.argv[1],"
            " data=sys.stdin.buffer.read() or None, headers={'Content-Type': 'application/json'});"
            "print(u.urlopen(r, timeout=30).read().decode())"
        )
        answer = subprocess.run(
            ["podman", "exec", "-i", name, "python", "-c", script, "/predict"],
            input=CONTRACT_REQUEST.read_bytes(),
            env=podman_env(),
            capture_output=True,
            check=True,
            timeout=60,
        )
        labels = json.loads(answer.stdout)["prediction"]
        assert len(labels) == 2 and all(type(v) is int and v in (0, 1) for v in labels)
        version = json.loads(podman("exec", name, "python", "-c", script, "/version").stdout)
        assert version["model_uri"] == version["resolved_uri"] == "/opt/model"
        assert (version["name"], version["version"]) == ("titanic", identity["version"])
    finally:
        podman("rm", "--force", "--time", "20", name, check=False)


def ignore_caches(directory: str, names: list[str]) -> list[str]:
    return [name for name in names if name == "__pycache__" or name.endswith(".pyc")]


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_versions() -> dict[str, str]:
    pins = {}
    for line in (REPO_ROOT / "requirements.lock").read_text().splitlines():
        if "==" in line and not line.lstrip().startswith("#"):
            name, version = line.split("==", 1)
            pins[normalize(name.strip())] = version.strip()
    return pins
