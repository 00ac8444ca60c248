"""The master's supervised children: the model agent's process (`python -m
serving.registry.agent`) and, under `--shadow`, the shadow scorer's (`python -m
serving.server.shadow_scorer`): each run and restarted by the server's master, and stopped with
it. The master imports this module only: neither child's own code."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from serving.config import Settings
from serving.evidence.relay import SOCKET_NAME
from serving.registry.health import Backoff

log = logging.getLogger("serving.server.agent_process")

# An agent ended by SIGTERM or SIGINT was stopped on purpose (the server's process group is
# being stopped): it is not restarted. Any other exit (a crash, SIGKILL) is.
STOPPED = frozenset({-signal.SIGTERM, -signal.SIGINT})


class Supervised:
    """A child process of the master: `start` it, `supervise` it (restarted with a backoff if it
    dies other than by SIGTERM or SIGINT), `stop` it."""

    name = "a child process"

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self._stopping = threading.Event()

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        self.process = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL)

    def supervise(self) -> None:
        """A master thread that restarts the process if it dies."""

        def watch() -> None:
            backoff = Backoff(1.0, 30.0)
            while not self._stopping.wait(0.5):
                process = self.process
                if process is None or process.poll() is None:
                    continue
                if process.returncode in STOPPED:  # stopped on purpose (the server is stopping)
                    return
                delay = backoff.next()
                log.warning("%s exited (%s); restarting in %.0f s",
                            self.name, process.returncode, delay)  # fmt: skip
                if not self._stopping.wait(delay):
                    self.start()

        threading.Thread(target=watch, name="supervisor", daemon=True).start()

    def stop(self) -> None:
        self._stopping.set()
        process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()


class AgentProcess(Supervised):
    name = "the model agent"

    def __init__(self, settings: Settings, directory: Path):
        super().__init__()
        self.settings, self.directory = settings, directory

    def command(self) -> list[str]:
        s = self.settings
        uris = [arg for uri in s.model_uris for arg in ("--model-uri", uri)]
        return [
            sys.executable, "-m", "serving.registry.agent",
            *uris,
            "--tracking-uri", s.tracking_uri,
            "--directory", str(self.directory),
            "--reload-interval", str(s.reload_interval),
            "--retry-seconds", str(s.load_retry_seconds),
            "--retry-max-seconds", str(s.load_retry_max_seconds),
            "--log-level", s.log_level,
            "--parent", str(os.getpid()),
        ]  # fmt: skip


class ScorerProcess(Supervised):
    """The shadow scorer: its socket in the run directory, and the command that starts it."""

    name = "the shadow scorer"

    def __init__(self, settings: Settings, directory: Path):
        super().__init__()
        self.settings, self.socket = settings, directory / SOCKET_NAME

    def command(self) -> list[str]:
        return [sys.executable, "-m", "serving.server.shadow_scorer",
                "--socket", str(self.socket), "--parent", str(os.getpid())]  # fmt: skip
