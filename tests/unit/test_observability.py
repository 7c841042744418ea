"""deploy/: the Grafana dashboard and the Prometheus alert rules name only metrics that jobexec
exports, cover what an operator watches, and pass promtool's checks and rule tests."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from jobexec.core import metrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "jobexec-dashboard.json"
RULES = DEPLOY / "prometheus" / "jobexec-alerts.yml"
RULE_TESTS = DEPLOY / "prometheus" / "jobexec-alerts.test.yml"

_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or"}
_KEYWORDS |= {"unless", "offset", "bool", "inf", "nan", "le"}
_IDENTIFIER = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def exported_series() -> set[str]:
    """The series names jobexec's metrics module exposes, as Prometheus scrapes them."""
    names: set[str] = set()
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            for family in value.describe():
                names.update(family.name + suffix for suffix in _SUFFIXES[family.type])
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: identifiers that are not functions,
    keywords, label names or label values."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # label values
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges and subqueries
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\boffset\s+\w+", "", text)
    return {
        m.group()
        for m in _IDENTIFIER.finditer(text)
        if m.group() not in _KEYWORDS and not re.match(r"\s*\(", text[m.end() :])
    }


def dashboard_exprs() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    return [t["expr"] for panel in board["panels"] for t in panel.get("targets", [])]


def rule_exprs() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def test_the_name_extractor_finds_metric_names_and_nothing_else() -> None:
    expr = (
        'sum by (task, le) (rate(jobexec_job_run_seconds_bucket{task=~"http|x_y"}[5m] offset 1h))'
        " / on () group_left clamp_min(up, 1) unless absent(made_up_metric)"
    )
    assert metric_names(expr) == {"jobexec_job_run_seconds_bucket", "up", "made_up_metric"}


@pytest.mark.parametrize("source", ["dashboard", "rules"])
def test_every_expression_reads_only_metrics_that_jobexec_exports(source: str) -> None:
    exprs = dashboard_exprs() if source == "dashboard" else rule_exprs()
    exported = exported_series()
    assert exprs
    for expr in exprs:
        names = metric_names(expr)
        assert names, f"{expr!r} reads no metric"
        assert names <= exported, f"{expr!r} reads {sorted(names - exported)}, not exported"


def test_the_dashboard_shows_what_an_operator_watches() -> None:
    read = set().union(*(metric_names(e) for e in dashboard_exprs()))
    for name in (
        "jobexec_bridge_records_consumed_total",  # throughput
        "jobexec_job_outcomes_total",
        "jobexec_job_retries_total",
        "jobexec_job_run_seconds_bucket",
        "jobexec_bridge_consumer_lag",
        "jobexec_bridge_paused",
        "jobexec_dead_lettered_total",
        "jobexec_history_pruned_total",
    ):
        assert name in read, f"no panel shows {name}"


def test_the_alert_rules_cover_the_failures_an_operator_is_paged_for() -> None:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    alerts = {rule["alert"] for group in groups for rule in group["rules"]}
    assert {
        "JobexecFailuresRising",
        "JobexecRunsExhausted",
        "JobexecConsumerLagGrowing",
        "JobexecBridgePausedLong",
        "JobexecNoWorkerConsuming",
    } <= alerts


@pytest.mark.parametrize(
    "check", [["check", "rules", str(RULES)], ["test", "rules", str(RULE_TESTS)]]
)
def test_promtool_accepts_the_rules_and_their_tests_pass(check: list[str]) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is not installed: scripts/test.sh installs Debian's prometheus"
    done = subprocess.run(
        [promtool, *check], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
