"""The production registry shape without containers: Postgres -> `mlflow server` -> train -> serve.

A private PostgreSQL (initdb + pg_ctl in a temp dir, its own port and unix socket) backs a real
`mlflow server` (postgresql+psycopg2://, artifacts proxied to a temp dir); the in-process pipeline
trains and registers the champion through the server over HTTP, and `python -m serving` serves it
from the server and answers the article's request. This is what compose.yaml runs in containers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest
import requests
import sqlalchemy

from tests.conftest import CONTRACT_REQUEST, make_layout, run_pipeline
from tests.processes import free_port, mlflow_server_command, running, venv_env

pytestmark = pytest.mark.slow

PG_BIN_DIRS = [Path("/usr/lib/postgresql/15/bin")]


def pg_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for directory in PG_BIN_DIRS:
        if (directory / name).is_file():
            return str(directory / name)
    return None


@dataclass(frozen=True)
class Postgres:
    port: int
    socket_dir: Path

    @property
    def sqlalchemy_uri(self) -> str:
        return f"postgresql+psycopg2://mlflow@127.0.0.1:{self.port}/mlflow"


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    """A throwaway PostgreSQL: its own data dir, port and socket; stopped and removed after."""
    initdb, pg_ctl = pg_binary("initdb"), pg_binary("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip(
            "PostgreSQL server binaries (initdb, pg_ctl) are not installed: not on PATH nor in "
            + ", ".join(map(str, PG_BIN_DIRS))
        )
    try:
        import psycopg2  # noqa: F401  (the driver MLflow's postgresql+psycopg2 URIs need)
    except ImportError:
        pytest.fail("psycopg2 is not installed in the venv: pip install psycopg2-binary")

    # PostgreSQL refuses to run as root: as root, run it as `postgres` in a dir that user owns.
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    home = Path(tempfile.mkdtemp(prefix="pg-registry-"))
    if as_root:
        shutil.chown(home, "postgres", "postgres")
    data, sockets, log = home / "data", home / "sockets", home / "postgres.log"
    run = lambda *cmd: subprocess.run(  # noqa: E731
        [*prefix, *cmd], check=True, capture_output=True, text=True, timeout=120
    )
    run("mkdir", str(sockets))
    port = free_port()
    try:
        run(initdb, "-D", str(data), "-U", "mlflow", "--auth=trust", "-E", "UTF8", "--no-sync")
        options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
        run(pg_ctl, "-D", str(data), "-o", options, "-l", str(log), "-w", "-t", "60", "start")
        try:
            run(
                pg_binary("createdb") or "createdb",
                "-h", str(sockets), "-p", str(port), "-U", "mlflow", "mlflow",
            )  # fmt: skip
            yield Postgres(port=port, socket_dir=sockets)
        finally:
            run(pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop")
    except subprocess.CalledProcessError as exc:
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        raise RuntimeError(f"{exc.cmd} failed: {exc.stderr}\n--- postgres.log ---\n{tail}") from exc
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def tracking_server(postgres: Postgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`mlflow server` on the Postgres, proxying artifacts to a temp dir; yields its URL."""
    home = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    command = mlflow_server_command(postgres.sqlalchemy_uri, home / "artifacts", port)
    url = f"http://127.0.0.1:{port}"
    env = venv_env(MLFLOW_TRACKING_URI=None)
    with running(command, url + "/health", log=home / "server.log", env=env, cwd=home, timeout=180):
        yield url


@pytest.fixture(scope="module")
def champion(tracking_server: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Train and register through the tracking server, as the compose training job does."""
    paths = make_layout(tmp_path_factory.mktemp("repo"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", tracking_server)
        try:
            return run_pipeline(paths)
        finally:
            mlflow.set_tracking_uri(None)


def test_the_registry_lives_in_postgres(postgres, champion):
    engine = sqlalchemy.create_engine(postgres.sqlalchemy_uri)
    try:
        with engine.connect() as connection:
            alias = connection.execute(
                sqlalchemy.text(
                    "SELECT version FROM registered_model_aliases "
                    "WHERE name = :name AND alias = 'champion'"
                ),
                {"name": champion["name"]},
            ).scalar_one()
    finally:
        engine.dispose()
    assert str(alias) == str(champion["version"])


def test_serving_answers_from_the_postgres_backed_registry(serve, tracking_server, champion):
    with serve(tracking_server) as server:
        ready = requests.get(server.url + "/ready", timeout=10).json()
        assert ready["ready"] is True and ready["version"] == str(champion["version"])
        answer = requests.post(
            server.url + "/predict",
            data=CONTRACT_REQUEST.read_bytes(),
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["index"] == ["53", "111"]
        assert len(body["prediction"]) == 2
        assert all(type(label) is int and label in (0, 1) for label in body["prediction"])
        assert answer.headers["X-Model-Version"] == str(champion["version"])
        version = requests.get(server.url + "/version", timeout=10).json()
        assert version["name"] == champion["name"]
        assert version["alias"] == "champion"
