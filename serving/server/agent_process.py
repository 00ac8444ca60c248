"""The model agent's process (`python -m serving.registry.agent`), run and restarted by the
server's master, and stopped with it."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from serving.config import Settings
from serving.registry.health import Backoff

log = logging.getLogger("serving.server.agent_process")

# An agent ended by SIGTERM or SIGINT was stopped on purpose (the server's process group is
# being stopped): it is not restarted. Any other exit (a crash, SIGKILL) is.
STOPPED = frozenset({-signal.SIGTERM, -signal.SIGINT})


class AgentProcess:
    def __init__(self, settings: Settings, directory: Path):
        self.settings, self.directory = settings, directory
        self.process: subprocess.Popen | None = None
        self._stopping = threading.Event()

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

    def start(self) -> None:
        self.process = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL)

    def supervise(self) -> None:
        """A master thread that restarts the agent if it dies."""

        def watch() -> None:
            backoff = Backoff(1.0, 30.0)
            while not self._stopping.wait(0.5):
                process = self.process
                if process is None or process.poll() is None:
                    continue
                if process.returncode in STOPPED:  # stopped on purpose (the server is stopping)
                    return
                delay = backoff.next()
                log.warning("the model agent exited (%s); restarting in %.0f s",
                            process.returncode, delay)  # fmt: skip
                if not self._stopping.wait(delay):
                    self.start()

        threading.Thread(target=watch, name="agent-supervisor", daemon=True).start()

    def stop(self) -> None:
        self._stopping.set()
        process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
