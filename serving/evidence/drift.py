"""Input drift: a bounded rolling window of recent rows per served version, binned by the
version's training profile (serving.model.profile), and the PSI and missing rate per column.

Each worker keeps, per version, the bins of its last `size` rows (a ring of small ints: the rows
themselves are not kept) and publishes the count of every bin as a `livesum` gauge, so that the
scrape sums the workers' windows. The PSI is not additive, so it is derived at the scrape from
those summed counts (`derive`, registered with serving.metrics): the PSI of the union of the
workers' windows against the profile, whichever worker answers /metrics or /drift.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from serving.evidence import instruments as names
from serving.model.profile import Profile

ProfileOf = Callable[[str], Profile | None]  # version -> its profile (None: not known here)


class Window:
    """The bins of the last `size` rows one worker answered with one version."""

    def __init__(self, profile: Profile, size: int):
        self.profile, self.size = profile, size
        self.columns = list(profile.columns)
        self._bins = np.zeros((size, len(self.columns)), dtype=np.int16)
        self._next, self.rows = 0, 0

    def add(self, rows: Sequence[dict[str, Any]]) -> None:
        """Bin `rows` in bulk, column by column, into the ring (the oldest rows fall out)."""
        rows = rows[-self.size :]
        if not rows:
            return
        binned = np.column_stack(
            [
                self.profile.columns[name].bin_indices([row.get(name) for row in rows])
                for name in self.columns
            ]
        )
        positions = (self._next + np.arange(len(rows))) % self.size
        self._bins[positions] = binned
        self._next = int((self._next + len(rows)) % self.size)
        self.rows = min(self.size, self.rows + len(rows))

    def counts(self) -> dict[str, np.ndarray]:
        """Each column's bin counts over the rows in the window."""
        held = self._bins[: self.rows] if self.rows < self.size else self._bins
        return {
            name: np.bincount(held[:, i], minlength=self.profile.columns[name].bins)
            for i, name in enumerate(self.columns)
        }


class Windows:
    """One worker's windows, by version; `publish` writes their counts to the gauges."""

    def __init__(self, size: int):
        self.size = size
        self._windows: dict[str, Window] = {}
        self._shown: dict[str, dict[str, np.ndarray]] = {}

    def add(self, version: str, profile: Profile, rows: Sequence[dict[str, Any]]) -> None:
        window = self._windows.get(version)
        if window is None or window.profile is not profile:
            window = self._windows[version] = Window(profile, self.size)
        window.add(rows)

    def forget(self, served: Iterable[str]) -> None:
        """Drop the windows of versions no longer served (their gauges go to 0)."""
        keep = set(served)
        for version in [v for v in self._windows if v not in keep]:
            del self._windows[version]

    def publish(self) -> None:
        """Set the gauges of every bin that changed since the last call."""
        gauges = names.instruments()
        for version in [v for v in self._shown if v not in self._windows]:
            for column, counts in self._shown.pop(version).items():
                for index in np.flatnonzero(counts):
                    gauges.bin_rows.labels(version, column, str(index)).set(0)
            gauges.window_rows.labels(version).set(0)
        for version, window in self._windows.items():
            shown = self._shown.setdefault(version, {})
            for column, counts in window.counts().items():
                before = shown.get(column)
                if before is not None and np.array_equal(before, counts):
                    continue
                changed = range(len(counts)) if before is None else np.flatnonzero(before != counts)
                for index in changed:
                    gauges.bin_rows.labels(version, column, str(index)).set(int(counts[index]))
                shown[column] = counts
            gauges.window_rows.labels(version).set(window.rows)


def summed_counts(families: Iterable[Any]) -> dict[str, dict[str, dict[int, float]]]:
    """version -> column -> bin -> rows, from the collected (all workers') bin gauges."""
    out: dict[str, dict[str, dict[int, float]]] = {}
    for family in families:
        if family.name != names.DRIFT_BIN_ROWS:
            continue
        for sample in family.samples:
            labels = sample.labels
            try:
                index = int(labels["bin"])
            except (KeyError, ValueError):
                continue
            by_column = out.setdefault(labels.get("version", ""), {})
            bins = by_column.setdefault(labels.get("column", ""), {})
            bins[index] = bins.get(index, 0.0) + sample.value
    return out


def report(families: Iterable[Any], profile_of: ProfileOf) -> dict[str, dict[str, Any]]:
    """version -> {"rows": n, "columns": {column: {psi, missing_rate, training_missing_rate}}},
    for the versions whose profile this process knows."""
    out: dict[str, dict[str, Any]] = {}
    for version, by_column in summed_counts(families).items():
        profile = profile_of(version)
        if profile is None:
            continue
        columns: dict[str, Any] = {}
        rows = 0.0
        for column, bins in by_column.items():
            expected = profile.columns.get(column)
            if expected is None:
                continue
            counts = np.zeros(expected.bins)
            for index, value in bins.items():
                if 0 <= index < expected.bins:
                    counts[index] = value
            total = float(counts.sum())
            rows = max(rows, total)
            if total <= 0:
                continue
            columns[column] = {
                "psi": expected.psi(counts),
                "missing_rate": float(counts[expected.missing_bin] / total),
                "training_missing_rate": expected.expected[expected.missing_bin],
            }
        if columns:
            out[version] = {"rows": int(rows), "columns": columns}
    return out


def derive(profile_of: ProfileOf) -> Callable[[list[Any]], list[Any]]:
    """The scrape-time gauges (PSI and missing rate per version and column) from the collected
    families: registered with serving.metrics.add_derived."""

    def derived(families: list[Any]) -> list[Any]:
        from prometheus_client.core import GaugeMetricFamily

        psi = GaugeMetricFamily(
            names.DRIFT_PSI,
            "Population stability index of the drift windows against the training profile",
            labels=["version", "column"],
        )
        missing = GaugeMetricFamily(
            names.DRIFT_MISSING,
            "Share of the drift windows' rows where the column is missing (null)",
            labels=["version", "column"],
        )
        for version, entry in report(families, profile_of).items():
            for column, figures in entry["columns"].items():
                psi.add_metric([version, column], figures["psi"])
                missing.add_metric([version, column], figures["missing_rate"])
        return [psi, missing]

    return derived
