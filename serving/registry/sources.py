"""Where a server's model versions come from: resolve what the URI names now, then its directory.

- `RegistrySource`: resolve and download with MLflow in this process (serving.registry.staging):
  tests, batch scoring, a Flask app without the process manager;
- `AgentSource`: under `python -m serving` the model agent (serving.registry.agent) resolves and
  stages versions, and the workers read what it staged (serving.registry.protocol): they never
  import MLflow;
- `LocalSource`: a model directory (a model baked into an image): no registry at all.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from serving.model.files import is_model_dir
from serving.model.identity import ModelInfo, read_identity
from serving.model.loaded import SelfCheckFailed
from serving.registry import protocol
from serving.registry.health import ModelNotFound, RegistryUnavailable
from serving.registry.staging import StagingArea, resolve

AGENT_WAIT_SECONDS = 30.0  # how long a forced reload waits for the agent's poll


class WaitingForAgent(RegistryUnavailable):
    """The model agent has not published its first staging yet: a normal start, not a fault."""


class Source:
    """`resolve` (what the URI names now) and `fetch` (its local directory); an agent-backed
    source also refreshes, changes `stamp`, says what it `staged` and reports the registry's
    health (then the store does not count registry faults itself)."""

    reports_health = False

    def resolve(self) -> ModelInfo:
        raise NotImplementedError

    def fetch(self, info: ModelInfo) -> Path:
        raise NotImplementedError

    def refresh(self) -> None:
        """Make `resolve` see the registry as it is now (a no-op unless an agent stages)."""

    def stamp(self) -> int | None:
        return None

    def staged(self) -> str | None:
        """The resolved URI of a version ready to load without the registry, if known."""
        return None

    def health(self) -> dict[str, Any] | None:
        return None


class RegistrySource(Source):
    """Resolve and download in this process, with MLflow."""

    def __init__(self, model_uri: str, tracking_uri: str):
        self.model_uri, self.tracking_uri = model_uri, tracking_uri
        self._area: StagingArea | None = None

    def resolve(self) -> ModelInfo:
        return ModelInfo(**asdict(resolve(self.model_uri, self.tracking_uri)))

    def fetch(self, info: ModelInfo) -> Path:
        if self._area is None:
            self._area = StagingArea()
        return self._area.stage(info, self.tracking_uri)  # a ModelInfo is a ModelIdentity


class LocalSource(Source):
    """A local model directory: its identity from the registry.json baked beside it, if any."""

    def __init__(self, model_uri: str):
        self.model_uri = model_uri

    def resolve(self) -> ModelInfo:
        identity = read_identity(Path(self.model_uri)) or {}
        return ModelInfo(model_uri=self.model_uri, resolved_uri=self.model_uri, **identity)

    def fetch(self, info: ModelInfo) -> Path:
        return Path(self.model_uri)


class AgentSource(Source):
    """What the model agent staged: read from its state file, no MLflow here."""

    reports_health = True

    def __init__(self, model_uri: str, directory: Path):
        self.model_uri, self.directory = model_uri, directory
        self._state = protocol.AgentState()

    def _read(self) -> protocol.AgentState:
        self._state = protocol.read_state(self.directory)
        return self._state

    @property
    def _staged(self) -> protocol.Staged:
        return self._state.of(self.model_uri)

    def resolve(self) -> ModelInfo:
        self._read()
        model = self._staged.model
        if not model:
            registry = self._staged.registry
            if registry.get("missing"):
                raise ModelNotFound(registry["missing"])
            if registry.get("reachable") is False:
                raise RegistryUnavailable(f"the registry is unreachable: {registry.get('error')}")
            raise WaitingForAgent("the model agent has not staged a version yet")
        known = ModelInfo.__dataclass_fields__
        return ModelInfo(**{k: v for k, v in model.items() if k in known})

    def fetch(self, info: ModelInfo) -> Path:
        if not info.path:  # the agent could not stage this version: refused like a bad one
            error = (self._staged.model or {}).get("error") or "not staged"
            raise SelfCheckFailed(error)
        return Path(info.path)

    def refresh(self) -> None:
        """Ask the agent to poll the registry now, and wait until it has."""
        request = protocol.request_poll(self.directory)
        deadline = time.monotonic() + AGENT_WAIT_SECONDS
        while time.monotonic() < deadline:
            if str(self._read().handled) == request:
                return
            time.sleep(0.05)
        raise RegistryUnavailable(f"the model agent did not poll within {AGENT_WAIT_SECONDS} s")

    def stamp(self) -> int | None:
        return protocol.state_stamp(self.directory)

    def staged(self) -> str | None:
        """The resolved URI of what the agent published, if anything (read from disk)."""
        if self.stamp() is None:
            return None
        self._read()
        return (self._staged.model or {}).get("resolved_uri")

    def health(self) -> dict[str, Any] | None:
        return self._staged.registry or None


def source_for(model_uri: str, tracking_uri: str, agent_dir: Path | None = None) -> Source:
    """A model directory is loaded as it is; under an agent, its staging; else MLflow here."""
    if is_model_dir(model_uri):
        return LocalSource(model_uri)
    if agent_dir is not None:
        return AgentSource(model_uri, agent_dir)
    return RegistrySource(model_uri, tracking_uri)
