"""The Grafana dashboard and the Prometheus alert rules in monitoring/: they parse, and every
metric they query is one the server exports (its instruments, the evidence ones and the drift
gauges derived at each scrape); `promtool check rules` and `check config` where installed."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import yaml

from serving import metrics
from serving.evidence import drift, instruments
from training.config import REPO_ROOT

MONITORING = REPO_ROOT / "monitoring"
DASHBOARD = MONITORING / "grafana" / "dashboards" / "titanic-serving.json"
RULES = MONITORING / "prometheus" / "alerts.yml"
CONFIG = MONITORING / "prometheus" / "prometheus.yml"
METRIC = re.compile(r"\bserving_[a-z0-9_]+\b")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def exported() -> set[str]:
    """The sample names the server's /metrics can hold."""
    instruments.instruments()
    families = metrics.collected() + drift.derive(lambda version: None)([])
    names = set()
    for family in families:
        if family.name.startswith("serving_"):
            names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
    return names


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def rule_queries() -> list[str]:
    rules = yaml.safe_load(RULES.read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def test_the_server_exports_what_the_queries_need():
    names = exported()
    assert {"serving_requests_total", "serving_shadow_agree_total", "serving_drift_psi"} <= names


@pytest.mark.parametrize("source", [dashboard_queries, rule_queries])
def test_every_metric_queried_is_exported(source):
    queries = source()
    assert queries
    used = {name for query in queries for name in METRIC.findall(query)}
    assert used - exported() == set()


def test_the_dashboard_covers_the_issues_list_of_panels():
    titles = " ".join(p["title"].lower() for p in json.loads(DASHBOARD.read_text())["panels"])
    for topic in ("requests", "errors", "latency", "per-stage", "versions", "reloads",
                  "shadow agreement", "drift", "slow clients"):  # fmt: skip
        assert topic in titles, topic
    queries = " ".join(dashboard_queries())
    assert "serving_model_reload_failures_total" in queries and "serving_model_info" in queries


def test_every_panel_reads_the_chosen_prometheus():
    dashboard = json.loads(DASHBOARD.read_text())
    (variable,) = dashboard["templating"]["list"]
    assert variable["type"] == "datasource" and variable["query"] == "prometheus"
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_every_alert_says_what_is_wrong():
    rules = yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
    for rule in rules:
        assert rule["alert"].startswith("Serving") and rule["annotations"]["summary"]
        assert rule["labels"]["severity"] in {"page", "ticket", "info"}


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
@pytest.mark.parametrize("check", [("check", "rules", RULES), ("check", "config", CONFIG)])
def test_promtool_accepts_the_rules_and_the_config(check):
    command = ["promtool", *map(str, check)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
