"""Shadow scoring: the shadow alias's version scores the rows another version answered, and the
two labels are counted as agreeing or not (serving.evidence.instruments names the counters).

It runs in the evidence thread (serving.evidence.hook), never in a request: the client's answer
never waits for it, and whatever the shadow does (no model loaded, an exception, a wrong number
of labels) is counted as its error and changes nothing that was answered.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from serving.evidence import instruments as names
from serving.evidence.relay import Item
from serving.model.loaded import LoadedModel
from serving.store import ModelStore

log = logging.getLogger("serving.evidence.shadow")

WARN_EVERY = 60.0  # seconds between two warnings about shadow failures


class Shadow:
    def __init__(self, store: ModelStore):
        self.store = store
        self._children: dict[tuple[str, ...], Any] = {}
        self._warned = 0.0

    @property
    def alias(self) -> str | None:
        return self.store.alias

    def version(self) -> str:
        model = self.store.current
        return str(model.info.version) if model is not None else names.NO_MODEL

    def takes(self, live: object) -> bool:
        """Rows the shadow alias's own model answered (a request that asked for it) are not
        scored again; another alias's, even on the same version, are."""
        return live is not self.store.current

    def dropped(self, live_version: str | None, rows: int) -> None:
        self._child("dropped", str(live_version), self.version()).inc(rows)

    def failed(self, live_version: str | None, rows: int) -> None:
        self._child("errors", str(live_version), self.version()).inc(rows)

    def score(self, items: Sequence[Item], timed: bool = True) -> None:
        """Score a round's requests (live version, typed rows as answered, live labels) with the
        shadow and count the agreement. The first request is scored alone and timed (the
        latency histogram: one request per call, as the live model answered it) unless not
        `timed`; the rest in one call, which costs a fraction of one call per request."""
        model = self.store.ensure()  # a worker that has not loaded it yet loads it here
        if model is None:
            for live_version, rows, _ in items:
                self._child("errors", live_version, names.NO_MODEL).inc(len(rows))
            return
        usable = []
        for item in items:
            if len(item[1]) == len(item[2]):
                usable.append(item)
            else:  # the live labels do not match the rows: nothing to compare
                self._child("errors", item[0], str(model.info.version)).inc(len(item[1]))
        if timed and usable:
            self._score(model, usable[:1], timed=True)
            usable = usable[1:]
        if usable:
            self._score(model, usable, timed=False)

    def _score(self, model: LoadedModel, items: Sequence[Item], timed: bool) -> None:
        shadow_version = str(model.info.version)
        rows = [row for _, batch, _ in items for row in batch]
        try:
            started = time.perf_counter()
            labels, _ = model.predict(rows)
            elapsed = time.perf_counter() - started
            if len(labels) != len(rows):
                raise ValueError(f"{len(labels)} shadow labels for {len(rows)} rows")
        except Exception as exc:
            for live_version, batch, _ in items:
                self._child("errors", live_version, shadow_version).inc(len(batch))
            self._warn(exc)
            return
        if timed:
            self._child("duration", items[0][0], shadow_version).observe(elapsed)
        scored: dict[str, int] = {}
        agreed: dict[str, int] = {}
        disagreed: dict[tuple[str, str, str], int] = {}
        position = 0
        for live_version, batch, live in items:
            scored[live_version] = scored.get(live_version, 0) + len(batch)
            for theirs in live:
                ours = labels[position]
                position += 1
                if int(ours) == int(theirs):
                    agreed[live_version] = agreed.get(live_version, 0) + 1
                else:
                    key = (live_version, str(theirs), str(ours))
                    disagreed[key] = disagreed.get(key, 0) + 1
        for live_version, count in scored.items():
            self._child("rows", live_version, shadow_version).inc(count)
        for live_version, count in agreed.items():
            self._child("agree", live_version, shadow_version).inc(count)
        for (live_version, theirs, ours), count in disagreed.items():
            self._child("disagree", live_version, shadow_version, theirs, ours).inc(count)

    def _child(self, kind: str, *labels: str) -> Any:
        key = (kind, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = getattr(names.instruments(), kind).labels(*labels)
        return child

    def _warn(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned >= WARN_EVERY:
            self._warned = now
            log.warning(
                "shadow scoring failed (counted in %s; the live answers stand): %s: %s",
                names.SHADOW_ERRORS,
                type(exc).__name__,
                str(exc)[:200],
            )


def agreement(families: Sequence[Any]) -> list[dict[str, Any]]:
    """The running shadow counts, per (live, shadow) version pair, from collected families."""
    wanted = {
        names.SHADOW_ROWS: "rows",
        names.SHADOW_AGREE: "agree",
        names.SHADOW_DISAGREE: "disagree",
        names.SHADOW_ERRORS: "errors",
        names.SHADOW_DROPPED: "dropped",
    }
    pairs: dict[tuple[str, str], dict[str, Any]] = {}
    for family in families:
        for sample in family.samples:
            kind = wanted.get(sample.name)
            if kind is None:
                continue
            pair = (sample.labels.get("live_version", ""), sample.labels.get("shadow_version", ""))
            entry = pairs.setdefault(pair, {key: 0 for key in wanted.values()})
            entry[kind] += int(sample.value)
    out = []
    for (live, shadow), entry in sorted(pairs.items()):
        rows = entry["rows"]
        agreement_share = entry["agree"] / rows if rows else None
        out.append(
            {"live_version": live, "shadow_version": shadow, **entry, "agreement": agreement_share}
        )
    return out
