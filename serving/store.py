"""The served model: which version is held, and the swap or refusal of the next one.

`ModelStore.current` is the one attribute that holds the loaded model (a frozen `LoadedModel`);
loading builds a complete new `LoadedModel` and swaps it in with one assignment, so a request
that read `current` keeps a consistent model even if a reload swaps it meanwhile. Where versions
come from is the store's `source` (serving.registry.sources); how one loads and checks itself is
serving.model.
A worker holds one store per served model URI, and a request picks among them: serving.stores.

`poll`: resolve where the URI points now; if it moved, load that version, check it and swap it
in. A version that fails is refused: the old model keeps serving, `refused` says which version
and why, and it is not tried again while the alias stays on it (moving the alias away and back,
or a forced reload, tries it again). An unreachable registry is a transient fault, never a
refusal: whatever is loaded keeps serving. Who calls `poll`, and when, is serving.watcher.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from serving import metrics
from serving.errors import describe_error
from serving.model.identity import ModelInfo
from serving.model.loaded import LoadedModel, load_local
from serving.registry.health import (
    ModelNotFound,
    RegistryHealth,
    RegistryUnavailable,
    is_transient,
)
from serving.registry.sources import Source, WaitingForAgent, source_for
from serving.registry.staging import alias_of, watches_alias

if TYPE_CHECKING:
    from serving.config import Settings

log = logging.getLogger("serving.store")


class ModelNotReady(Exception):
    """No model is loaded (yet): the reason says why."""


@dataclass(frozen=True)
class Refusal:
    """A version that was not swapped in, and why."""

    version: str | None
    resolved_uri: str
    reason: str
    at: float


class ModelStore:
    def __init__(self, model_uri: str, tracking_uri: str, agent_dir: Path | None = None):
        self.model_uri = model_uri
        self.current: LoadedModel | None = None
        self.reason = "the model has not been loaded yet"
        self.refused: Refusal | None = None  # the last version refused (kept for /version)
        self.registry = RegistryHealth()
        self._skip: str | None = None  # a refused resolved URI not to retry while the alias stays
        self._lock = threading.Lock()  # one load at a time per process
        self.source: Source = source_for(model_uri, tracking_uri, agent_dir)

    @classmethod
    def from_settings(cls, settings: Settings, agent_dir: Path | None = None) -> ModelStore:
        return cls(settings.model_uri, settings.tracking_uri, agent_dir=agent_dir)

    @property
    def alias(self) -> str | None:
        """The alias this store serves (None for a fixed version or a model directory)."""
        return alias_of(self.model_uri)

    @property
    def watches_alias(self) -> bool:
        """Only an alias can move: a fixed version or a path is never polled once loaded."""
        return watches_alias(self.model_uri)

    # -- loading -------------------------------------------------------------------------------

    def resolve(self) -> ModelInfo:
        """The configured URI -> the version it names now (or the URI itself).

        A local model directory (a model baked into an image) never touches the registry: its
        identity comes from the `registry.json` that `python -m serving.bake` wrote beside it.
        """
        return self.source.resolve()

    def load(self) -> LoadedModel:
        """Resolve, load, self-check and swap in the model; raise (and keep the reason) if not."""
        with self._lock:
            try:
                loaded = self._load()
            except Exception as exc:
                self.reason = self._not_loaded(exc)
                raise ModelNotReady(self.reason) from exc
            finally:
                self._agent_health()
            metrics.model_loaded(loaded.info, reload=self.current is not None)
            self.current = loaded
            self.reason = ""
            return loaded

    def try_load(self) -> bool:
        try:
            loaded = self.load()
        except ModelNotReady as exc:
            waiting = isinstance(exc.__cause__, WaitingForAgent | ModelNotFound)
            log.log(logging.INFO if waiting else logging.WARNING, "model not loaded: %s", exc)
            return False
        log.info("model loaded: %s (version %s)", loaded.info.resolved_uri, loaded.info.version)
        return True

    def poll(self, force: bool = False, refresh: bool = False) -> str:
        """Ask the registry where the URI points; load, check and swap in a new version.

        Returns "unchanged", "swapped", "refused" (the old model keeps serving), "skipped" (the
        alias still points at a version refused before; `force` tries it again), "missing" (the
        registry has no such model, alias or version, yet) or "unreachable" (the registry, or
        the model agent, has no answer yet; whatever is loaded keeps serving).
        `refresh` first has the model agent (if one stages for this process) poll the registry.
        """
        with self._lock:
            self.registry.last_poll_at = time.time()
            try:
                return self._poll(force, refresh)
            finally:
                self._agent_health()

    def _poll(self, force: bool, refresh: bool) -> str:
        """`poll`, with the lock held."""
        try:
            if refresh:
                self.source.refresh()
            info = self.resolve()
        except Exception as exc:
            self._registry_failed(exc)
            return "missing" if isinstance(exc, ModelNotFound) else "unreachable"
        current = self.current
        if current is not None and info.resolved_uri == current.info.resolved_uri:
            self._registry_ok()
            self._skip = None  # moving the alias away and back tries a refused one again
            return "unchanged"
        if not force and current is not None and info.resolved_uri == self._skip:
            self._registry_ok()
            return "skipped"
        try:
            loaded = self._load(info)
        except Exception as exc:
            if is_transient(exc):  # the registry or artifact store went away mid-load
                self._registry_failed(exc)
                return "unreachable"
            self._registry_ok()
            self._refuse(info, exc)
            return "refused"
        self._registry_ok()
        self.current, self.reason, self._skip = loaded, "", None
        metrics.model_loaded(loaded.info, reload=current is not None)
        was = current.info.version if current is not None else None
        log.info(
            "model swapped in: %s (version %s, was %s)",
            info.resolved_uri,
            info.version,
            was,
            extra={"fields": {"event": "model_swapped", "version": info.version, "was": was}},
        )
        return "swapped"

    def _refuse(self, info: ModelInfo, exc: Exception) -> None:
        reason = describe_error(exc)
        self.refused = Refusal(info.version, info.resolved_uri, reason, time.time())
        self._skip = info.resolved_uri
        metrics.reload_failed(info.version)
        serving = self.current.info.version if self.current is not None else None
        if self.current is None:
            self.reason = f"cannot load {self.model_uri} ({info.resolved_uri}): {reason}"
        log.warning(
            "refused version %s (%s): %s; still serving version %s",
            info.version,
            info.resolved_uri,
            reason,
            serving,
            extra={
                "fields": {
                    "event": "model_refused",
                    "version": info.version,
                    "reason": reason,
                    "serving": serving,
                }
            },
        )

    def _not_loaded(self, exc: BaseException) -> str:
        """Why nothing is loaded, for /ready: waiting (for the agent, or for a model that does
        not exist yet) is said as such, apart from a registry that does not answer."""
        if isinstance(exc, WaitingForAgent):
            return f"waiting for the model agent to stage {self.model_uri}"
        if isinstance(exc, ModelNotFound):
            return f"cannot load {self.model_uri}: {exc}; waiting for it"
        if isinstance(exc, RegistryUnavailable) or is_transient(exc):
            return (
                f"cannot load {self.model_uri}: the registry is unreachable: {describe_error(exc)}"
            )
        return f"cannot load {self.model_uri}: {describe_error(exc)}"

    def _registry_failed(self, exc: Exception) -> None:
        if self.current is None:
            self.reason = self._not_loaded(exc)
        if self.source.reports_health:  # the agent counts and logs registry faults
            return
        serving = self.current.info.version if self.current is not None else None
        self.registry.failed(exc, time.time(), serving)

    def _registry_ok(self) -> None:
        if not self.source.reports_health:  # else the agent's view, copied by _agent_health
            self.registry.recovered(time.time())

    def _agent_health(self) -> None:
        """Under the model agent, the registry's health is the agent's view of it."""
        health = self.source.health()
        if health:
            self.registry = RegistryHealth.from_public(health)

    def _load(self, info: ModelInfo | None = None) -> LoadedModel:
        if info is None:
            info = self.resolve()
        return load_local(self.source.fetch(info), info)

    def stamp(self) -> int | None:
        """Changes when the model agent staged something new (None without an agent)."""
        return self.source.stamp()

    def status(self) -> dict[str, Any]:
        """The reload state /version reports next to the model's identity."""
        return {
            "refused": asdict(self.refused) if self.refused is not None else None,
            "registry": self.registry.public(),
        }

    # -- serving -------------------------------------------------------------------------------

    def ensure(self) -> LoadedModel | None:
        """The loaded model; if none yet but the model agent has staged one, load it now (in
        the calling request) instead of waiting for the watcher's next tick: a worker that
        starts (or restarts) after the agent staged never answers 503 for want of a tick."""
        model = self.current
        if model is None:
            staged = self.source.staged()
            if staged is not None and staged != self._skip:  # not one refused already
                self.poll()
                model = self.current
        return model

    def get(self) -> LoadedModel:
        model = self.ensure()
        if model is None:
            raise ModelNotReady(self.reason)
        return model
