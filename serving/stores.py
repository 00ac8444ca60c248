"""A worker's stores, one per served model URI, and the pick of one for a request.

`Stores` holds a store (serving.store's `ModelStore`) per served model URI (under
`--serve-aliases`, one per alias), the default first: each is loaded, checked, swapped and
refused on its own, so a broken challenger never touches the champion; a request picks its store
by alias or by version, and an alias or version this server does not serve is a 404 naming the
ones it does.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from serving.errors import ApiError
from serving.store import ModelStore

if TYPE_CHECKING:
    from serving.config import Settings


class Stores:
    """A worker's stores, one per served model URI, the default (`Settings.model_uris[0]`) first."""

    def __init__(self, stores: Sequence[ModelStore]):
        if not stores:
            raise ValueError("a server serves at least one model URI")
        self.all: tuple[ModelStore, ...] = tuple(stores)
        self.default = self.all[0]
        self._by_alias = {store.alias: store for store in self.all if store.alias is not None}

    @classmethod
    def from_settings(cls, settings: Settings, agent_dir: Path | None = None) -> Stores:
        return cls(
            [ModelStore(uri, settings.tracking_uri, agent_dir) for uri in settings.model_uris]
        )

    def __iter__(self) -> Iterator[ModelStore]:
        return iter(self.all)

    def __len__(self) -> int:
        return len(self.all)

    @property
    def aliases(self) -> list[str]:
        return list(self._by_alias)

    def by_alias(self, alias: str | None) -> ModelStore:
        """The store of `alias`; no alias (None or empty): the default; an alias this server
        does not serve: a 404 naming the ones it does."""
        if not alias:
            return self.default
        store = self._by_alias.get(alias)
        if store is None:
            served = ", ".join(repr(a) for a in self._by_alias) or "none (no alias is served)"
            raise ApiError(
                "unknown_alias",
                f"this server does not serve the alias {alias[:64]!r}; it serves {served}",
                status=404,
                aliases=self.aliases,
            )
        return store

    def by_version(self, version: str) -> ModelStore:
        """The store whose loaded model is `version` (the default first, when two aliases point
        at one version); a version no store holds: a 404 naming the loaded ones."""
        for store in self.all:
            model = store.current
            if model is not None and model.info.version == version:
                return store
        loaded = ", ".join(repr(v) for v in self.versions()) or "none yet"
        raise ApiError(
            "unknown_version",
            f"version {version[:64]!r} is not loaded here; loaded versions: {loaded}",
            status=404,
            versions=self.versions(),
        )

    def versions(self) -> list[str]:
        """The loaded versions, the default's first, each once."""
        seen: dict[str, None] = {}
        for store in self.all:
            model = store.current
            if model is not None and model.info.version is not None:
                seen.setdefault(model.info.version)
        return list(seen)

    def try_load(self) -> None:
        for store in self.all:
            store.try_load()

    def reload(self) -> dict[str, str]:
        """A forced poll of every store, the agent asked to poll the registry first (once):
        each store's outcome by model URI."""
        results = {}
        for i, store in enumerate(self.all):
            results[store.model_uri] = store.poll(force=True, refresh=i == 0)
        return results


def as_stores(stores: ModelStore | Stores) -> Stores:
    """One store is a server of one model URI."""
    return stores if isinstance(stores, Stores) else Stores([stores])
