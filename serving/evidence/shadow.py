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

    def takes(self, live_version: str | None) -> bool:
        """Rows the shadow's own version answered are not scored again."""
        model = self.store.current
        return model is None or model.info.version != live_version

    def dropped(self, live_version: str | None, rows: int) -> None:
        self._child("dropped", str(live_version), self.version()).inc(rows)

    def failed(self, live_version: str | None, rows: int) -> None:
        self._child("errors", str(live_version), self.version()).inc(rows)

    def score(self, live_version: str | None, rows: Sequence[dict[str, Any]], live: Any) -> None:
        """Score `rows` (typed, as answered) with the shadow and count the agreement with the
        live labels `live`."""
        live_version = str(live_version)
        model = self.store.current
        if model is None:
            self._child("errors", live_version, names.NO_MODEL).inc(len(rows))
            return
        shadow_version = str(model.info.version)
        try:
            started = time.perf_counter()
            labels, _ = model.predict(list(rows))
            elapsed = time.perf_counter() - started
            if len(labels) != len(rows) or len(live) != len(rows):
                raise ValueError(f"{len(labels)} shadow, {len(live)} live labels, {len(rows)} rows")
        except Exception as exc:
            self._child("errors", live_version, shadow_version).inc(len(rows))
            self._warn(exc)
            return
        self._child("duration", live_version, shadow_version).observe(elapsed)
        self._child("rows", live_version, shadow_version).inc(len(rows))
        agree = 0
        for ours, theirs in zip(labels, live, strict=True):
            if int(ours) == int(theirs):
                agree += 1
            else:
                self._child("disagree", live_version, shadow_version, str(theirs), str(ours)).inc()
        if agree:
            self._child("agree", live_version, shadow_version).inc(agree)

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
