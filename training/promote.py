"""`python -m training.promote`: move `champion` to the challenger on the evidence of live traffic.

It reads a running server's shadow evidence from `/metrics` (the challenger scoring every answered
row in shadow: `python -m serving --serve-aliases champion,challenger --shadow challenger`) and
both versions' offline metrics from the registry, prints them side by side (rows seen, agreement,
disagreement by class, p50/p99 of the model time, errors, the gate metric on the validation
rows), and checks the thresholds given as flags:

- **rows**: the challenger scored at least `--min-rows` rows in shadow;
- **errors**: it failed on at most `--max-errors` of them (0);
- **latency**: its p99 model time is at most `--max-latency-ratio` times the champion's.

Without `--apply` nothing moves (a dry run). With it, `champion` moves to the challenger only
when every check holds; either way the decision, with its figures, is recorded on the
challenger's version as tags (`promote_decision`, `promote_evidence`). Exit status: 0 when
promoted or in a dry run, 1 when `--apply` was refused, 2 when there is no evidence to judge.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from prometheus_client.parser import text_string_to_metric_families

from serving.evidence import instruments as names
from training.config import Paths, load_params
from training.tracking import tracking_uri

STAGE_DURATION = "serving_stage_duration_seconds"  # serving.metrics: the `predict` stage


class NoEvidence(Exception):
    """The server has no shadow evidence for these two versions."""


@dataclass(frozen=True)
class Evidence:
    rows: int
    agree: int
    errors: int
    dropped: int
    disagree: dict[str, int]  # by the live (champion's) label: "0" -> rows the shadow said 1
    champion_ms: tuple[float | None, float | None]  # p50, p99 of the model time
    challenger_ms: tuple[float | None, float | None]

    @property
    def agreement(self) -> float | None:
        return self.agree / self.rows if self.rows else None


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """The q-quantile of a histogram's cumulative buckets ({le: count}), interpolated within
    its bucket as Prometheus' histogram_quantile does; None for no observations."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank = q * buckets[bounds[-1]]
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, count
    return lower


def read_metrics(server: str) -> list[Any]:
    with urllib.request.urlopen(server.rstrip("/") + "/metrics", timeout=10) as answer:
        return list(text_string_to_metric_families(answer.read().decode()))


def evidence(families: Iterable[Any], champion: str, challenger: str) -> Evidence:
    """The shadow evidence for (champion answering, challenger in shadow) in scraped families."""
    pair = {"live_version": champion, "shadow_version": challenger}
    totals = {"rows": 0.0, "agree": 0.0, "errors": 0.0, "dropped": 0.0}
    metric_of = {
        names.SHADOW_ROWS: "rows",
        names.SHADOW_AGREE: "agree",
        names.SHADOW_ERRORS: "errors",
        names.SHADOW_DROPPED: "dropped",
    }
    disagree: dict[str, int] = {}
    live_buckets: dict[float, float] = {}
    shadow_buckets: dict[float, float] = {}
    for family in families:
        for sample in family.samples:
            labels = sample.labels
            mine = all(labels.get(k) == v for k, v in pair.items())
            if sample.name in metric_of and mine:
                totals[metric_of[sample.name]] += sample.value
            elif sample.name == names.SHADOW_DISAGREE and mine:
                live = labels.get("live_class", "?")
                disagree[live] = disagree.get(live, 0) + int(sample.value)
            elif sample.name == names.SHADOW_DURATION + "_bucket" and mine:
                le = float(labels["le"])
                shadow_buckets[le] = shadow_buckets.get(le, 0.0) + sample.value
            elif (
                sample.name == STAGE_DURATION + "_bucket"
                and labels.get("stage") == "predict"
                and labels.get("version") == champion
            ):
                le = float(labels["le"])
                live_buckets[le] = live_buckets.get(le, 0.0) + sample.value
    if not any(totals.values()):
        raise NoEvidence(
            f"the server has no shadow counts for champion v{champion} with challenger "
            f"v{challenger} in shadow: is it serving with --shadow, on these versions?"
        )

    def ms(buckets: dict[float, float]) -> tuple[float | None, float | None]:
        return tuple(  # type: ignore[return-value]
            None if (x := quantile(q, buckets)) is None else x * 1e3 for q in (0.5, 0.99)
        )

    return Evidence(
        rows=int(totals["rows"]),
        agree=int(totals["agree"]),
        errors=int(totals["errors"]),
        dropped=int(totals["dropped"]),
        disagree=disagree,
        champion_ms=ms(live_buckets),
        challenger_ms=ms(shadow_buckets),
    )


def checks(
    found: Evidence, min_rows: int, max_errors: int, max_latency_ratio: float
) -> list[Check]:
    ours, theirs = found.challenger_ms[1], found.champion_ms[1]
    if ours is None or theirs is None:
        latency = Check("latency", False, "no p99 model time to compare")
    else:
        limit = max_latency_ratio * theirs
        latency = Check(
            "latency",
            ours <= limit,
            f"challenger p99 {ours:.3f} ms vs {limit:.3f} ms "
            f"({max_latency_ratio:g} x the champion's {theirs:.3f} ms)",
        )
    return [
        Check(
            "rows", found.rows >= min_rows, f"{found.rows} rows scored in shadow, need {min_rows}"
        ),
        Check(
            "errors",
            found.errors <= max_errors,
            f"{found.errors} rows failed in shadow, at most {max_errors}",
        ),
        latency,
    ]


def _ms(pair: tuple[float | None, float | None]) -> str:
    return " / ".join("-" if v is None else f"{v:.3f}" for v in pair) + " ms"


def _metric(tags: dict[str, str], key: str) -> str:
    value = tags.get(key)
    try:
        return f"{float(value):.4f}" if value is not None else "-"
    except ValueError:
        return value or "-"


def report(versions: tuple[str, str], tags: tuple[dict, dict], metric: str, found: Evidence) -> str:
    """The side-by-side report."""
    share = "-" if found.agreement is None else f"{found.agreement:.4f}"
    by_class = ", ".join(
        f"champion {live} -> challenger {1 - int(live) if live in '01' else '?'}: {count}"
        for live, count in sorted(found.disagree.items())
    )
    rows = [
        ("", f"champion v{versions[0]}", f"challenger v{versions[1]}"),
        ("rows seen", f"{found.rows + found.errors + found.dropped} answered",
         f"{found.rows} scored in shadow"),
        ("agreement", "", f"{share} ({found.agree} of {found.rows} rows)"),
        ("disagreement by class", "", by_class or "none"),
        ("model time p50 / p99", _ms(found.champion_ms), _ms(found.challenger_ms)),
        ("errors / dropped", "", f"{found.errors} / {found.dropped}"),
        (f"offline valid_{metric}", _metric(tags[0], f"valid_{metric}"),
         _metric(tags[1], f"valid_{metric}")),
        (f"offline cv_{metric}_mean", _metric(tags[0], f"cv_{metric}_mean"),
         _metric(tags[1], f"cv_{metric}_mean")),
    ]  # fmt: skip
    width = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, width, strict=True)).rstrip() for r in rows
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.promote",
        description="Report the challenger's shadow evidence from a running server beside both "
        "versions' offline metrics; with --apply, move the champion alias to the challenger "
        "when the thresholds hold.",
    )
    parser.add_argument("--server", default="http://127.0.0.1:5000", help="the running server")
    parser.add_argument("--min-rows", type=int, default=1000, help="rows scored in shadow")
    parser.add_argument("--max-errors", type=int, default=0, help="rows failed in shadow")
    parser.add_argument(
        "--max-latency-ratio",
        type=float,
        default=1.5,
        help="the challenger's p99 model time, at most this times the champion's",
    )
    parser.add_argument("--apply", action="store_true", help="move the alias (else a dry run)")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    paths = Paths()
    reg = load_params(paths.root / "params.yaml").registry
    client = MlflowClient(tracking_uri=tracking_uri(paths.root))
    try:
        champion, challenger = (
            client.get_model_version_by_alias(reg.model_name, alias)
            for alias in (reg.champion_alias, reg.challenger_alias)
        )
    except MlflowException as exc:
        sys.exit(f"promote: {reg.model_name} needs a champion and a challenger: {exc.message}")
    versions = (str(champion.version), str(challenger.version))
    try:
        found = evidence(read_metrics(args.server), *versions)
    except (OSError, NoEvidence) as exc:
        print(f"promote: no evidence from {args.server}: {exc}", file=sys.stderr)
        sys.exit(2)
    print(report(versions, (champion.tags, challenger.tags), reg.gate_metric, found))
    results = checks(found, args.min_rows, args.max_errors, args.max_latency_ratio)
    for check in results:
        print(f"promote:   {'pass' if check.passed else 'FAIL'} {check.name}: {check.detail}")
    passed = all(check.passed for check in results)
    if not args.apply:
        verdict = "would promote" if passed else "would refuse"
        print(f"promote: dry run ({verdict}); nothing moved: --apply moves {reg.champion_alias}")
        return
    failed = [check.name for check in results if not check.passed]
    decision = "promoted" if passed else f"refused: {', '.join(failed)}"
    record = {"decision": decision, "champion": versions[0], "at": time.time(),
              "checks": [asdict(c) for c in results], "evidence": asdict(found)}  # fmt: skip
    client.set_model_version_tag(reg.model_name, versions[1], "promote_decision", decision)
    client.set_model_version_tag(
        reg.model_name, versions[1], "promote_evidence", json.dumps(record)[:5000]
    )
    if not passed:
        print(f"promote: refused; {reg.champion_alias} stays on version {versions[0]}")
        sys.exit(1)
    client.set_registered_model_alias(reg.model_name, reg.champion_alias, versions[1])
    print(f"promote: {reg.champion_alias} -> version {versions[1]} (was {versions[0]})")


if __name__ == "__main__":
    main()
