"""bench/shadow.py and the shadow goals: this server with --shadow keeps 90% of its rate at 32
connections and a p99 within +10%, judged against the same server without the flag, run beside
it (made-up results)."""

from __future__ import annotations

import pytest

from bench.goals import SHADOW_P99, SHADOW_RATE
from bench.load import MANY
from bench.servers import servers
from bench.shadow import LIVE, SHADOW, median, shadowed
from bench.verdict import judge
from serving.config import parse_settings
from tests.bench.figures import measured, result


def run(rate: float, p99: float, errors: int = 0) -> dict:
    ours = result("ours", 7000, 0.4, 8.0, kind="ours")
    shadow = result("ours with --shadow", 0, 0, 0, kind="shadow", cases=[MANY])
    shadow.measurements[0] = measured(MANY, rate, 0.5, p99, errors)
    return {g.name: g for g in judge([ours, shadow], peers=()) if "--shadow" in g.name}


def test_ninety_percent_of_the_rate_and_ten_percent_more_p99_pass():
    goals = run(SHADOW_RATE * 7000, 8.0 * (1 + SHADOW_P99) - 1e-9)
    assert len(goals) == 2 and all(g.met for g in goals.values())
    assert goals["with --shadow: req/s, 1 row, 32 conns"].ratio == pytest.approx(SHADOW_RATE)


@pytest.mark.parametrize(
    ("rate", "p99", "errors", "failed"),
    [
        (0.89 * 7000, 8.0, 0, "req/s"),
        (7000, 8.9, 0, "p99"),
        (7000, 8.0, 1, "req/s"),
    ],
)
def test_a_slower_shadowed_server_fails_its_goal(rate, p99, errors, failed):
    goals = run(rate, p99, errors)
    assert [name for name, g in goals.items() if not g.met] == [
        f"with --shadow: {failed} ms, 1 row, 32 conns" if failed == "p99" else
        f"with --shadow: {failed}, 1 row, 32 conns"
    ]  # fmt: skip


def test_the_shadowed_server_serves_the_bench_aliases_with_valid_flags():
    ours = servers("models:/titanic/3", workers=2)[0]
    command = shadowed(ours, "titanic", workers=2).command(5999)
    assert command[command.index("--shadow") + 1] == SHADOW
    settings = parse_settings(command[command.index("serving") + 1 :], environ={})
    assert settings.model_uris == (f"models:/titanic@{LIVE}", f"models:/titanic@{SHADOW}")
    assert settings.shadow == SHADOW


def test_the_server_without_shadow_differs_only_by_the_flag():
    ours = servers("models:/titanic/3", workers=2)[0]
    with_it = shadowed(ours, "titanic", workers=2).command(5999)
    without = shadowed(ours, "titanic", workers=2, shadow=False).command(5999)
    at = with_it.index("--shadow")
    assert without == with_it[:at] + with_it[at + 2 :]


def test_the_goals_are_judged_against_the_server_without_the_flag_when_it_ran():
    ours = result("ours", 9000, 0.4, 6.0, kind="ours")  # another start: a faster one
    without = result("two aliases", 0, 0, 0, kind="shadow-reference", cases=[MANY])
    without.measurements[0] = measured(MANY, 7000, 0.4, 8.0)
    shadow = result("ours with --shadow", 0, 0, 0, kind="shadow", cases=[MANY])
    shadow.measurements[0] = measured(MANY, 6500, 0.5, 8.5)
    goals = [g for g in judge([ours, without, shadow], peers=()) if "--shadow" in g.name]
    assert {g.peer for g in goals} == {"two aliases"} and all(g.met for g in goals)


def test_alternated_runs_give_the_median_of_each_figure():
    runs = [measured(MANY, 7000, 4.0, 12.0), measured(MANY, 5000, 5.0, 9.0, errors=1),
            measured(MANY, 6000, 4.5, 30.0)]  # fmt: skip
    seen = median(runs)
    assert (seen.req_per_s, seen.p50_ms, seen.p99_ms) == (6000, 4.5, 12.0)
    assert seen.errors == 1 and seen.case == MANY.name
