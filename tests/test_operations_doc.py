"""docs/operations.md's alerting rules are rules Prometheus can load, on the
metrics the page lists, and cover what an operator must hear about."""

import pathlib
import re

import pytest
import yaml

pytestmark = pytest.mark.rules  # no server: `make fast` runs these

DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "operations.md"
FUNCTIONS = {"histogram_quantile"}  # PromQL's own names that hold an underscore
OTHER_EXPORTERS = ("kube_",)  # kube-state-metrics


def section(title):
    text = DOC.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def listed_metrics():
    names = set()
    for row in section("Metrics").splitlines():
        if row.startswith("| `"):
            names |= set(re.findall(r"`([a-z_]+)`", row.split("|")[1]))
    return names


def rules():
    block = re.search(r"```yaml\n(.*?)```", section("Alerts"), re.S).group(1)
    groups = yaml.safe_load(block)["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_the_alerts_are_rules_on_the_metrics_the_page_lists():
    metrics = listed_metrics()
    assert {
        "outbox_oldest_age_seconds",
        "dead_letters",
        "notification_sends_total",
        "webhook_attempts_total",
    } <= metrics
    for rule in rules():
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning") and rule["annotations"]["summary"]
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]
        for name in set(re.findall(r"[a-z][a-z0-9]*_[a-z0-9_]+", rule["expr"])) - FUNCTIONS:
            if not name.startswith(OTHER_EXPORTERS):
                assert re.sub(r"_(bucket|sum|count)$", "", name) in metrics, (rule["alert"], name)


def test_every_alert_the_operators_need_is_there():
    exprs = {rule["alert"]: rule["expr"] for rule in rules()}
    assert "outbox_oldest_age_seconds) > 60" in exprs["OutboxStuck"]
    assert 'notification_sends_total{outcome="failed"}' in exprs["NotificationsFailing"]
    assert "dead_letters) > 0" in exprs["DeadLetters"]
    assert (
        "up{" in exprs["TargetDown"]
        and "kube_deployment_status_replicas_available" in exprs["ServiceNotReady"]
    )
    assert "webhook_attempts_total" in exprs["WebhookDeliveriesFailing"]


def test_the_sizing_follows_from_its_figures():
    """The worked table is the arithmetic the page states, on its figures."""
    sizing = section("Sizing")
    a = float(re.search(r"\| A: [^|]+\| ([\d.]+) ms \|", sizing).group(1))
    b = float(re.search(r"\| B: [^|]+\| ([\d.]+) ms \|", sizing).group(1))
    rows = re.findall(r"^\| ([\d,]+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|$", sizing, re.M)
    assert len(rows) == 3
    for per_day, peak, network, servers in rows:
        expected_peak = int(per_day.replace(",", "")) / (8 * 3600) * 5
        assert abs(float(peak) - expected_peak) <= 0.05 * expected_peak + 0.01, per_day
        assert abs(float(network) - expected_peak * a / 1000) <= 0.05 * expected_peak * a / 1000 + 0.005, (
            per_day
        )
        assert abs(float(servers) - expected_peak * b / 1000) <= 0.05 * expected_peak * b / 1000 + 0.005, (
            per_day
        )
