"""A Spark standalone cluster on this machine, from PySpark's own launch classes.

One master and N workers, each its own JVM process started by the pip package's
`bin/spark-class` (no Spark download), every one bound to 127.0.0.1 and with this venv's Python
as PYSPARK_PYTHON. For the standalone-cluster test and `bench.batch --engine spark-standalone`.

    with standalone_cluster(tmp_path, workers=2) as master:  # "spark://127.0.0.1:PORT"
        subprocess.run([..., "--spark-master", master])
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import requests

from bench.processes import Check, free_port, running


def spark_home() -> Path:
    """The pip package's directory: it holds bin/spark-class and the jars."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def cluster_env() -> dict[str, str]:
    return {
        **os.environ,
        "SPARK_HOME": str(spark_home()),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
    }


def _alive_workers(ui: str, wanted: int) -> Check:
    def check() -> str | None:
        state = requests.get(f"{ui}/json/", timeout=2).json()
        alive = [w for w in state.get("workers", []) if w.get("state") == "ALIVE"]
        return None if len(alive) >= wanted else f"{len(alive)} of {wanted} workers alive"

    return check


@contextmanager
def standalone_cluster(
    directory: Path, workers: int = 2, cores: int = 1, memory: str = "1g", timeout: float = 120
) -> Iterator[str]:
    """Start a master and `workers` workers (`cores` cores and `memory` each), wait until every
    worker has registered, yield the master's URL; stop them all (their process groups) after.
    Their logs are `directory/spark-master.log`, `spark-worker-N.log`."""
    spark_class = str(spark_home() / "bin" / "spark-class")
    env = cluster_env()
    port, ui_port = free_port(), free_port()
    master = f"spark://127.0.0.1:{port}"
    ui = f"http://127.0.0.1:{ui_port}"
    launch = "org.apache.spark.deploy"
    with ExitStack() as stack:
        stack.enter_context(
            running(
                [spark_class, f"{launch}.master.Master", "--host", "127.0.0.1", "--port",
                 str(port), "--webui-port", str(ui_port)],
                f"{ui}/json/",
                log=directory / "spark-master.log",
                env=env,
                timeout=timeout,
            )
        )  # fmt: skip
        for i in range(workers):
            work_dir = directory / f"spark-worker-{i}"
            work_dir.mkdir(exist_ok=True)
            stack.enter_context(
                running(
                    [spark_class, f"{launch}.worker.Worker", master, "--host", "127.0.0.1",
                     "--cores", str(cores), "--memory", memory, "--webui-port",
                     str(free_port()), "--work-dir", str(work_dir)],
                    f"{ui}/json/",
                    log=directory / f"spark-worker-{i}.log",
                    env=env,
                    timeout=timeout,
                    check=_alive_workers(ui, i + 1),
                )
            )  # fmt: skip
        yield master
