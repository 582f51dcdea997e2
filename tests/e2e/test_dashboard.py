"""The Grafana dashboard (deploy/grafana/customcode.json) is well formed and queries only metrics
that the service exports, read from a running service's /metrics."""
import json
import os
import re

import pytest

from conftest import HELLO

DASHBOARD = os.path.join(os.path.dirname(__file__), "..", "..", "deploy", "grafana", "customcode.json")

# PromQL functions, aggregations and keywords the dashboard may use; any other identifier in an
# expression must be a metric the service exports.
PROMQL_WORDS = {
    "sum", "avg", "min", "max", "count", "rate", "irate", "increase", "histogram_quantile", "by", "without",
    "on", "ignoring", "group_left", "group_right", "or", "and", "unless", "vector", "topk", "bottomk",
    "clamp_min", "clamp_max", "abs", "delta", "deriv", "time", "offset", "bool",
}
# Labels that Prometheus adds when it scrapes, or that histograms carry.
SCRAPE_LABELS = {"instance", "job", "le"}


def load_dashboard():
    with open(DASHBOARD) as f:
        return json.load(f)


def exported(service):
    """Sample names and label names of the service's /metrics."""
    names, labels = set(), set()
    for line in service.get("/metrics").text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? ", line)
        assert m, line
        names.add(m.group(1))
        labels.update(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="', m.group(3) or ""))
    return names, labels


def expressions(dashboard):
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def metrics_and_labels(expr):
    """The metric names and the grouping labels an expression uses."""
    grouping = set()
    for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
        grouping.update(label.strip() for label in group.split(",") if label.strip())
    matchers = set(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*"', expr))
    stripped = re.sub(r'"[^"]*"', "", expr)           # strings
    stripped = re.sub(r"\{[^}]*\}", "", stripped)      # label matchers
    stripped = re.sub(r"\[[^\]]*\]", "", stripped)     # ranges
    stripped = re.sub(r"\b(?:by|without)\s*\([^)]*\)", "", stripped)
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", stripped))
    return words - PROMQL_WORDS, grouping | matchers


def test_dashboard_is_a_grafana_dashboard_with_an_importable_datasource():
    dashboard = load_dashboard()
    assert dashboard["title"] and dashboard["uid"] and isinstance(dashboard["schemaVersion"], int)
    [source] = dashboard["__inputs"]
    assert source["type"] == "datasource" and source["pluginId"] == "prometheus"
    datasource = {"type": "prometheus", "uid": "${" + source["name"] + "}"}
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert all(isinstance(grid[k], int) for k in "xywh"), panel["title"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        assert panel["type"] in {"row", "timeseries", "stat"}, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == datasource, panel["title"]
        assert panel["targets"], panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == datasource and target["expr"].strip()
            assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["instance"]["datasource"] == datasource
    # Every $variable an expression uses is defined (or is one of Grafana's own).
    for title, expr in expressions(dashboard):
        for name in re.findall(r"\$(\w+)", expr):
            assert name in variables or name.startswith("__"), (title, name)


def test_every_query_names_only_metrics_and_labels_the_service_exports(service):
    assert service.save("dash", HELLO).status_code == 200
    assert service.run("dash", "hello", {"name": "x"}).status_code == 200
    names, labels = exported(service)
    dashboard = load_dashboard()

    used = set()
    for title, expr in expressions(dashboard):
        metrics, expr_labels = metrics_and_labels(expr)
        assert metrics, (title, expr)
        for metric in metrics:
            assert metric in names, f"panel {title!r} queries {metric}, which /metrics does not export"
        for label in expr_labels - SCRAPE_LABELS:
            assert label in labels, f"panel {title!r} uses the label {label}, which /metrics does not export"
        used |= metrics
    for v in dashboard["templating"]["list"]:
        metric = re.search(r"label_values\((\w+)", v["definition"]).group(1)
        assert metric in names

    # What the operator asked to see.
    for wanted in ("customcode_runs_total", "customcode_language_runs_total", "customcode_run_duration_seconds_bucket",
                   "customcode_workers_alive", "customcode_cold_starts_total", "customcode_worker_kills_total",
                   "customcode_worker_evictions_total", "customcode_npm_installs_total", "customcode_isolation_level"):
        assert wanted in used, f"the dashboard does not show {wanted}"


def test_the_checker_catches_a_metric_the_service_does_not_export():
    metrics, labels = metrics_and_labels(
        'sum by (outcome) (rate(customcode_runs_totl{instance=~"$instance",outcome!="ok"}[$__rate_interval]))')
    assert metrics == {"customcode_runs_totl"}
    assert labels == {"outcome", "instance"}


@pytest.mark.parametrize("sandbox, mode", [("bwrap", "bwrap"), ("none", "none")])
def test_the_isolation_level_metric_is_the_sandbox_in_use(make_service, sandbox, mode):
    service = make_service(env={"SANDBOX": sandbox})
    samples = [line for line in service.get("/metrics").text.splitlines()
               if line.startswith("customcode_isolation_level") and line.endswith(" 1")]
    assert samples == [f'customcode_isolation_level{{level="{mode}"}} 1']
