"""bench/lane_cost.py: the lane's own cost measured on the real champion with no HTTP, and the
budget the front's rate goals leave it when the gunicorn front runs the same lane."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

from bench.fronts import CEILING, NOOP, REFERENCE_FRONT
from bench.lane_cost import lane_budget, machine_us, measure_lane
from bench.load import MANY
from bench.servers import ROOT, contract_body
from bench.verdict import all_met, judge
from tests.bench.figures import result


def test_a_lane_at_the_budget_gives_exactly_the_factor():
    gunicorn, granian = 400.0, 100.0  # us of machine time per request of each no-op
    for factor in (2, 3):
        budget = lane_budget(gunicorn, granian, factor)
        assert (gunicorn + budget) / (granian + budget) == pytest.approx(factor)
    assert lane_budget(gunicorn, granian, 3) == 50.0
    assert lane_budget(300.0, 100.0, 3) == 0.0  # no lane, however cheap, gets to 3x
    assert machine_us(20_000, cpus=2) == 100.0


def test_the_bounds_are_shown_beside_the_goals_and_never_judged():
    ours = result("ours", 7000, 0.4, 8, kind="ours")
    today = result("today", 4000, 0.4, 12, kind="reference")
    noop = {"kind": "front", "cases": [MANY], "app": NOOP}
    gunicorn = result("gunicorn no-op", 5000, 1, 9, front=REFERENCE_FRONT, **noop)
    ceiling = result("ceiling", 20000, 0.2, 4, front=CEILING, **noop)
    lane = {1: {"full_us": 120.0, "bare_us": 50.0}, 100: {"full_us": 1500.0, "bare_us": 900.0}}
    goals = judge([ours, today, gunicorn, ceiling], peers=(), lane=lane, cpus=2)
    bounds = [g for g in goals if g.name.startswith("lane us per request")]
    # 400 and 100 us of machine time per request: 3x leaves the lane 50 us, 2x leaves it 200
    assert [(g.ours, g.baseline, g.met) for g in bounds] == [
        (120.0, 50.0, None),
        (1500.0, 200.0, None),
    ]
    assert "3x needs <= 50 us" in bounds[0].target and "bare core alone: 50" in bounds[0].target
    without = [g for g in judge([ours, today, gunicorn, ceiling], peers=()) if g not in bounds]
    assert all_met(goals) == all_met(without)


def test_the_lane_costs_more_than_its_bare_core_and_both_are_measured(
    champion_dir: Path, raw_test: pd.DataFrame, tmp_path: Path
):
    bodies = {1: contract_body(raw_test.iloc[[0]]), 100: contract_body(raw_test.iloc[:100])}
    costs = measure_lane(Path(sys.executable), champion_dir, bodies, tmp_path, ROOT, requests=400)
    for rows, cost in costs.items():
        assert cost["rows"] == rows
        assert 0 < cost["bare_us"] < cost["full_us"]
    assert costs[100]["bare_us"] > costs[1]["bare_us"]
    assert (tmp_path / "lane-1.log").read_text().count('"message":"request"') > 400
