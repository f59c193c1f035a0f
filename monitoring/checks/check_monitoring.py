#!/usr/bin/env python3
"""Static checks of the monitoring configuration (no server needed).

    check_monitoring.py static               # every check below, one line each
    check_monitoring.py used-metrics         # metric names used by alerts + dashboards
    check_monitoring.py live NAMES_FILE [EXPOSITION...]
                                             # used names vs. names a real Prometheus scraped
    check_monitoring.py dashboard-queries PROMETHEUS_URL
                                             # run every dashboard query on a live Prometheus
    check_monitoring.py om2text < openmetrics > text
                                             # OpenMetrics -> Prometheus text 0.0.4 (for promtool check metrics)

Checks (static):
  catalogue   every metric used in alerts.yml and in the dashboards' Prometheus
              queries is in monitoring/metrics-catalogue.yml, and every catalogue
              entry is documented in docs/observability.md
  alerts      each rule has severity/summary/description/runbook_url, its runbook
              anchor exists in docs/observability.md, alerts.test.yml has a firing
              and a not-firing case for it
  dashboards  unique uids and panel ids, datasource uids that the provisioning
              defines, panels inside the 24-column grid and not overlapping
  provisioning  datasources.yml / dashboards.yml parse and point where compose mounts
  loki        loki.yml parses; tsdb + schema v13, retention through the compactor
  tempo       tempo.yaml: only keys of Tempo v3.0.3's configuration (top level,
              server, distributor, storage.trace), OTLP receivers on 4317/4318,
              local storage, usage reporting off
  alertmanager  alertmanager.yml: every route names a receiver that exists, the
              inhibition names real alerts and a label they carry
  alloy       config.alloy: balanced blocks and strings, known components and
              stages, every component reference declared, request_id/trace_id
              kept out of stream labels; its stage.json JMESPath expressions and the
              Loki derived field extract request_id from real log lines of the binary
              (checks/sample-logs.jsonl)
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
MON = ROOT / "monitoring"
DOC = ROOT / "docs" / "observability.md"
DASH_DIR = MON / "grafana" / "dashboards"

PROMQL_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
    "and", "or", "unless", "offset", "inf", "nan", "atan2",
}


class Failure(Exception):
    pass


def ok(what: str, detail: str) -> None:
    print(f"ok    {what}: {detail}")


# --------------------------------------------------------------------------- PromQL names
def promql_metric_names(expr: str) -> set[str]:
    """Metric names referenced by a PromQL expression (good enough for our queries)."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    s = re.sub(r"\{[^}]*\}", " ", s)
    s = re.sub(r"\[[^\]]*\]", " ", s)
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    names = set()
    for m in re.finditer(r"(?<![\w.$])[a-zA-Z_:][a-zA-Z0-9_:]*", s):
        tok = m.group(0)
        if s[m.end():].lstrip().startswith("("):
            continue  # function or aggregation
        if tok.lower() in PROMQL_KEYWORDS:
            continue
        names.add(tok)
    return names


def load_catalogue() -> tuple[dict, set[str]]:
    cat = yaml.safe_load((MON / "metrics-catalogue.yml").read_text())
    return cat["metrics"], set(cat.get("synthetic", []))


def base_name(name: str, metrics: dict) -> str:
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix):
            base = name[: -len(suffix)]
            if metrics.get(base, {}).get("type") == "histogram":
                return base
    return name


def load_dashboards() -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted(DASH_DIR.glob("*.json"))}


def iter_panels(d: dict):
    for p in d.get("panels", []):
        yield p
        for q in p.get("panels", []) or []:
            yield q


def used_exprs() -> list[tuple[str, str]]:
    """(where, PromQL) for every alert and every Prometheus dashboard query/variable."""
    out = []
    alerts = yaml.safe_load((MON / "alerts.yml").read_text())
    for g in alerts["groups"]:
        for r in g["rules"]:
            out.append((f"alerts.yml:{r.get('alert') or r.get('record')}", r["expr"]))
    for name, d in load_dashboards().items():
        for p in iter_panels(d):
            for t in p.get("targets", []) or []:
                ds = (t.get("datasource") or p.get("datasource") or {}).get("type")
                if ds == "prometheus" and t.get("expr"):
                    out.append((f"{name}:{p.get('title')}", t["expr"]))
        for v in d.get("templating", {}).get("list", []):
            q = v.get("query")
            q = q.get("query") if isinstance(q, dict) else q
            if isinstance(q, str):
                m = re.match(r"\s*label_values\(\s*([a-zA-Z_:][\w:]*)\s*,", q)
                if m:
                    out.append((f"{name}:${v.get('name')}", m.group(1)))
    return out


def used_metric_names() -> dict[str, set[str]]:
    metrics, _ = load_catalogue()
    used: dict[str, set[str]] = {}
    for where, expr in used_exprs():
        for n in promql_metric_names(expr):
            used.setdefault(n, set()).add(where)
    return used


# --------------------------------------------------------------------------- checks
def check_catalogue() -> None:
    metrics, synthetic = load_catalogue()
    used = used_metric_names()
    unknown = {n: w for n, w in used.items() if base_name(n, metrics) not in metrics and n not in synthetic}
    if unknown:
        lines = [f"  {n} (used in {', '.join(sorted(w)[:3])})" for n, w in sorted(unknown.items())]
        raise Failure("metric names not in monitoring/metrics-catalogue.yml:\n" + "\n".join(lines))
    doc = DOC.read_text()
    undocumented = [m for m in metrics if f"`{m}`" not in doc]
    if undocumented:
        raise Failure("catalogue metrics missing from docs/observability.md: " + ", ".join(undocumented))
    bases = {base_name(n, metrics) for n in used if n not in synthetic}
    ok("catalogue", f"{len(used)} metric names used by alerts+dashboards, all in the catalogue "
       f"({len(bases)}/{len(metrics)} catalogue metrics used); {len(metrics)} documented")


def github_anchors(md: str) -> set[str]:
    anchors = set(re.findall(r'<a\s+(?:id|name)="([^"]+)"', md))
    for line in md.splitlines():
        m = re.match(r"#{1,6}\s+(.*)", line)
        if m:
            text = re.sub(r"[`*_]|<[^>]+>", "", m.group(1)).strip().lower()
            slug = re.sub(r"[^\w\- ]", "", text).replace(" ", "-")
            anchors.add(slug)
    return anchors


def check_alerts() -> None:
    alerts = yaml.safe_load((MON / "alerts.yml").read_text())
    tests = yaml.safe_load((MON / "alerts.test.yml").read_text())
    anchors = github_anchors(DOC.read_text())
    firing: set[str] = set()
    quiet: set[str] = set()
    for t in tests["tests"]:
        for a in t.get("alert_rule_test", []):
            (firing if a.get("exp_alerts") else quiet).add(a["alertname"])
    names = []
    problems = []
    for g in alerts["groups"]:
        for r in g["rules"]:
            if "alert" not in r:
                continue
            n = r["alert"]
            names.append(n)
            if r.get("labels", {}).get("severity") not in {"critical", "warning", "info"}:
                problems.append(f"{n}: labels.severity must be critical|warning|info")
            ann = r.get("annotations", {})
            for k in ("summary", "description", "runbook_url"):
                if not ann.get(k):
                    problems.append(f"{n}: annotation {k} missing")
            url = ann.get("runbook_url", "")
            m = re.fullmatch(r"docs/observability\.md#([\w-]+)", url)
            if not m:
                problems.append(f"{n}: runbook_url {url!r} is not docs/observability.md#anchor")
            elif m.group(1) not in anchors:
                problems.append(f"{n}: anchor #{m.group(1)} not found in docs/observability.md")
            if n not in firing:
                problems.append(f"{n}: no firing case in alerts.test.yml")
            if n not in quiet:
                problems.append(f"{n}: no not-firing case in alerts.test.yml")
    if len(set(names)) != len(names):
        problems.append("duplicate alert names")
    if problems:
        raise Failure("alert rules:\n  " + "\n  ".join(problems))
    ok("alerts", f"{len(names)} alerts with severity, summary, description, runbook anchor, "
       "and firing + not-firing unit tests: " + ", ".join(names))


def check_dashboards() -> None:
    ds = yaml.safe_load((MON / "grafana/provisioning/datasources/datasources.yml").read_text())
    uids = {(d["type"], d["uid"]) for d in ds["datasources"]}
    dashboards = load_dashboards()
    if set(dashboards) != {"platform-overview.json", "order-funnel.json", "saturation.json"}:
        raise Failure(f"unexpected dashboard set: {sorted(dashboards)}")
    problems = []
    seen_uids = set()
    npanels = 0
    for name, d in dashboards.items():
        if d.get("uid") in seen_uids:
            problems.append(f"{name}: duplicate uid {d.get('uid')}")
        seen_uids.add(d.get("uid"))
        if not isinstance(d.get("schemaVersion"), int) or d["schemaVersion"] < 39:
            problems.append(f"{name}: schemaVersion {d.get('schemaVersion')} is not a Grafana 11/12 one")
        ids = []
        cells: dict[tuple[int, int], str] = {}
        for p in iter_panels(d):
            npanels += 1
            ids.append(p.get("id"))
            refs = [p.get("datasource")] + [t.get("datasource") for t in p.get("targets", []) or []]
            for r in refs:
                if r and (r.get("type"), r.get("uid")) not in uids:
                    problems.append(f"{name}: panel {p.get('title')!r} uses data source {r} not provisioned")
            if p.get("type") != "row" and not p.get("targets"):
                problems.append(f"{name}: panel {p.get('title')!r} has no query")
            g = p.get("gridPos") or {}
            try:
                x, y, w, h = g["x"], g["y"], g["w"], g["h"]
            except (KeyError, TypeError):
                problems.append(f"{name}: panel {p.get('title')!r} has no valid gridPos")
                continue
            if x < 0 or w <= 0 or x + w > 24:
                problems.append(f"{name}: panel {p.get('title')!r} outside the 24-column grid")
            for cx in range(x, x + w):
                for cy in range(y, y + h):
                    if (cx, cy) in cells:
                        problems.append(f"{name}: panel {p.get('title')!r} overlaps {cells[(cx, cy)]!r}")
                        break
                    cells[(cx, cy)] = p.get("title")
                else:
                    continue
                break
        if len(ids) != len(set(ids)):
            problems.append(f"{name}: duplicate panel ids")
    if problems:
        raise Failure("dashboards:\n  " + "\n  ".join(problems))
    ok("dashboards", f"{len(dashboards)} dashboards, {npanels} panels: unique uids/ids, provisioned "
       "data source uids, every panel queried, no overlap on the grid")


def check_provisioning() -> None:
    ds = yaml.safe_load((MON / "grafana/provisioning/datasources/datasources.yml").read_text())
    by_uid = {d["uid"]: d for d in ds["datasources"]}
    problems = []
    if by_uid.get("prometheus", {}).get("url") != "http://prometheus:9090":
        problems.append("Prometheus data source must be uid prometheus at http://prometheus:9090")
    loki = by_uid.get("loki", {})
    if loki.get("url") != "http://loki:3100":
        problems.append("Loki data source must be uid loki at http://loki:3100")
    derived = {f.get("name"): f for f in loki.get("jsonData", {}).get("derivedFields", [])}
    if not {"request_id", "trace_id"} <= set(derived):
        problems.append("Loki data source needs derived fields request_id and trace_id")
    elif derived["trace_id"].get("datasourceUid") != "tempo":
        problems.append("Loki's trace_id derived field must open the trace in Tempo (uid tempo)")
    tempo = by_uid.get("tempo", {})
    if tempo.get("type") != "tempo" or tempo.get("url") != "http://tempo:3200":
        problems.append("Tempo data source must be uid tempo at http://tempo:3200")
    tempo_json = tempo.get("jsonData", {})
    if tempo_json.get("tracesToLogsV2", {}).get("datasourceUid") != "loki":
        problems.append("Tempo must link traces to logs (tracesToLogsV2 → loki)")
    if "${__trace.traceId}" not in tempo_json.get("tracesToLogsV2", {}).get("query", "").replace("$$", "$"):
        problems.append("Tempo's trace-to-logs query must filter on the trace id")
    if tempo_json.get("serviceMap", {}).get("datasourceUid") != "prometheus":
        problems.append("Tempo's service map must read Prometheus")
    exemplars = by_uid.get("prometheus", {}).get("jsonData", {}).get("exemplarTraceIdDestinations", [])
    if not any(e.get("name") == "trace_id" and e.get("datasourceUid") == "tempo" for e in exemplars):
        problems.append("Prometheus exemplars (label trace_id) must link to Tempo")
    for f in loki.get("jsonData", {}).get("derivedFields", []):
        try:
            re.compile(f["matcherRegex"])
        except re.error as e:
            problems.append(f"derived field {f.get('name')}: bad regex: {e}")
    dash = yaml.safe_load((MON / "grafana/provisioning/dashboards/dashboards.yml").read_text())
    paths = [p.get("options", {}).get("path") for p in dash.get("providers", [])]
    if paths != ["/var/lib/grafana/dashboards"]:
        problems.append(f"dashboard provider path {paths} != ['/var/lib/grafana/dashboards']")
    if problems:
        raise Failure("grafana provisioning:\n  " + "\n  ".join(problems))
    ok("provisioning", "datasources.yml (prometheus with exemplars → tempo, loki with request_id/trace_id "
       "derived fields, tempo with traces → logs, service map) and "
       "dashboards.yml (/var/lib/grafana/dashboards) parse and are consistent")


# Keys of Tempo v3.0.3's configuration (yaml tags of cmd/tempo/app/config.go and the
# structs below it) at the levels tempo.yaml sets. Tempo parses its file strictly, so an
# unknown key stops it from starting: here it fails CI first.
TEMPO_KEYS = {
    "": {
        "automemlimit_enabled", "automemlimit_ratio", "target", "auth_enabled",
        "multitenancy_enabled", "shutdown_delay", "stream_over_http_enabled", "http_api_prefix",
        "enable_go_runtime_metrics", "span_profiling", "memory", "server", "internal_server",
        "distributor", "live_store_client", "querier", "query_frontend", "metrics_generator",
        "ingest", "block_builder", "storage", "overrides", "memberlist", "usage_report", "cache",
        "backend_scheduler", "backend_scheduler_client", "backend_worker", "live_store",
    },
    "server": {
        "http_listen_address", "http_listen_port", "grpc_listen_address", "grpc_listen_port",
        "log_level", "log_format", "http_server_read_timeout", "http_server_write_timeout",
        "http_server_idle_timeout", "graceful_shutdown_timeout",
    },
    "distributor": {
        "receivers", "ring", "forwarders", "log_received_spans", "log_discarded_spans",
        "metric_received_spans", "override_ring_key", "retry_after_on_resource_exhausted",
        "max_attribute_bytes", "artificial_delay", "usage", "kafka_config",
    },
    "storage": {"trace"},
    "storage.trace": {
        "pool", "wal", "block", "search", "blocklist_poll", "blocklist_poll_concurrency",
        "blocklist_poll_tenant_concurrency", "blocklist_poll_fallback",
        "blocklist_poll_tenant_index_builders", "blocklist_poll_stale_tenant_index",
        "blocklist_poll_jitter_ms", "blocklist_poll_tolerate_consecutive_errors",
        "blocklist_poll_tolerate_tenant_failures", "empty_tenant_deletion_enabled",
        "empty_tenant_deletion_age", "backend", "local", "gcs", "s3", "azure", "cache",
        "background_cache", "memcached", "redis",
    },
    "usage_report": {"reporting_enabled", "backoff"},
}


def check_tempo() -> None:
    cfg = yaml.safe_load((MON / "tempo.yaml").read_text())
    problems = []

    def at(path: str) -> dict:
        node = cfg
        for part in [p for p in path.split(".") if p]:
            node = (node or {}).get(part) or {}
        return node if isinstance(node, dict) else {}

    for path, allowed in TEMPO_KEYS.items():
        for key in at(path):
            if key not in allowed:
                problems.append(f"unknown key {(path + '.' if path else '') + key!r} for Tempo v3.0.3")
    protocols = at("distributor.receivers.otlp.protocols")
    if protocols.get("grpc", {}).get("endpoint") != "0.0.0.0:4317":
        problems.append("OTLP/gRPC must listen on 0.0.0.0:4317 (Alloy exports to tempo:4317)")
    if protocols.get("http", {}).get("endpoint") != "0.0.0.0:4318":
        problems.append("OTLP/HTTP must listen on 0.0.0.0:4318")
    if at("server").get("http_listen_port") != 3200:
        problems.append("Tempo must serve on 3200 (Grafana's data source)")
    if at("storage.trace").get("backend") != "local":
        problems.append("storage.trace.backend must be local (one volume)")
    if at("usage_report").get("reporting_enabled") is not False:
        problems.append("usage_report.reporting_enabled must be false (no phoning home)")
    if problems:
        raise Failure("tempo.yaml:\n  " + "\n  ".join(problems))
    ok("tempo", "tempo.yaml: keys of Tempo v3.0.3 only, OTLP on 4317/4318, local storage, port 3200")


def check_alertmanager() -> None:
    cfg = yaml.safe_load((MON / "alertmanager.yml").read_text())
    alerts = yaml.safe_load((MON / "alerts.yml").read_text())
    rules = {r["alert"]: r for g in alerts["groups"] for r in g["rules"]}
    receivers = {r["name"] for r in cfg.get("receivers", [])}
    problems = []

    def routes(route: dict):
        yield route
        for child in route.get("routes", []):
            yield from routes(child)

    for route in routes(cfg["route"]):
        if route.get("receiver") and route["receiver"] not in receivers:
            problems.append(f"route to unknown receiver {route['receiver']!r}")
    severities = {r["labels"]["severity"] for r in rules.values()}
    routed = {m.split("=")[1].strip('"') for r in cfg["route"].get("routes", [])
              for m in r.get("matchers", []) if m.startswith("severity=")}
    if severities - routed:
        problems.append(f"severities without a route: {sorted(severities - routed)}")
    for rule in cfg.get("inhibit_rules", []):
        names = set()
        for matcher in rule.get("source_matchers", []) + rule.get("target_matchers", []):
            m = re.fullmatch(r'alertname=~?"([^"]+)"', matcher)
            if m:
                names |= set(m.group(1).split("|"))
        for name in names:
            if name not in rules:
                problems.append(f"inhibition names unknown alert {name!r}")
        for label in rule.get("equal", []):
            for name in names:
                expr = rules.get(name, {}).get("expr", "")
                if label not in expr:
                    problems.append(f"inhibition on {label!r}, which {name} does not carry")
    if problems:
        raise Failure("alertmanager.yml:\n  " + "\n  ".join(problems))
    ok("alertmanager", f"alertmanager.yml: receivers {', '.join(sorted(receivers))}; every severity "
       f"({', '.join(sorted(severities))}) routed; inhibition names real alerts and labels")


def check_loki() -> None:
    cfg = yaml.safe_load((MON / "loki.yml").read_text())
    problems = []
    schema = cfg.get("schema_config", {}).get("configs", [{}])[-1]
    if schema.get("store") != "tsdb" or schema.get("schema") != "v13":
        problems.append("latest schema_config period must be store tsdb, schema v13")
    if schema.get("object_store") != "filesystem":
        problems.append("object_store must be filesystem")
    comp = cfg.get("compactor", {})
    if not comp.get("retention_enabled"):
        problems.append("compactor.retention_enabled must be true")
    if not comp.get("delete_request_store"):
        problems.append("compactor.delete_request_store is required with retention in Loki 3")
    limits = cfg.get("limits_config", {})
    if not re.fullmatch(r"\d+[hdw]", str(limits.get("retention_period", ""))):
        problems.append("limits_config.retention_period missing")
    if limits.get("allow_structured_metadata") is False:
        problems.append("structured metadata must stay allowed (request_id/trace_id)")
    if cfg.get("server", {}).get("http_listen_port") != 3100:
        problems.append("Loki must listen on 3100 (compose, Grafana, Alloy)")
    if problems:
        raise Failure("loki.yml:\n  " + "\n  ".join(problems))
    ok("loki", f"loki.yml parses; tsdb/v13 on filesystem, compactor retention "
       f"{limits['retention_period']}, structured metadata allowed, port 3100")


ALLOY_COMPONENTS = {
    "discovery.docker", "discovery.relabel", "loki.source.docker", "loki.process",
    "loki.relabel", "loki.write",
    "otelcol.receiver.otlp", "otelcol.connector.servicegraph", "otelcol.exporter.prometheus",
    "otelcol.processor.tail_sampling", "otelcol.processor.batch", "otelcol.exporter.otlp",
    "prometheus.remote_write",
}
# The tail-sampling policy types of Alloy 1.x's otelcol.processor.tail_sampling.
ALLOY_SAMPLING_POLICIES = {
    "always_sample", "latency", "numeric_attribute", "probabilistic", "status_code",
    "string_attribute", "rate_limiting", "span_count", "boolean_attribute", "ottl_condition",
    "trace_state", "composite", "and",
}
ALLOY_CONFIG_BLOCKS = {"logging"}
ALLOY_STAGES = {
    "stage.json", "stage.template", "stage.labels", "stage.structured_metadata",
    "stage.timestamp", "stage.match", "stage.drop", "stage.static_labels", "stage.label_drop",
}


def strip_alloy(text: str) -> str:
    """Removes comments, replaces string contents by blanks; checks quotes close."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            if j < 0:
                raise Failure("config.alloy: unterminated /* comment")
            i = j + 2
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                if text[j] == "\n":
                    raise Failure(f"config.alloy: string not closed on line {text.count(chr(10), 0, i) + 1}")
                j += 2 if text[j] == "\\" else 1
            if j >= n:
                raise Failure("config.alloy: unterminated string")
            out.append('""')
            i = j + 1
        elif c == "`":
            j = text.find("`", i + 1)
            if j < 0:
                raise Failure("config.alloy: unterminated raw string")
            out.append('""')
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def check_alloy() -> None:
    raw = (MON / "alloy" / "config.alloy").read_text()
    s = strip_alloy(raw)
    stack = []
    pairs = {"}": "{", "]": "[", ")": "("}
    for lineno, line in enumerate(s.splitlines(), 1):
        for ch in line:
            if ch in "{[(":
                stack.append((ch, lineno))
            elif ch in "}])":
                if not stack or stack[-1][0] != pairs[ch]:
                    raise Failure(f"config.alloy: unbalanced {ch!r} on line {lineno}")
                stack.pop()
    if stack:
        raise Failure(f"config.alloy: {stack[-1][0]!r} opened on line {stack[-1][1]} never closed")

    # Top-level blocks: name "label" { ... } or name { ... }
    declared = set()
    depth = 0
    problems = []
    for m in re.finditer(r'([a-z_][\w.]*)\s*(""\s*)?\{|[{}]', s):
        tok = m.group(0)
        if tok == "}":
            depth -= 1
            continue
        if tok == "{":
            depth += 1
            continue
        name = m.group(1)
        labelled = bool(m.group(2))
        if depth == 0:
            if name in ALLOY_COMPONENTS and labelled:
                declared.add(name)
            elif name not in ALLOY_CONFIG_BLOCKS:
                problems.append(f"unknown top-level block {name!r}")
        elif name.startswith("stage.") and name not in ALLOY_STAGES:
            problems.append(f"unknown stage {name!r}")
        depth += 1
    # Labels of declared components, from the raw text (labels are strings).
    ids = set(re.findall(r'^\s*([a-z_][\w.]*)\s+"([\w-]+)"\s*\{', raw, re.M))
    for comp, ref_label, export in re.findall(
        r"\b((?:discovery|loki)\.[a-z_]+(?:\.[a-z_]+)?)\.(\w+)\.(receiver|targets|output|rules)\b", s
    ):
        if (comp, ref_label) not in ids:
            problems.append(f"reference {comp}.{ref_label}.{export} to an undeclared component")
    for comp, ref_label, export in re.findall(
        r"\b((?:otelcol|prometheus)\.[a-z_]+\.[a-z_]+)\.(\w+)\.(input|receiver)\b", s
    ):
        if (comp, ref_label) not in ids:
            problems.append(f"reference {comp}.{ref_label}.{export} to an undeclared component")
    for policy in re.findall(r'type\s*=\s*"(\w+)"', raw):
        if policy not in ALLOY_SAMPLING_POLICIES:
            problems.append(f"unknown tail-sampling policy type {policy!r}")
    if not re.search(r'otelcol\.exporter\.otlp\s+"\w+"\s*\{[^}]*endpoint\s*=\s*"tempo:4317"', raw, re.S):
        problems.append("traces must be exported to tempo:4317")
    if 'url = "http://prometheus:9090/api/v1/write"' not in raw:
        problems.append("the service graph's metrics must be remote-written to prometheus:9090")
    # High-cardinality fields must not become labels.
    for block in re.findall(r"stage\.labels\s*\{(.*?)\n\s*\}", raw, re.S):
        for bad in ("request_id", "trace_id"):
            if re.search(rf"\b{bad}\b", re.sub(r"//.*", "", block)):
                problems.append(f"{bad} must be structured metadata, not a stage.labels label")
    if not re.search(r"stage\.structured_metadata\s*\{[^}]*request_id", raw, re.S):
        problems.append("request_id must be sent as structured metadata")
    problems += check_alloy_json_stage(raw)
    if "http://loki:3100/loki/api/v1/push" not in raw:
        problems.append("loki.write must push to http://loki:3100/loki/api/v1/push")
    if problems:
        raise Failure("config.alloy:\n  " + "\n  ".join(problems))
    ok("alloy", f"config.alloy: balanced, components {', '.join(sorted(declared))}; references resolve; "
       "request_id/trace_id as structured metadata only; stage.json extracts request_id, component, "
       "level from the sample log lines")


def check_alloy_json_stage(raw: str) -> list[str]:
    """Runs the stage.json JMESPath expressions of config.alloy on real log lines of the
    binary (monitoring/checks/sample-logs.jsonl): every line that carries a request_id must
    yield it, every request line its component, every line its level and timestamp."""
    try:
        import jmespath
    except ImportError:
        return ["python package jmespath missing (pip install jmespath)"]
    m = re.search(r"stage\.json\s*\{\s*expressions\s*=\s*\{(.*?)\}", raw, re.S)
    if not m:
        return ["no stage.json block"]
    exprs = dict(re.findall(r'(\w+)\s*=\s*"([^"]*)"', m.group(1)))
    problems = []
    lines = [json.loads(l) for l in (MON / "checks" / "sample-logs.jsonl").read_text().splitlines() if l.strip()]
    for i, line in enumerate(lines, 1):
        got = {}
        for name, expr in exprs.items():
            try:
                got[name] = jmespath.search(expr or name, line)
            except jmespath.exceptions.JMESPathError as e:
                return [f"stage.json {name}: invalid JMESPath {expr!r}: {e}"]
        text = json.dumps(line)
        want_rid = re.search(r'"request_id": "([^"]+)"', text)
        if want_rid and got.get("request_id") != want_rid.group(1):
            problems.append(f"sample line {i}: request_id not extracted (got {got.get('request_id')!r})")
        if line.get("message") == "request" and not got.get("component"):
            problems.append(f"sample line {i}: component not extracted")
        if not got.get("level") or not got.get("ts"):
            problems.append(f"sample line {i}: level/timestamp not extracted")
    ds = yaml.safe_load((MON / "grafana/provisioning/datasources/datasources.yml").read_text())
    for d in ds["datasources"]:
        for f in d.get("jsonData", {}).get("derivedFields", []):
            if f["name"] == "request_id":
                raw_lines = (MON / "checks" / "sample-logs.jsonl").read_text().splitlines()
                hits = [l for l in raw_lines if re.search(f["matcherRegex"], l)]
                if len(hits) != sum('"request_id"' in l for l in raw_lines):
                    problems.append("Loki derived field request_id does not match every sample line with a request_id")
    return problems


def cmd_static() -> int:
    failed = 0
    for check in (check_catalogue, check_alerts, check_dashboards, check_provisioning, check_loki,
                  check_tempo, check_alertmanager, check_alloy):
        try:
            check()
        except Failure as e:
            failed += 1
            print(f"FAIL  {e}")
    return 1 if failed else 0


def cmd_used() -> int:
    metrics, synthetic = load_catalogue()
    for n in sorted(used_metric_names()):
        print(n)
    return 0


def declared_names(exposition: str) -> set[str]:
    """Sample names a /metrics text declares with # TYPE (even when it has no sample yet)."""
    names = set()
    for m in re.finditer(r"^# TYPE (\S+) (\S+)", exposition, re.M):
        name, kind = m.groups()
        names.add(name)
        if kind == "counter" and not name.endswith("_total"):
            names.add(name + "_total")
        if kind in ("histogram", "gaugehistogram"):
            names.update({name + "_bucket", name + "_sum", name + "_count"})
        if kind == "summary":
            names.update({name + "_sum", name + "_count"})
    return names


def cmd_live(names_file: str, expositions: list[str]) -> int:
    """names_file: one scraped metric name per line (Prometheus __name__ values).
    expositions: the /metrics texts, to tell "declared but no sample yet" from "absent"."""
    metrics, synthetic = load_catalogue()
    scraped = {line.strip() for line in Path(names_file).read_text().splitlines() if line.strip()}
    declared: set[str] = set()
    for f in expositions:
        declared |= declared_names(Path(f).read_text())
    used = used_metric_names()
    absent, empty = [], []
    for n in sorted(used):
        if n in scraped:
            print(f"ok    {n}")
        elif n in declared:
            empty.append(n)
            print(f"WARN  {n}: declared on /metrics but has no sample yet (no series until first use)")
        else:
            absent.append(n)
            print(f"FAIL  {n}: not exported by any component")
    if absent:
        print(f"FAIL  {len(absent)} metric names used by alerts/dashboards are not exported: {', '.join(absent)}")
        return 1
    print(f"ok    all {len(used)} metric names used by alerts/dashboards are exported"
          + (f" ({len(empty)} without samples yet: {', '.join(empty)})" if empty else ""))
    return 0


GRAFANA_VARS = {
    # Windows as wide as the whole e2e run: a slow machine must not age the traffic out.
    "$__rate_interval": "10m", "$__interval": "15s", "$__range": "10m",
    "$component": ".+",
}


def cmd_dashboard_queries(prom: str) -> int:
    """Runs every Prometheus query of the dashboards (Grafana variables replaced) on a live
    Prometheus: each must parse and evaluate; the ones that return no series are listed."""
    import urllib.error
    import urllib.parse
    import urllib.request

    errors, empty, total = [], [], 0
    for name, d in load_dashboards().items():
        for p in iter_panels(d):
            for t in p.get("targets", []) or []:
                ds = (t.get("datasource") or p.get("datasource") or {}).get("type")
                if ds != "prometheus":
                    continue
                total += 1
                q = t["expr"]
                for k in sorted(GRAFANA_VARS, key=len, reverse=True):
                    q = q.replace(k, GRAFANA_VARS[k])
                url = prom + "/api/v1/query?" + urllib.parse.urlencode({"query": q})
                where = f"{name} / {p.get('title')} / {t.get('refId')}"
                try:
                    with urllib.request.urlopen(url, timeout=10) as r:
                        res = json.load(r)
                except urllib.error.HTTPError as e:
                    errors.append(f"{where}: {e.code} {e.read().decode()[:200]}")
                    continue
                if res.get("status") != "success":
                    errors.append(f"{where}: {res}")
                elif not res["data"]["result"]:
                    empty.append(where)
    for e in errors:
        print(f"FAIL  {e}")
    for e in empty:
        print(f"EMPTY {e}")
    print(f"{total} dashboard queries: {total - len(errors)} evaluated, {len(errors)} errors, "
          f"{len(empty)} returned no series")
    return 1 if errors else 0


def cmd_om2text() -> int:
    """OpenMetrics text -> Prometheus text format 0.0.4, for `promtool check metrics`.
    Counter families are named without _total in OpenMetrics (# TYPE http_requests counter,
    samples http_requests_total); the classic format names the family like its samples."""
    counters = set()
    out = []
    for line in sys.stdin.read().splitlines():
        if line.startswith("# EOF") or line.startswith("# UNIT "):
            continue
        m = re.match(r"# (HELP|TYPE) (\S+)(.*)", line)
        if m:
            kind, name, rest = m.groups()
            if kind == "TYPE" and rest.strip() == "counter":
                counters.add(name)
            if kind == "TYPE" and rest.strip() in ("info", "stateset"):
                rest = " gauge"
            out.append((kind, name, rest))
            continue
        if re.match(r"[a-zA-Z_:][\w:]*_created[{ ]", line):
            continue
        out.append(("SAMPLE", line, ""))
    for kind, name, rest in out:
        if kind == "SAMPLE":
            print(name)
        else:
            if name in counters and not name.endswith("_total"):
                name += "_total"
            print(f"# {kind} {name}{rest}")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[1] == "static":
        return cmd_static()
    if len(argv) >= 2 and argv[1] == "used-metrics":
        return cmd_used()
    if len(argv) >= 3 and argv[1] == "live":
        return cmd_live(argv[2], argv[3:])
    if len(argv) == 3 and argv[1] == "dashboard-queries":
        return cmd_dashboard_queries(argv[2])
    if len(argv) == 2 and argv[1] == "om2text":
        return cmd_om2text()
    print(__doc__)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv))
