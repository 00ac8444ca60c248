"""bench/gunicorn_reference.py without a process: the old server's gunicorn settings (sync
workers, no preloading, keep-alive 5 s, the agent tied to the master's life) and the code a
worker ends with."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.gunicorn_reference import exit_code, options, parse, post_worker_init, worker_exit
from bench.servers import servers
from serving.config import Settings
from serving.server.agent_process import AgentProcess


def test_two_sync_workers_each_loading_its_own_app_with_keep_alive_5():
    chosen = options(Settings(host="127.0.0.1", port=5071, workers=2), agent=None)
    assert chosen["bind"] == "127.0.0.1:5071" and chosen["workers"] == 2
    assert chosen["worker_class"] == "sync" and chosen["keepalive"] == 5
    assert chosen["preload_app"] is False
    assert chosen["post_worker_init"] is post_worker_init and chosen["worker_exit"] is worker_exit
    assert "when_ready" not in chosen and "on_exit" not in chosen  # no agent: a model directory


def test_the_master_supervises_the_agent_once_ready_and_stops_it_on_exit(tmp_path: Path):
    calls: list[str] = []

    class Agent(AgentProcess):
        def supervise(self) -> None:
            calls.append("supervise")

        def stop(self) -> None:
            calls.append("stop")

    chosen = options(Settings(), Agent(Settings(), tmp_path))
    chosen["when_ready"](object())  # gunicorn passes its arbiter to both hooks
    chosen["on_exit"](object())
    assert calls == ["supervise", "stop"]


@pytest.mark.parametrize(
    ("exc", "code"),
    [(None, 0), (SystemExit(0), 0), (SystemExit(3), 3), (SystemExit("bye"), 0), (OSError(), 1)],
)
def test_a_worker_keeps_its_exit_code(exc: BaseException | None, code: int):
    assert exit_code(exc) == code


def test_the_bench_flags_over_the_serving_variables(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SERVING_LOG_LEVEL", "warning")
    settings = parse(["--model-uri", "models:/titanic/2", "--port", "5071", "--workers", "3"])
    assert (settings.model_uri, settings.port, settings.workers) == ("models:/titanic/2", 5071, 3)
    assert settings.log_level == "warning"


def test_the_reference_row_runs_this_launcher_on_the_same_model_and_workers_as_ours():
    ours, reference, *_ = servers("models:/titanic/2", 2)
    assert reference.kind == "reference" and "2 sync workers" in reference.name
    argv = reference.command(5071)
    assert argv[1:3] == ["-m", "bench.gunicorn_reference"]
    assert argv[3:] == ours.command(5071)[3:]  # the same --model-uri, --host, --port, --workers
