"""bench/verdict.py with the goals it gathers: the front's goals against today's gunicorn server,
the slow-client goals and what is shown without being judged, on made-up results."""

from __future__ import annotations

import math

import pytest

from bench.fronts import CEILING, NOOP
from bench.goals import P50_MARGIN
from bench.load import BIG, CASES, MANY, ONE, V2_CASES
from bench.verdict import all_met, judge
from tests.bench.figures import measured, result, slow

NOOP_CEILING = {"front": CEILING, "app": NOOP}


def ours_and_today(**ours_fields: object) -> list:
    today = result(
        "today", 2000, 0.5, 20, kind="reference", peak_rss_mib=450, peak_pss_mib=330,
        cold_start_s=4.0,
    )  # fmt: skip
    fields = {"peak_rss_mib": 400, "peak_pss_mib": 300, "cold_start_s": 3.0, **ours_fields}
    mine = result("ours", 7000, 0.4, 8, kind="ours", **fields)
    mine.measurements[2] = measured(BIG, 900, 5, 15)  # 90,000 rows/s against today's 200,000
    ceiling = result("ceiling", 20000, 0.1, 3, kind="front", cases=[MANY], **NOOP_CEILING)
    return [mine, today, ceiling]


def by_name(goals: list) -> dict:
    return {g.name: g for g in goals if g.peer.startswith("today") or g.peer == "ceiling"}


def test_the_front_goals_are_ratios_to_todays_server_in_the_same_run():
    goals = by_name(judge(ours_and_today(), peers=()))
    assert goals["req/s, 1 row, 32 conns"].met and goals["req/s, 1 row, 32 conns"].ratio == 3.5
    assert goals["p99 ms, 1 row, 32 conns"].met  # 8 ms, at most 10
    assert not goals["rows/s, 100 rows, 8 conns"].met  # 90,000 is not 2x 200,000
    assert goals["p50 ms, 1 row, 1 conn"].met
    for name in ("cold start s", "peak RSS MiB (all processes)", "peak PSS MiB (all processes)"):
        assert goals[name].met and goals[name].ratio > 1


def test_the_ceiling_share_is_shown_not_judged():
    goals = judge(ours_and_today(), peers=())
    share = next(g for g in goals if g.name.startswith("share of the no-op ceiling"))
    assert share.met is None and share.ratio == 7000 / 20000
    assert not all_met(goals)  # the rows/s goal fails, the shown row does not count either way
    assert all_met([share])


def test_the_p50_may_be_a_noise_margin_above_todays_and_no_more():
    for p50, met in ((0.5 * (1 + P50_MARGIN) - 1e-9, True), (0.5 * (1 + P50_MARGIN) + 1e-3, False)):
        results = ours_and_today()
        results[0].measurements[0] = measured(ONE, 2000, p50, 2)
        assert by_name(judge(results, peers=()))["p50 ms, 1 row, 1 conn"].met is met


def test_more_memory_or_a_slower_start_than_todays_fails():
    goals = by_name(judge(ours_and_today(peak_pss_mib=331, cold_start_s=4.1), peers=()))
    assert not goals["peak PSS MiB (all processes)"].met
    assert not goals["cold start s"].met
    assert goals["peak RSS MiB (all processes)"].met


def test_errors_at_32_connections_fail_the_throughput_goal():
    results = ours_and_today()
    results[0].measurements[1] = measured(MANY, 7000, 0.4, 8, errors=1)
    assert not by_name(judge(results, peers=()))["req/s, 1 row, 32 conns"].met


def slow_goals(*cases) -> list:
    return [g for g in judge(ours_and_today(), peers=(), slow=cases) if "stalled" in g.name]


def test_the_slow_client_goal_needs_a_low_p99_no_errors_and_every_client_stalled():
    [goal, shown] = slow_goals(slow("ours", 6000, 12), slow("reference", 0, 0, probe_ok=0))
    assert goal.met and math.isclose(goal.ratio, 20 / 12)
    assert shown.met is None and shown.ratio == math.inf  # today's answered nothing
    assert "0 of 5 answered" in shown.peer
    for failing in (
        slow("ours", 6000, 21),  # p99 over 20 ms
        slow("ours", 6000, 12, errors=3),
        slow("ours", 6000, 12, open_min=999),  # one stalled client was not held throughout
        slow("ours", 6000, 12, probe_ok=4),  # the probe saw a timeout
    ):
        assert slow_goals(failing)[0].met is False


def test_without_todays_server_or_the_slow_case_only_the_peer_goals_are_judged():
    mine = result("ours", 7000, 0.4, 8, kind="ours", peak_rss_mib=400, peak_pss_mib=300)
    plain = result("plain", 30, 40, 2000, kind="mlflow-plain", peak_rss_mib=500, peak_pss_mib=400)
    goals = judge([mine, plain], peers=())
    assert {g.peer for g in goals} == {"mlflow models serve, plain sklearn flavor (best)", "plain"}


def test_the_fast_flavor_is_judged_against_the_plain_one_and_ours_against_both():
    mine = result("ours", 7000, 0.4, 8, kind="ours", peak_rss_mib=400, peak_pss_mib=300)
    plain = result("plain", 30, 40, 2000, kind="mlflow-plain", peak_rss_mib=500, peak_pss_mib=400)
    fast = result("fast", 310, 3.0, 200, kind="mlflow", peak_rss_mib=500, peak_pss_mib=400)
    goals = {g.name: g for g in judge([mine, plain, fast], peers=())}
    flavor_rate = goals["mlflow models serve, fast flavor: req/s, 1 row, 32 conns"]
    assert flavor_rate.ratio == pytest.approx(310 / 30) and flavor_rate.met
    assert goals["mlflow models serve, fast flavor: p50 ms, 1 row, 1 conn"].met
    ahead = [g for g in judge([mine, plain, fast], peers=()) if g.peer == "fast"]
    assert len(ahead) == 4 and all(g.met for g in ahead)


def test_mlflows_no_op_ceiling_is_shown_beside_the_flavor_goals_and_not_judged():
    mine = result("ours", 7000, 0.4, 8, kind="ours", peak_rss_mib=400, peak_pss_mib=300)
    plain = result("plain", 120, 15, 600, kind="mlflow-plain", peak_rss_mib=500, peak_pss_mib=400)
    fast = result("fast", 460, 3.0, 200, kind="mlflow", peak_rss_mib=500, peak_pss_mib=400)
    noop = result("no-op", 640, 2.9, 180, kind="mlflow-noop", cases=CASES[:2], app=NOOP)
    goals = {g.name: g for g in judge([mine, plain, fast, noop], peers=())}
    assert not goals["mlflow models serve, fast flavor: req/s, 1 row, 32 conns"].met  # 460 < 1,200
    share = goals["mlflow models serve, fast flavor: share of MLflow's no-op ceiling, req/s, "
                  "1 row, 32 conns"]  # fmt: skip
    assert share.met is None and share.ratio == pytest.approx(460 / 640)
    bound = goals["MLflow's no-op ceiling against 10x the plain flavor, req/s, 1 row, 32 conns"]
    assert bound.met is None and bound.ours == 640 and bound.baseline == 1200
    assert all(g.met is None for g in goals.values() if g.peer == "no-op")  # not a peer to beat


def test_v2_rest_is_judged_against_predict_on_the_same_process_and_grpc_is_shown():
    ours = result("this server (2 workers)", 9000, 0.30, 8, kind="ours")  # another start
    beside = result("/predict, in turn", 7000, 0.40, 8, kind="ours-v2-baseline", cases=V2_CASES)
    rest = result("this server, V2 REST", 6500, 0.42, 9, kind="ours-v2-rest", cases=V2_CASES)
    grpc = result("this server, V2 gRPC", 3000, 0.9, 20, kind="ours-v2-grpc", cases=V2_CASES)
    goals = {g.name: g for g in judge([ours, beside, rest, grpc], peers=())}
    rate = goals["V2 REST: req/s, 1 row, 32 conns"]
    assert rate.peer == "/predict, in turn"
    assert rate.met and rate.ratio == 6500 / 7000  # within 10% of /predict's
    assert goals["V2 REST: p50 ms, 1 row, 1 conn"].met  # 0.42 ms against 0.40 (+10%: 0.44)
    assert goals["V2 gRPC: req/s, 1 row, 32 conns"].met is None
    assert goals["V2 gRPC: p50 ms, 1 row, 1 conn"].met is None
    slower = result("this server, V2 REST", 6000, 0.5, 9, kind="ours-v2-rest", cases=V2_CASES)
    goals = {g.name: g for g in judge([ours, slower], peers=())}
    assert not goals["V2 REST: req/s, 1 row, 32 conns"].met  # 6,000 is under 90% of 7,000
    assert not goals["V2 REST: p50 ms, 1 row, 1 conn"].met
