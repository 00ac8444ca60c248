"""The files through which the model agent and the workers talk, both halves in one place.

In the server's run directory:

- `state.json`, written by the agent only (atomically: a temp file renamed over it): for each
  model URI it stages (one per served alias), what it staged (`model`: the version's identity
  fields plus `path`, its local directory, or `error` when its files could not be staged) and
  its view of the registry for that URI (`registry`), under `models`; the id of the last reload
  request it handled (`handled`) and its pid;
- `request`, written by a worker (atomically) to ask the agent to poll the registry now: a
  fresh id, which the agent echoes as `handled` once it has polled.

The workers never talk to the registry: they read `state.json` and load what it names.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STATE = "state.json"
REQUEST = "request"


@dataclass(frozen=True)
class Staged:
    """What the agent says of one model URI: the version it staged (None: none yet) and the
    registry as its polls for that URI see it."""

    model: dict[str, Any] | None = None
    registry: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AgentState:
    """What `state.json` says (empty when the agent has written nothing yet)."""

    models: dict[str, Staged] = field(default_factory=dict)  # by model URI
    handled: str | None = None
    agent_pid: int | None = None

    def of(self, model_uri: str) -> Staged:
        """What the agent says of `model_uri` (nothing yet, if it does not stage it (yet))."""
        return self.models.get(model_uri) or Staged()


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}")
    temporary.write_text(text)
    temporary.replace(path)


# -- the agent's half -------------------------------------------------------------------------


def publish(directory: Path, state: AgentState) -> None:
    """Write `state.json` (the agent only)."""
    record = {
        "models": {
            uri: {"model": staged.model, "registry": staged.registry}
            for uri, staged in state.models.items()
        },
        "handled": state.handled,
        "agent_pid": state.agent_pid,
    }
    _write_atomically(directory / STATE, json.dumps(record))


def pending_request(directory: Path, handled: str | None) -> str | None:
    """The id of a reload request not handled yet, if a worker wrote one."""
    try:
        request = (directory / REQUEST).read_text().strip()
    except FileNotFoundError:
        return None
    return request if request and request != handled else None


# -- the workers' half ------------------------------------------------------------------------


def read_state(directory: Path) -> AgentState:
    try:
        saved = json.loads((directory / STATE).read_text())
    except FileNotFoundError:
        return AgentState()
    models = saved.get("models") or {}
    return AgentState(
        models={
            uri: Staged(model=entry.get("model"), registry=entry.get("registry") or {})
            for uri, entry in models.items()
        },
        handled=saved.get("handled"),
        agent_pid=saved.get("agent_pid"),
    )


def state_stamp(directory: Path) -> int | None:
    """Changes whenever the agent publishes (None before its first state)."""
    try:
        return (directory / STATE).stat().st_mtime_ns
    except OSError:
        return None


def request_poll(directory: Path) -> str:
    """Ask the agent to poll now; returns the request's id, which it echoes as `handled`."""
    request = str(time.time_ns())
    _write_atomically(directory / REQUEST, request)
    return request
