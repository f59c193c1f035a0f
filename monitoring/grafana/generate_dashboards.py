#!/usr/bin/env python3
"""Generates the Grafana dashboards of Pedidos Veloz.

    python3 monitoring/grafana/generate_dashboards.py          # rewrite the JSON files
    python3 monitoring/grafana/generate_dashboards.py --check  # fail if they are stale

The JSON files in monitoring/grafana/dashboards/ are what Grafana loads
(classic dashboard JSON, schemaVersion 42 = Grafana 12.4). This script is the
source of truth for them: edit it, run it, commit both. .ci/check-monitoring.sh
runs it with --check and type-checks the result against @grafana/schema.

Metric names come from the catalogue in docs/observability.md; the CI checks
that every name used here is in that catalogue and (e2e) is really exported.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

OUT_DIR = Path(__file__).resolve().parent / "dashboards"
SCHEMA_VERSION = 42  # Grafana 12.4 (pinned grafana/grafana image, docs/observability.md#versions)

PROM = {"type": "prometheus", "uid": "prometheus"}
LOKI = {"type": "loki", "uid": "loki"}
TEMPO = {"type": "tempo", "uid": "tempo"}

APP_JOBS = "api-gateway|pedidos-service|pagamentos-service|estoque-service"
C = 'component=~"$component"'  # the dashboard variable, used in most selectors
# Probe and scrape routes are not client traffic: the SLO panels leave them out, like alerts.yml.
NOT_PROBES = 'route!~"/metrics|/health|/livez|/readyz"'


# --------------------------------------------------------------------------- helpers
class Layout:
    """Places panels left to right on Grafana's 24-column grid."""

    def __init__(self) -> None:
        self.x = 0
        self.y = 0
        self.row_h = 0
        self.next_id = 1

    def place(self, w: int, h: int) -> dict:
        if self.x + w > 24:
            self.newline()
        pos = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.x += w
        self.row_h = max(self.row_h, h)
        return pos

    def newline(self) -> None:
        if self.x:
            self.y += self.row_h
        self.x = 0
        self.row_h = 0

    def pid(self) -> int:
        i = self.next_id
        self.next_id += 1
        return i


def prom(expr: str, legend: str = "__auto", ref: str = "A", instant: bool = False) -> dict:
    return {
        "refId": ref,
        "datasource": PROM,
        "editorMode": "code",
        "expr": expr,
        "legendFormat": legend,
        "range": not instant,
        "instant": instant,
        # Each point of a histogram_quantile may carry the trace of a request in its bucket.
        **({"exemplar": True} if "_bucket" in expr and not instant else {}),
    }


def thresholds(*steps: tuple[str, float | None]) -> dict:
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for c, v in steps]}


GREEN_ONLY = thresholds(("green", None))


def row(lay: Layout, title: str) -> dict:
    lay.newline()
    p = {
        "type": "row",
        "id": lay.pid(),
        "title": title,
        "collapsed": False,
        "gridPos": lay.place(24, 1),
        "panels": [],
    }
    lay.newline()
    return p


def timeseries(
    lay: Layout,
    title: str,
    description: str,
    targets: list[dict],
    unit: str = "short",
    w: int = 12,
    h: int = 8,
    min_: float | None = 0,
    stack: bool = False,
    th: dict | None = None,
    show_thresholds: bool = False,
    overrides: list | None = None,
    legend_table: bool = True,
) -> dict:
    defaults: dict = {
        "color": {"mode": "palette-classic"},
        "custom": {
            "drawStyle": "line",
            "lineInterpolation": "linear",
            "lineWidth": 1,
            "fillOpacity": 25 if stack else 10,
            "gradientMode": "none",
            "showPoints": "never",
            "pointSize": 4,
            "spanNulls": False,
            "insertNulls": False,
            "axisPlacement": "auto",
            "axisLabel": "",
            "axisBorderShow": False,
            "axisCenteredZero": False,
            "axisColorMode": "text",
            "barAlignment": 0,
            "scaleDistribution": {"type": "linear"},
            "stacking": {"mode": "normal" if stack else "none", "group": "A"},
            "hideFrom": {"legend": False, "tooltip": False, "viz": False},
            "thresholdsStyle": {"mode": "line+area" if show_thresholds else "off"},
        },
        "mappings": [],
        "thresholds": th or GREEN_ONLY,
        "unit": unit,
    }
    if min_ is not None:
        defaults["min"] = min_
    return {
        "type": "timeseries",
        "id": lay.pid(),
        "title": title,
        "description": description,
        "datasource": PROM,
        "gridPos": lay.place(w, h),
        "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
        "options": {
            "legend": {
                "showLegend": True,
                "displayMode": "table" if legend_table else "list",
                "placement": "bottom",
                "calcs": ["mean", "max", "lastNotNull"] if legend_table else [],
            },
            "tooltip": {"mode": "multi", "sort": "desc", "hideZeros": False},
        },
        "targets": targets,
    }


def stat(
    lay: Layout,
    title: str,
    description: str,
    targets: list[dict],
    unit: str = "short",
    w: int = 4,
    h: int = 4,
    th: dict | None = None,
    mappings: list | None = None,
    decimals: int | None = None,
    graph: bool = True,
    calc: str = "lastNotNull",
    text_mode: str = "auto",
) -> dict:
    defaults: dict = {
        "color": {"mode": "thresholds"},
        "mappings": mappings or [],
        "thresholds": th or GREEN_ONLY,
        "unit": unit,
    }
    if decimals is not None:
        defaults["decimals"] = decimals
    return {
        "type": "stat",
        "id": lay.pid(),
        "title": title,
        "description": description,
        "datasource": PROM,
        "gridPos": lay.place(w, h),
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "reduceOptions": {"calcs": [calc], "fields": "", "values": False},
            "orientation": "auto",
            "textMode": text_mode,
            "wideLayout": True,
            "colorMode": "value",
            "graphMode": "area" if graph else "none",
            "justifyMode": "auto",
            "showPercentChange": False,
            "percentChangeColorMode": "standard",
        },
        "targets": targets,
    }


def component_variable(metric: str = "http_requests_total") -> dict:
    return {
        "type": "query",
        "name": "component",
        "label": "Component",
        "datasource": PROM,
        "query": {
            "qryType": 1,
            "query": f"label_values({metric},component)",
            "refId": "PrometheusVariableQueryEditor-VariableQuery",
        },
        "refresh": 2,
        "sort": 1,
        "multi": True,
        "includeAll": True,
        "allValue": ".+",
        "current": {"text": ["All"], "value": ["$__all"]},
        "options": [],
        "regex": "",
        "hide": 0,
    }


def dashboard(uid: str, title: str, description: str, panels: list, variables: list, tags: list) -> dict:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["pedidos-veloz", *tags],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "refresh": "30s",
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "weekStart": "",
        "time": {"from": "now-1h", "to": "now"},
        "timepicker": {},
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "links": [
            {
                "title": "Pedidos Veloz",
                "type": "dashboards",
                "tags": ["pedidos-veloz"],
                "asDropdown": True,
                "includeVars": False,
                "keepTime": True,
                "targetBlank": False,
                "icon": "external link",
                "tooltip": "",
                "url": "",
            }
        ],
        "templating": {"list": variables},
        "panels": panels,
    }


def rate(metric: str, sel: str = C, window: str = "$__rate_interval") -> str:
    return f"rate({metric}{{{sel}}}[{window}])"


# --------------------------------------------------------------------------- platform overview
def platform_overview() -> dict:
    lay = Layout()
    p: list = []
    p.append(row(lay, "Golden signals per component"))
    p.append(stat(lay, "Targets up", "Scrape health of each component (1 = Prometheus can read its /metrics).",
                  [prom(f'up{{job=~"{APP_JOBS}"}}', "{{job}}", instant=True)], w=8, graph=False,
                  th=thresholds(("red", None), ("green", 1)),
                  mappings=[{"type": "value", "options": {"0": {"text": "DOWN", "color": "red", "index": 0},
                                                          "1": {"text": "UP", "color": "green", "index": 1}}}]))
    p.append(stat(lay, "Request rate", "Requests per second answered by each component.",
                  [prom(f"sum by (component) ({rate('http_requests_total')})", "{{component}}")], unit="reqps", w=5))
    p.append(stat(lay, "5xx ratio (5m)", "Share of client requests (probes and /metrics left out) answered with 5xx in the last 5 minutes. SLO: at most 1% (alert PedidosHighErrorRatio).",
                  [prom(f'sum by (component) (rate(http_requests_total{{{C},{NOT_PROBES},status_class="5xx"}}[5m])) / sum by (component) (rate(http_requests_total{{{C},{NOT_PROBES}}}[5m]))',
                        "{{component}}")], unit="percentunit", w=5, decimals=2,
                  th=thresholds(("green", None), ("orange", 0.005), ("red", 0.01))))
    p.append(stat(lay, "p99 latency (5m)", "99th percentile duration of client requests (probes and /metrics left out) over 5 minutes. SLO: at most 500 ms (alert PedidosHighLatencyP99).",
                  [prom(f"histogram_quantile(0.99, sum by (component, le) (rate(http_request_duration_seconds_bucket{{{C},{NOT_PROBES}}}[5m])))",
                        "{{component}}")], unit="s", w=6,
                  th=thresholds(("green", None), ("orange", 0.25), ("red", 0.5))))

    p.append(row(lay, "Traffic and errors"))
    p.append(timeseries(lay, "Request rate by route", "Which routes take the traffic (requests per second, by component and matched route template).",
                        [prom(f"sum by (component, route) ({rate('http_requests_total')})", "{{component}} {{route}}")], unit="reqps"))
    p.append(timeseries(lay, "Responses by status class", "Answers per second by status class: a jump in 4xx is usually clients or stock conflicts, 5xx is us.",
                        [prom(f"sum by (component, status_class) ({rate('http_requests_total')})", "{{component}} {{status_class}}")],
                        unit="reqps", stack=True))
    p.append(timeseries(lay, "5xx ratio by route", "Share of each route's requests answered with 5xx. The red band is the 1% SLO.",
                        [prom(f'sum by (component, route) (rate(http_requests_total{{{C},status_class="5xx"}}[$__rate_interval])) / sum by (component, route) ({rate("http_requests_total")})',
                              "{{component}} {{route}}")], unit="percentunit",
                        th=thresholds(("green", None), ("red", 0.01)), show_thresholds=True))
    p.append(timeseries(lay, "4xx rate by route", "Client errors per second: validation failures (400/422), unknown ids (404) and 409 insufficient_stock.",
                        [prom(f'sum by (component, route) (rate(http_requests_total{{{C},status_class="4xx"}}[$__rate_interval]))',
                              "{{component}} {{route}}")], unit="reqps"))

    p.append(row(lay, "Duration"))
    p.append(timeseries(lay, "p50 latency by route", "Median request duration per component and route (from http_request_duration_seconds).",
                        [prom(f"histogram_quantile(0.5, sum by (component, route, le) ({rate('http_request_duration_seconds_bucket')}))",
                              "{{component}} {{route}}")], unit="s"))
    p.append(timeseries(lay, "p99 latency by route", "99th percentile request duration per component and route. The red band is the 500 ms SLO.",
                        [prom(f"histogram_quantile(0.99, sum by (component, route, le) ({rate('http_request_duration_seconds_bucket')}))",
                              "{{component}} {{route}}")], unit="s",
                        th=thresholds(("green", None), ("red", 0.5)), show_thresholds=True))
    p.append(timeseries(lay, "Requests in flight", "Requests being processed right now, per component (saturation of the HTTP layer).",
                        [prom(f"sum by (component) (http_requests_in_flight{{{C}}})", "{{component}}")], w=8))
    p.append(timeseries(lay, "Average latency by component", "Mean request duration: sum of durations / number of requests.",
                        [prom(f"sum by (component) ({rate('http_request_duration_seconds_sum')}) / sum by (component) ({rate('http_request_duration_seconds_count')})",
                              "{{component}}")], unit="s", w=8))
    p.append(stat(lay, "Build", "Version and git sha each component runs (build_info).",
                  [prom(f"max by (component, version, git_sha) (build_info{{{C}}})", "{{component}} {{version}} ({{git_sha}})", instant=True)],
                  w=8, h=8, graph=False, text_mode="name"))

    p.append(row(lay, "API gateway upstreams"))
    p.append(timeseries(lay, "Upstream latency p50 / p99", "Time the gateway waits for each upstream service (gateway_upstream_request_duration_seconds).",
                        [prom("histogram_quantile(0.5, sum by (upstream, le) (rate(gateway_upstream_request_duration_seconds_bucket[$__rate_interval])))", "p50 {{upstream}}", "A"),
                         prom("histogram_quantile(0.99, sum by (upstream, le) (rate(gateway_upstream_request_duration_seconds_bucket[$__rate_interval])))", "p99 {{upstream}}", "B")],
                        unit="s"))
    p.append(timeseries(lay, "Upstream errors", "Upstream failures seen by the gateway, by upstream and kind (unavailable, timeout, bad_gateway).",
                        [prom("sum by (upstream, kind) (rate(gateway_upstream_errors_total[$__rate_interval]))", "{{upstream}} {{kind}}")],
                        unit="reqps", stack=True))

    p.append(row(lay, "Service graph"))
    lay.newline()
    p.append({
        "type": "nodeGraph",
        "id": lay.pid(),
        "title": "Service graph (traces)",
        "description": "Calls between the components, from the spans of every trace (Alloy's servicegraph connector, "
                       "before sampling): requests a second and failures on each edge. Open a node to see its traces in Tempo.",
        "datasource": TEMPO,
        "gridPos": lay.place(24, 10),
        "options": {"nodes": {}, "edges": {}},
        "targets": [{"refId": "A", "datasource": TEMPO, "queryType": "serviceMap"}],
    })

    p.append(row(lay, "Logs"))
    lay.newline()
    p.append({
        "type": "logs",
        "id": lay.pid(),
        "title": "Warnings and errors (Loki)",
        "description": "Application log lines at warn/error level. Open a line and follow its request_id link to see the same request in every component.",
        "datasource": LOKI,
        "gridPos": lay.place(24, 10),
        "options": {
            "showTime": True,
            "showLabels": False,
            "showCommonLabels": False,
            "showLogContextToggle": True,
            "wrapLogMessage": True,
            "prettifyLogMessage": False,
            "enableLogDetails": True,
            "enableInfiniteScrolling": False,
            "dedupStrategy": "none",
            "sortOrder": "Descending",
        },
        "targets": [{
            "refId": "A",
            "datasource": LOKI,
            "editorMode": "code",
            "expr": '{compose_project="pedidos-veloz", level=~"warn|error"}',
            "queryType": "range",
        }],
    })
    return dashboard("pv-platform-overview", "Pedidos Veloz / Platform overview",
                     "Rate, errors and duration of every component, the gateway's upstreams, and recent error logs.",
                     p, [component_variable()], ["overview"])


# --------------------------------------------------------------------------- order funnel
def order_funnel() -> dict:
    lay = Layout()
    p: list = []
    fin = "orders_finished_total"
    p.append(row(lay, "Orders in the selected time range"))
    p.append(stat(lay, "Created", "Orders created (POST /orders accepted) in the selected range.",
                  [prom("sum(increase(orders_created_total[$__range]))", "created", instant=True)], decimals=0, graph=False))
    for status, title, desc, color in [
        ("paid", "Paid", "Orders that reached status paid.", "green"),
        ("payment_declined", "Payment declined", "Orders whose payment was declined (stock released).", "orange"),
        ("rejected", "Rejected (no stock)", "Orders rejected because the stock could not be reserved.", "orange"),
        ("cancelled", "Cancelled", "Orders cancelled by the customer (POST /orders/{id}/cancel).", "blue"),
    ]:
        p.append(stat(lay, title, desc, [prom(f'sum(increase({fin}{{status="{status}"}}[$__range]))', status, instant=True)],
                      decimals=0, graph=False, th=thresholds((color, None))))
    p.append(stat(lay, "Paid / created", "Conversion: paid orders over created orders in the selected range.",
                  [prom(f'sum(increase({fin}{{status="paid"}}[$__range])) / sum(increase(orders_created_total[$__range]))', "conversion", instant=True)],
                  unit="percentunit", decimals=1, graph=False))

    p.append(row(lay, "Flow"))
    p.append(timeseries(lay, "Orders created and finished per minute", "Created orders against orders reaching each final status. A gap that does not close means orders stay pending.",
                        [prom("sum(rate(orders_created_total[$__rate_interval])) * 60", "created", "A"),
                         prom(f"sum by (status) (rate({fin}[$__rate_interval])) * 60", "{{status}}", "B")],
                        unit="opm", w=16))
    p.append(stat(lay, "Pending now", "Orders not yet in a final status (orders_pending).",
                  [prom("sum(orders_pending)", "pending")], decimals=0, w=4, h=8,
                  th=thresholds(("green", None), ("orange", 10), ("red", 50))))
    p.append(stat(lay, "Oldest pending order", "Age of the oldest order still pending. Above 5 minutes the alert PedidosOrdersStuckPending fires.",
                  [prom("max(orders_pending_oldest_age_seconds)", "oldest")], unit="s", w=4, h=8,
                  th=thresholds(("green", None), ("orange", 60), ("red", 300))))
    p.append(timeseries(lay, "Pending orders", "Orders waiting for the saga to finish them.",
                        [prom("sum(orders_pending)", "pending")]))
    p.append(timeseries(lay, "Oldest pending order age", "Age of the oldest pending order; the red band starts at the 300 s alert threshold.",
                        [prom("max(orders_pending_oldest_age_seconds)", "oldest pending")], unit="s",
                        th=thresholds(("green", None), ("red", 300)), show_thresholds=True))

    p.append(row(lay, "Order value"))
    p.append(timeseries(lay, "Paid order value p50 / p90 / p99", "Distribution of the value of paid orders (order_value_brl histogram).",
                        [prom("histogram_quantile(0.5, sum by (le) (rate(order_value_brl_bucket[$__rate_interval])))", "p50", "A"),
                         prom("histogram_quantile(0.9, sum by (le) (rate(order_value_brl_bucket[$__rate_interval])))", "p90", "B"),
                         prom("histogram_quantile(0.99, sum by (le) (rate(order_value_brl_bucket[$__rate_interval])))", "p99", "C")],
                        unit="currencyBRL"))
    p.append(timeseries(lay, "Revenue per minute and average ticket", "BRL of paid orders per minute, and the average value of a paid order.",
                        [prom("sum(rate(order_value_brl_sum[$__rate_interval])) * 60", "revenue / min", "A"),
                         prom("sum(rate(order_value_brl_sum[$__rate_interval])) / sum(rate(order_value_brl_count[$__rate_interval]))", "average ticket", "B")],
                        unit="currencyBRL"))

    p.append(row(lay, "Payments"))
    p.append(timeseries(lay, "Payments by outcome and method", "Payments per minute, by outcome (approved/declined) and method.",
                        [prom("sum by (outcome, method) (rate(payments_total[$__rate_interval])) * 60", "{{outcome}} {{method}}")],
                        unit="opm", stack=True))
    p.append(timeseries(lay, "Approval ratio by method", "Approved payments over all payments, per method.",
                        [prom('sum by (method) (rate(payments_total{outcome="approved"}[$__rate_interval])) / sum by (method) (rate(payments_total[$__rate_interval]))', "{{method}}")],
                        unit="percentunit", w=8))
    p.append(timeseries(lay, "Refunds per minute", "Payments refunded (cancellation of a paid order).",
                        [prom("sum(rate(payments_refunds_total[$__rate_interval])) * 60", "refunds")], unit="opm", w=8))
    p.append(stat(lay, "Payments in range", "Payments by outcome in the selected range.",
                  [prom("sum by (outcome) (increase(payments_total[$__range]))", "{{outcome}}", instant=True)],
                  decimals=0, w=8, h=8, graph=False))

    p.append(row(lay, "Inventory and saga"))
    p.append(timeseries(lay, "Stock conflicts per minute", "Reservations refused with 409 insufficient_stock. A spike fires PedidosStockConflictSpike.",
                        [prom("sum(rate(stock_conflicts_total[$__rate_interval])) * 60", "conflicts")], unit="opm", w=8))
    p.append(timeseries(lay, "Reservations held", "Reservations currently holding stock, and the units they hold.",
                        [prom("sum(reservations_held)", "reservations", "A"),
                         prom("sum(stock_reserved_units)", "units reserved", "B")], w=8))
    p.append(timeseries(lay, "Saga step retries per minute", "Steps repeated by the recovery worker, by step. Sustained retries mean a dependency keeps failing.",
                        [prom("sum by (step) (rate(saga_step_retries_total[$__rate_interval])) * 60", "{{step}}")], unit="opm", w=8, stack=True))
    return dashboard("pv-order-funnel", "Pedidos Veloz / Order funnel",
                     "From created to paid: where orders end, how long they stay pending, payments and stock.",
                     p, [], ["business"])


# --------------------------------------------------------------------------- saturation
def saturation() -> dict:
    lay = Layout()
    p: list = []
    p.append(row(lay, "Database pools"))
    p.append(timeseries(lay, "Pool utilisation", "Connections in use over the pool maximum. Above 90% for 5 minutes fires PedidosDbPoolSaturated.",
                        [prom(f'max by (component) (db_pool_connections{{{C},state="in_use"}}) / max by (component) (db_pool_max_connections{{{C}}})', "{{component}}")],
                        unit="percentunit", th=thresholds(("green", None), ("red", 0.9)), show_thresholds=True))
    p.append(timeseries(lay, "Pool connections", "Connections by state (idle, in_use) and the configured maximum.",
                        [prom(f"max by (component, state) (db_pool_connections{{{C}}})", "{{component}} {{state}}", "A"),
                         prom(f"max by (component) (db_pool_max_connections{{{C}}})", "{{component}} max", "B")]))
    p.append(timeseries(lay, "Connection acquire wait p50 / p99", "How long a request waits for a pool connection (db_pool_acquire_duration_seconds).",
                        [prom(f"histogram_quantile(0.5, sum by (component, le) ({rate('db_pool_acquire_duration_seconds_bucket')}))", "p50 {{component}}", "A"),
                         prom(f"histogram_quantile(0.99, sum by (component, le) ({rate('db_pool_acquire_duration_seconds_bucket')}))", "p99 {{component}}", "B")],
                        unit="s"))
    p.append(timeseries(lay, "Connection acquisitions per second", "Rate of pool checkouts per component.",
                        [prom(f"sum by (component) ({rate('db_pool_acquire_duration_seconds_count')})", "{{component}}")], unit="ops"))
    p.append(timeseries(lay, "Reservation batch size p50 / p99", "Requests per group-commit transaction in estoque (reservation_batch_size). Near 1 when quiet; "
                        "it grows with the queue under load. A p50 at 32 (the maximum) means holds arrive faster than the database commits batches.",
                        [prom(f"histogram_quantile(0.5, sum by (operation, le) ({rate('reservation_batch_size_bucket')}))", "p50 {{operation}}", "A"),
                         prom(f"histogram_quantile(0.99, sum by (operation, le) ({rate('reservation_batch_size_bucket')}))", "p99 {{operation}}", "B")],
                        w=24, legend_table=False))

    p.append(row(lay, "Process"))
    p.append(timeseries(lay, "Resident memory", "Resident set size of each component's process.",
                        [prom(f"max by (component) (process_resident_memory_bytes{{{C}}})", "{{component}}")], unit="bytes", w=8))
    p.append(timeseries(lay, "Virtual memory", "Virtual memory size of each component's process.",
                        [prom(f"max by (component) (process_virtual_memory_bytes{{{C}}})", "{{component}}")], unit="bytes", w=8))
    p.append(timeseries(lay, "CPU", "CPU time used per second (1.0 = one full core).",
                        [prom(f"max by (component) ({rate('process_cpu_seconds_total')})", "{{component}}")], unit="percentunit", w=8))
    p.append(timeseries(lay, "Open file descriptors", "Open fds (sockets, database files) per component.",
                        [prom(f"max by (component) (process_open_fds{{{C}}})", "{{component}}")], w=8))
    p.append(timeseries(lay, "File descriptor usage", "Open fds over the process limit.",
                        [prom(f"max by (component) (process_open_fds{{{C}}}) / max by (component) (process_max_fds{{{C}}})", "{{component}}")],
                        unit="percentunit", w=8, th=thresholds(("green", None), ("red", 0.8)), show_thresholds=True))
    p.append(stat(lay, "Uptime", "Time since each component's process started.",
                  [prom(f"time() - max by (component) (process_start_time_seconds{{{C}}})", "{{component}}")],
                  unit="s", w=8, h=8, graph=False))
    p.append(timeseries(lay, "Requests in flight", "Concurrent requests per component; rising with flat traffic means requests are waiting.",
                        [prom(f"sum by (component) (http_requests_in_flight{{{C}}})", "{{component}}")], w=24, legend_table=False))
    return dashboard("pv-saturation", "Pedidos Veloz / Saturation",
                     "Database pools, acquire wait, memory, CPU and file descriptors of each component.",
                     p, [component_variable("process_start_time_seconds")], ["saturation"])


DASHBOARDS = {
    "platform-overview.json": platform_overview,
    "order-funnel.json": order_funnel,
    "saturation.json": saturation,
}


def render(fn) -> str:
    return json.dumps(fn(), indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="only compare, do not write")
    args = ap.parse_args()
    stale = []
    for name, fn in DASHBOARDS.items():
        path = OUT_DIR / name
        text = render(fn)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            OUT_DIR.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if stale:
        print("stale dashboards (run python3 monitoring/grafana/generate_dashboards.py): " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
