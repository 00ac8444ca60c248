"""The registry's health as a poller sees it, the retry backoff, and which failures can heal.

Whoever polls the registry (the model agent, or a store that resolves in its own process) keeps
one `RegistryHealth`: `failed` and `recovered` count a failure streak and log it once when it
starts (then every REMIND_SECONDS) and once when it ends, so a dead registry is neither silent
nor a line per poll.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

from serving.errors import describe_error

log = logging.getLogger("serving.registry.health")

REMIND_SECONDS = 300.0  # a registry failure streak is logged again this often, not on every poll


class RegistryUnavailable(Exception):
    """The registry (or the artifact store behind it) did not answer: try again later."""


class ModelNotFound(LookupError):
    """The registry answered: it has no such model, alias, version or run (yet). Not a fault of
    the registry: retried (an alias or a version may appear later), and said so."""


class Backoff:
    """first, 2*first, 4*first, ... capped at `cap`; `reset` starts over."""

    def __init__(self, first: float, cap: float):
        self.first, self.cap = first, max(cap, first)
        self._next = first

    def next(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self.cap)
        return delay

    def reset(self) -> None:
        self._next = self.first


@dataclass
class RegistryHealth:
    """The registry as the poller sees it (what /version and the agent report): reachable or
    failing since when and how often, and what the model URI names that it does not have."""

    reachable: bool = True
    error: str | None = None  # why the last poll failed (unreachable), if it did
    missing: str | None = None  # what the registry answered it does not have (yet)
    failing_since: float | None = None
    failed_polls: int = 0
    last_poll_at: float | None = None
    _last_logged: float = field(default=0.0, repr=False)

    def failed(self, exc: BaseException, now: float, serving: str | None = None) -> None:
        """Count a failed poll; log the streak's first one, then every REMIND_SECONDS: as a
        warning when the registry did not answer, as information when it answered that the
        model, alias or version does not exist (yet: the poller waits for it)."""
        first = self.failing_since is None
        self.failing_since = self.failing_since or now
        self.failed_polls += 1
        if isinstance(exc, ModelNotFound):
            self.reachable, self.error, self.missing = True, None, str(exc)
        else:
            self.reachable, self.error, self.missing = False, describe_error(exc), None
        if not (first or now - self._last_logged >= REMIND_SECONDS):
            return
        self._last_logged = now
        fields = {"failed_polls": self.failed_polls, "serving": serving}
        if self.missing is not None:
            log.info(
                "waiting for the model: %s; polling the registry until it is there",
                self.missing,
                extra={"fields": {"event": "model_not_found", **fields}},
            )
            return
        log.warning(
            "registry poll failed (%d in a row since %.0f s ago): %s; serving version %s; "
            "the next failures of this streak are not logged each time",
            self.failed_polls,
            now - self.failing_since,
            self.error,
            serving,
            extra={"fields": {"event": "registry_unreachable", **fields}},
        )

    def recovered(self, now: float) -> None:
        """Reset after a poll that found the model; log the end of a failure streak."""
        if self.failing_since is None:
            return
        failed, since, missing = self.failed_polls, self.failing_since, self.missing
        self.reachable, self.error, self.missing = True, None, None
        self.failing_since, self.failed_polls = None, 0
        if missing is not None:
            event = {"event": "model_found", "failed_polls": failed}
            log.info("the model is there now (after %d polls)", failed, extra={"fields": event})
            return
        log.info(
            "registry reachable again after %d failed polls over %.1f s",
            failed,
            now - since,
            extra={"fields": {"event": "registry_back", "failed_polls": failed}},
        )

    def public(self) -> dict[str, Any]:
        """What /version and the agent's state file report."""
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}

    @classmethod
    def from_public(cls, fields: dict[str, Any]) -> RegistryHealth:
        known = {k: v for k, v in fields.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def describe(self) -> str | None:
        """Why nothing could be loaded from the registry, for /ready; None if it is fine."""
        if self.missing is not None:
            return f"{self.missing}; waiting for it"
        if not self.reachable:
            return f"the registry is unreachable: {self.error}"
        return None


def is_transient(exc: BaseException) -> bool:
    """Did this fail because a server did not answer (not because the model is bad)?"""
    seen: BaseException | None = exc
    for _ in range(20):  # the cause chain, bounded
        if seen is None:
            return False
        if isinstance(seen, ModelNotFound):
            return False
        if isinstance(seen, (RegistryUnavailable, ConnectionError, TimeoutError)):
            return True
        requests = sys.modules.get("requests")  # loaded by whatever raised one of its errors
        if requests is not None and isinstance(seen, (requests.ConnectionError, requests.Timeout)):
            return True
        text = str(seen)
        if "Max retries exceeded" in text or "Connection refused" in text:
            return True
        seen = seen.__cause__ or seen.__context__
    return False
