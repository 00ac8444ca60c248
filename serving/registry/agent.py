"""The model agent: the one process of a server that talks to the MLflow registry.

`python -m serving` starts it beside the workers (serving.server.agent_process). It resolves
each model URI the server serves (one per alias under `--serve-aliases`), downloads each new
version into the run directory (serving.registry.staging) and publishes what it staged for each
URI, with its view of the registry, in `state.json` (serving.registry.protocol). The workers
watch that file and load what it names: they never import MLflow, so each weighs what ONNX
Runtime and Flask weigh, starts in a fraction of a second, and a replaced worker loads the
current version at once.

Its loop, for each URI on its own: while nothing is staged, retry with backoff
(`load_retry_seconds` doubling up to `load_retry_max_seconds`); then poll every
`reload_interval` seconds if the URI is an alias. A missing or broken alias delays no other.
`POST /admin/reload` (in a worker) writes `request`; the agent polls at once and answers by
putting the request's id in `state.json` as `handled`. It exits when its parent (the server's
master) is gone.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from serving.errors import describe_error
from serving.registry import protocol
from serving.registry.health import Backoff, ModelNotFound, RegistryHealth, is_transient
from serving.registry.staging import (
    StagingArea,
    resolve,
    set_mlflow_http_defaults,
    watches_alias,
)
from serving.request_log import configure_logging

log = logging.getLogger("serving.registry.agent")

TICK = 0.1  # seconds between looks at the request file and the parent


class Tracked:
    """One model URI the agent stages: what it staged, the registry as its polls see it, its
    retry backoff and when it is polled next. Each has a staging directory of its own, so that
    pruning one alias's old versions never removes the version another alias is served from."""

    def __init__(self, model_uri: str, directory: Path, backoff: Backoff):
        self.model_uri = model_uri
        self.area = StagingArea(directory / "models" / _slug(model_uri))
        self.staged: dict[str, Any] | None = None  # ModelInfo fields + path of what is staged
        self.registry = RegistryHealth()
        self.backoff = backoff
        self.next_poll = time.monotonic()

    def public(self) -> protocol.Staged:
        return protocol.Staged(model=self.staged, registry=self.registry.public())


def _slug(model_uri: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", model_uri.removeprefix("models:/"))[:80] or "model"


class Agent:
    def __init__(
        self,
        model_uris: Sequence[str],
        tracking_uri: str,
        directory: Path,
        reload_interval: float = 30.0,
        retry_seconds: float = 1.0,
        retry_max_seconds: float = 30.0,
    ):
        if isinstance(model_uris, str):
            model_uris = [model_uris]
        self.tracking_uri = tracking_uri
        self.directory = directory
        self.reload_interval = reload_interval
        self.tracked = {
            uri: Tracked(uri, directory, Backoff(retry_seconds, retry_max_seconds))
            for uri in dict.fromkeys(model_uris)
        }
        self.handled: str | None = None

    @property
    def model_uri(self) -> str:
        """The first (default) model URI."""
        return next(iter(self.tracked))

    @property
    def staged(self) -> dict[str, Any] | None:
        """What is staged for the first (default) model URI."""
        return self.tracked[self.model_uri].staged

    @staged.setter
    def staged(self, value: dict[str, Any] | None) -> None:
        self.tracked[self.model_uri].staged = value

    @property
    def registry(self) -> RegistryHealth:
        return self.tracked[self.model_uri].registry

    def poll(self, force: bool = False, model_uri: str | None = None) -> str:
        """Resolve `model_uri` (default: the first); stage a version not staged yet. Returns
        unchanged, staged, missing (the registry has no such model, alias, version or run yet:
        retried), unreachable or failed (its files could not be staged: published with the
        reason, so that the workers refuse it as they refuse a version that does not load;
        `force` tries it again)."""
        tracked = self.tracked[model_uri or self.model_uri]
        now = time.time()
        registry = tracked.registry
        registry.last_poll_at = now
        serving = (tracked.staged or {}).get("version")
        try:
            found = resolve(tracked.model_uri, self.tracking_uri)
        except Exception as exc:  # not answering, or no such alias (yet): retried
            registry.failed(exc, now, serving)
            return "missing" if isinstance(exc, ModelNotFound) else "unreachable"
        registry.recovered(now)
        staged = tracked.staged
        same = staged is not None and found.resolved_uri == staged["resolved_uri"]
        if same and not (force and staged.get("error")):
            return "unchanged"
        try:
            path = tracked.area.stage(found, self.tracking_uri)
        except Exception as exc:
            if isinstance(exc, ModelNotFound):  # e.g. runs:/<id>/model of no such run
                registry.failed(exc, now, serving)
                return "missing"
            if is_transient(exc):  # the registry or artifact store went away mid-download
                registry.failed(exc, now, serving)
                return "unreachable"
            error = f"cannot stage {found.resolved_uri}: {describe_error(exc)}"
            log.warning("%s", error, extra={"fields": {"event": "model_not_staged"}})
            tracked.staged = {**asdict(found), "path": "", "error": error}
            return "failed"
        tracked.staged = {**asdict(found), "path": str(path)}
        log.info(
            "staged %s (version %s) in %s",
            found.resolved_uri,
            found.version,
            path,
            extra={
                "fields": {
                    "event": "model_staged",
                    "version": found.version,
                    "model_uri": tracked.model_uri,
                }
            },
        )
        return "staged"

    def publish(self) -> None:
        protocol.publish(
            self.directory,
            protocol.AgentState(
                models={uri: tracked.public() for uri, tracked in self.tracked.items()},
                handled=self.handled,
                agent_pid=os.getpid(),
            ),
        )

    def _schedule(self, tracked: Tracked, result: str) -> None:
        """When `tracked` is polled next: backoff while nothing is staged, else every
        `reload_interval` if its URI is an alias (never, for a fixed version)."""
        if tracked.staged is None or result == "error":
            tracked.next_poll = time.monotonic() + tracked.backoff.next()
            return
        tracked.backoff.reset()
        interval = self.reload_interval if watches_alias(tracked.model_uri) else 0
        tracked.next_poll = time.monotonic() + (interval if interval > 0 else float("inf"))

    def run(self, parent: int | None = None, stop: threading.Event | None = None) -> None:
        """Poll until the process `parent` is gone (or `stop` is set)."""
        stop = stop or threading.Event()
        while (parent is None or os.getppid() == parent) and not stop.is_set():
            request = protocol.pending_request(self.directory, self.handled)
            now = time.monotonic()
            due = [t for t in self.tracked.values() if request is not None or t.next_poll <= now]
            if not due:
                time.sleep(TICK)
                continue
            for tracked in due:
                try:
                    result = self.poll(force=request is not None, model_uri=tracked.model_uri)
                except Exception:  # a bug here must not end the agent: the server would go stale
                    log.exception("model poll failed unexpectedly")
                    result = "error"
                self._schedule(tracked, result)
            if request is not None:
                self.handled = request
            try:
                self.publish()
            except OSError:  # the run directory is gone: the server is shutting down
                if not self.directory.is_dir():
                    break
                raise
        log.info("the server's master is gone: the model agent stops")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="the serving model agent (started by the server)")
    parser.add_argument(
        "--model-uri", action="append", required=True, help="repeat: one per served alias"
    )
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
