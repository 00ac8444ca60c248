"""The model agent: the one process of a server that talks to the MLflow registry.

`python -m serving` starts it beside gunicorn's workers (serving.__main__). It resolves the
model URI, downloads each new version into the run directory (serving.staging) and publishes
what it staged, with its view of the registry, in `state.json` (written atomically). The
workers watch that file and load what it names: they never import MLflow, so each weighs what
ONNX Runtime and Flask weigh, starts in a fraction of a second, and a replaced worker loads the
current version at once.

Its loop: while nothing is staged, retry with backoff (`load_retry_seconds` doubling up to
`load_retry_max_seconds`); then poll every `reload_interval` seconds if the URI is an alias.
`POST /admin/reload` (in a worker) writes `request`; the agent polls at once and answers by
putting the request's id in `state.json` as `handled`. It exits when its parent (gunicorn's
master) is gone.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from serving.model_store import (
    AGENT_REQUEST,
    AGENT_STATE,
    RegistryHealth,
    describe_error,
    is_transient,
)
from serving.reload import Backoff, set_mlflow_http_defaults
from serving.request_log import configure_logging
from serving.staging import ALIAS_URI, StagingArea, resolve

log = logging.getLogger("serving.agent")

TICK = 0.1  # seconds between looks at the request file and the parent


class Agent:
    def __init__(
        self,
        model_uri: str,
        tracking_uri: str,
        directory: Path,
        reload_interval: float = 30.0,
        retry_seconds: float = 1.0,
        retry_max_seconds: float = 30.0,
    ):
        self.model_uri, self.tracking_uri = model_uri, tracking_uri
        self.directory = directory
        self.reload_interval = reload_interval
        self.backoff = Backoff(retry_seconds, retry_max_seconds)
        self.area = StagingArea(directory / "models")
        self.staged: dict[str, Any] | None = None  # ModelInfo fields + path of what is staged
        self.registry = RegistryHealth()
        self.handled: str | None = None

    @property
    def watches_alias(self) -> bool:
        return ALIAS_URI.match(self.model_uri) is not None

    def poll(self, force: bool = False) -> str:
        """Resolve; stage a version not staged yet. Returns unchanged, staged, unreachable or
        failed (its files could not be staged: published with the reason, so that the workers
        refuse it as they refuse a version that does not load; `force` tries it again)."""
        now = time.time()
        self.registry.last_poll_at = now
        try:
            found = resolve(self.model_uri, self.tracking_uri)
        except Exception as exc:  # not answering, or no such alias (yet): retried
            self._unreachable(exc, now)
            return "unreachable"
        self._reachable()
        staged = self.staged
        same = staged is not None and found.resolved_uri == staged["resolved_uri"]
        if same and not (force and staged.get("error")):
            return "unchanged"
        try:
            path = self.area.stage(found, self.tracking_uri)
        except Exception as exc:
            if is_transient(exc):  # the registry or artifact store went away mid-download
                self._unreachable(exc, now)
                return "unreachable"
            error = f"cannot stage {found.resolved_uri}: {describe_error(exc)}"
            log.warning("%s", error, extra={"fields": {"event": "model_not_staged"}})
            self.staged = {**asdict(found), "path": "", "error": error}
            return "failed"
        self.staged = {**asdict(found), "path": str(path)}
        log.info(
            "staged %s (version %s) in %s",
            found.resolved_uri,
            found.version,
            path,
            extra={"fields": {"event": "model_staged", "version": found.version}},
        )
        return "staged"

    def _reachable(self) -> None:
        failed = self.registry.recovered()
        if failed:
            log.info("registry reachable again after %d failed polls", failed)

    def _unreachable(self, exc: Exception, now: float) -> None:
        error = describe_error(exc)
        if self.registry.failed(error, now):
            log.warning(
                "registry poll failed (%d in a row): %s",
                self.registry.failed_polls,
                error,
                extra={"fields": {"event": "registry_unreachable"}},
            )

    def publish(self) -> None:
        state = {
            "model": self.staged,
            "registry": self.registry.public(),
            "handled": self.handled,
            "agent_pid": os.getpid(),
        }
        temporary = self.directory / f".{AGENT_STATE}.{os.getpid()}"
        temporary.write_text(json.dumps(state))
        temporary.replace(self.directory / AGENT_STATE)

    def _request(self) -> str | None:
        try:
            request = (self.directory / AGENT_REQUEST).read_text().strip()
        except FileNotFoundError:
            return None
        return request if request and request != self.handled else None

    def run(self, parent: int | None = None, stop: threading.Event | None = None) -> None:
        """Poll until the process `parent` is gone (or `stop` is set)."""
        next_poll = time.monotonic()
        stop = stop or threading.Event()
        while (parent is None or os.getppid() == parent) and not stop.is_set():
            request = self._request()
            if request is None and time.monotonic() < next_poll:
                time.sleep(TICK)
                continue
            try:
                result = self.poll(force=request is not None)
            except Exception:  # a bug here must not end the agent: the server would go stale
                log.exception("model poll failed unexpectedly")
                result = "error"
            if request is not None:
                self.handled = request
            self.publish()
            if self.staged is None or result == "error":
                next_poll = time.monotonic() + self.backoff.next()
                continue
            self.backoff.reset()
            interval = self.reload_interval if self.watches_alias else 0
            next_poll = time.monotonic() + (interval if interval > 0 else float("inf"))
        log.info("the server's master is gone: the model agent stops")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="the serving model agent (started by the server)")
    parser.add_argument("--model-uri", required=True)
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--directory", type=Path, required=True)
    parser.add_argument("--reload-interval", type=float, default=30.0)
    parser.add_argument("--retry-seconds", type=float, default=1.0)
    parser.add_argument("--retry-max-seconds", type=float, default=30.0)
    parser.add_argument("--parent", type=int, default=None)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    set_mlflow_http_defaults()
    Agent(
        args.model_uri,
        args.tracking_uri,
        args.directory,
        reload_interval=args.reload_interval,
        retry_seconds=args.retry_seconds,
        retry_max_seconds=args.retry_max_seconds,
    ).run(parent=args.parent)


if __name__ == "__main__":
    main()
