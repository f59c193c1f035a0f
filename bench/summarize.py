"""Summarises bench/results/*.json (written by bench/run.sh): min/median/max per point,
the same-run ratios, the targets (docs/performance.md), and a chart (throughput and p99 vs clients).

Usage: python bench/summarize.py bench/results
"""

import json
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path

out = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/results")
runs = defaultdict(dict)  # point -> {run: data}
singles = {}
for f in sorted(out.glob("*.json")):
    if f.name in ("summary.json", "machine.json"):
        continue
    data = json.loads(f.read_text())
    m = re.match(r"(.*)-r(\d+)$", f.stem)
    if m:
        runs[m.group(1)][int(m.group(2))] = data
    else:
        singles[f.stem] = data


def mmm(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"min": min(values), "median": statistics.median(values), "max": max(values), "n": len(values)}


def field(point, key):
    return [d["report"].get(key) for _, d in sorted(runs.get(point, {}).items())]


def ratio(a, b, key="rps"):
    """Per-run ratio a/b over the runs both have (measured in the same run)."""
    ra, rb = runs.get(a, {}), runs.get(b, {})
    return mmm([ra[r]["report"][key] / rb[r]["report"][key] for r in ra if r in rb and rb[r]["report"][key]])


def diff(a, b, key="p50_ms"):
    ra, rb = runs.get(a, {}), runs.get(b, {})
    return mmm([ra[r]["report"][key] - rb[r]["report"][key] for r in ra if r in rb])


summary = {"points": {}, "ratios": {}, "machine": None}
machine = out / "machine.json"
if machine.exists():
    summary["machine"] = json.loads(machine.read_text())
for point in sorted(runs):
    row = {}
    for key in ("rps", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms", "latency_avg_ms", "cpu_us_per_request"):
        stats = mmm(field(point, key))
        if stats:
            row[key] = stats
    statuses = defaultdict(int)
    errors = 0
    for _, d in runs[point].items():
        for s, n in d["report"].get("by_status", {}).items():
            statuses[s] += n
        errors += d["report"].get("transport_errors", 0)
    if statuses:
        row["by_status"] = dict(statuses)
        row["transport_errors"] = errors
    summary["points"][point] = row

summary["ratios"] = {
    "pg_order_hot_c64_vs_pgbench_hot_c64": ratio("pg-order-hot-c64", "pgbench-hot-c64"),
    "pg_order_hot_c16_vs_pgbench_hot_c16": ratio("pg-order-hot-c16", "pgbench-hot-c16"),
    "pg_order_spread_c64_vs_pgbench_spread_c64": ratio("pg-order-spread-c64", "pgbench-spread-c64"),
    "split_gateway_added_p50_ms_c1": diff("pg-get-item-split-c1", "pg-get-item-direct-c1"),
    "gateway_added_p50_ms_c1": diff("pg-get-item-gateway-c1", "pg-get-item-direct-c1"),
    "nginx_added_p50_ms_c1": diff("pg-get-item-nginx-c1", "pg-get-item-direct-c1"),
}
# The proxies, GET /items/{id} at 64 clients, request logs on and off: the all-in-one
# gateway and the gateway as its own process ("split") against nginx, per tool.
for logs in ("on", "off"):
    for who in ("gateway", "split"):
        summary["ratios"][f"{who}_vs_nginx_item_c64_loadgen_logs_{logs}"] = ratio(
            f"pg-get-item-{who}-c64-logs-{logs}", f"pg-get-item-nginx-c64-logs-{logs}"
        )
        summary["ratios"][f"{who}_vs_nginx_item_c64_wrk_logs_{logs}"] = ratio(
            f"wrk-item-{who}-c64-logs-{logs}", f"wrk-item-nginx-c64-logs-{logs}"
        )
    summary["ratios"][f"split_vs_nginx_item_c64_cpu_per_request_logs_{logs}"] = ratio(
        f"pg-get-item-split-c64-logs-{logs}", f"pg-get-item-nginx-c64-logs-{logs}", "cpu_us_per_request"
    )
# The deployed shape: four processes against the all-in-one one, same databases.
for what in ("order-hot", "order-spread", "get-item", "mixed"):
    key = what.replace("-", "_")
    summary["ratios"][f"four_vs_one_{key}_c64"] = ratio(f"pg-shape-four-{what}-c64", f"pg-shape-one-{what}-c64")
    summary["ratios"][f"four_vs_one_{key}_c64_cpu_per_request"] = ratio(
        f"pg-shape-four-{what}-c64", f"pg-shape-one-{what}-c64", "cpu_us_per_request"
    )
# Observability: the same platform as a user runs it ("defaults"), exporting traces
# ("traced"), and bare; throughput ratios and CPU time per request, per run.
for what in ("get-item", "order-spread"):
    key = what.replace("-", "_")
    for config in ("defaults", "traced"):
        summary["ratios"][f"obs_{config}_vs_bare_{key}_c64"] = ratio(f"obs-{config}-{what}-c64", f"obs-bare-{what}-c64")
        summary["ratios"][f"obs_{config}_vs_bare_{key}_c64_cpu_per_request"] = ratio(
            f"obs-{config}-{what}-c64", f"obs-bare-{what}-c64", "cpu_us_per_request"
        )
for name, data in singles.items():
    if name.startswith("startup-"):
        summary["points"][name] = {"startup_ms": mmm(data["startup_ms"]), "all": data["startup_ms"]}
soak = singles.get("pg-soak")
if soak:
    rss = [kb for t, kb in soak.get("rss_kb", [])]
    summary["points"]["pg-soak"] = {
        "report": soak["report"],
        "rss_kb_first": rss[0] if rss else None,
        "rss_kb_last": rss[-1] if rss else None,
        "rss_kb_max": max(rss) if rss else None,
        "rss_kb_samples": rss,
    }


# ---- targets ------------------------------------------------------------------------
def med(point, key="rps"):
    s = summary["points"].get(point, {}).get(key)
    return s["median"] if s else None


def fmt(v, unit="", nd=1):
    return "n/a" if v is None else f"{v:,.{nd}f}{unit}"


lines = ["| target | measured (median) | min / max | met |", "|---|---|---|---|"]


def target(text, value, rng, ok, unit="", nd=1):
    lines.append(f"| {text} | {fmt(value, unit, nd)} | {rng} | {'yes' if ok else 'NO'} |")


def rng(point, key="rps", unit="", nd=1):
    s = summary["points"].get(point, {}).get(key)
    return f"{fmt(s['min'], unit, nd)} / {fmt(s['max'], unit, nd)}" if s else "n/a"


for what, text in (("get_item", "GET /items/{id}"), ("order_spread", "POST /orders")):
    r = summary["ratios"].get(f"obs_traced_vs_bare_{what}_c64")
    target(f"traced (info logs, OTLP export) >= 0.9x bare, {text} c64", r and r["median"], r and f"{r['min']:.2f} / {r['max']:.2f}", r is not None and r["median"] >= 0.9, "x", 2)
v = med("pg-order-hot-c64")
target("PG POST /orders hot c64 >= 1,500/s", v, rng("pg-order-hot-c64"), v is not None and v >= 1500, "/s")
v = med("pg-order-hot-c64", "p99_ms")
target("PG POST /orders hot c64 p99 <= 100 ms", v, rng("pg-order-hot-c64", "p99_ms", " ms"), v is not None and v <= 100, " ms")
for c in (16, 64):
    r = summary["ratios"][f"pg_order_hot_c{c}_vs_pgbench_hot_c{c}"]
    target(f"PG orders/s >= 2x pgbench, hot item, {c} clients (same run)", r and r["median"], r and f"{r['min']:.2f} / {r['max']:.2f}", r is not None and r["median"] >= 2.0, "x", 2)
v = med("sqlite-order-hot-c64")
target("SQLite POST /orders hot c64 >= 1,000/s", v, rng("sqlite-order-hot-c64"), v is not None and v >= 1000, "/s")
for b in ("pg", "sqlite"):
    v = med(f"{b}-get-items-gateway-c64")
    target(f"{b} GET /items via gateway c64 >= 10,000/s", v, rng(f"{b}-get-items-gateway-c64"), v is not None and v >= 10000, "/s")
    v = med(f"{b}-get-items-gateway-c64", "p99_ms")
    target(f"{b} GET /items via gateway c64 p99 <= 20 ms", v, rng(f"{b}-get-items-gateway-c64", "p99_ms", " ms", 2), v is not None and v <= 20, " ms", 2)
# Two gateways against the same nginx: the one-process platform's (sharing the cores
# with estoque-service) and the gateway as its own process (as deployed on Kubernetes,
# and as nginx runs), access logs on and off.
for who, prefix, goal in (("gateway (all-in-one)", "gateway", 1.0), ("gateway (own process)", "split", 1.1)):
    for logs in ("on", "off"):
        for tool in ("loadgen", "wrk"):
            r = summary["ratios"][f"{prefix}_vs_nginx_item_c64_{tool}_logs_{logs}"]
            target(f"{who} >= {goal}x nginx, GET /items/{{id}} c64, logs {logs} ({tool})", r and r["median"], r and f"{r['min']:.2f} / {r['max']:.2f}", r is not None and r["median"] >= goal, "x", 2)
for who, prefix in (("gateway (all-in-one)", ""), ("gateway (own process)", "split_")):
    r = summary["ratios"][f"{prefix}gateway_added_p50_ms_c1"]
    target(f"{who} added p50 < 0.2 ms (1 client, vs direct)", r and r["median"], r and f"{r['min']:.3f} / {r['max']:.3f}", r is not None and r["median"] < 0.2, " ms", 3)
s = summary["points"].get("pg-soak")
if s:
    target(f"RSS <= 64 MB after soak ({soak['duration_s']:.0f} s), flat", s["rss_kb_last"] / 1024, f"first {s['rss_kb_first'] / 1024:.1f} / max {s['rss_kb_max'] / 1024:.1f} MB", s["rss_kb_last"] <= 64 * 1024, " MB")
for b in ("pg", "sqlite"):
    s = summary["points"].get(f"startup-{b}-existing", {}).get("startup_ms")
    target(f"{b} start-up to /readyz, existing DB < 200 ms", s and s["median"], s and f"{s['min']:.1f} / {s['max']:.1f}", s is not None and s["median"] < 200, " ms")

table = ["| point | req/s median (min-max) | p50 ms | p99 ms | statuses |", "|---|---|---|---|---|"]
for point, row in sorted(summary["points"].items()):
    if "rps" not in row:
        continue
    r = row["rps"]
    p50 = row.get("p50_ms", {}).get("median")
    p99 = row.get("p99_ms", {}).get("median")
    if p50 is None and "latency_avg_ms" in row:
        p50 = row["latency_avg_ms"]["median"]
        point = point + " (latency = average)"
    table.append(
        f"| {point} | {r['median']:,.0f} ({r['min']:,.0f}-{r['max']:,.0f}) | {fmt(p50, '', 2)} | {fmt(p99, '', 2)} | {row.get('by_status', '')} |"
    )
ratios = ["| ratio (per run, same run) | median | min | max |", "|---|---|---|---|"]
for k, r in summary["ratios"].items():
    if r:
        ratios.append(f"| {k} | {r['median']:.3f} | {r['min']:.3f} | {r['max']:.3f} |")
# The open model: latency at a fixed arrival rate, 50 and 80 % of the closed-load maximum.
open_rows = ["| backend | scenario | load | rate req/s | p50 ms | p99 ms | p99.9 ms | statuses |", "|---|---|---|---|---|---|---|---|"]
for b in ("pg", "sqlite"):
    for what in ("order-spread", "get-item"):
        for pct in (50, 80):
            point = f"{b}-open-{what}-at{pct}"
            row = summary["points"].get(point)
            if not row:
                continue
            m = lambda k: row.get(k, {}).get("median")
            open_rows.append(
                f"| {b} | {what} | {pct} % | {fmt(m('rps'), '', 0)} | {fmt(m('p50_ms'), '', 2)} | {fmt(m('p99_ms'), '', 2)} | {fmt(m('p999_ms'), '', 2)} | {row.get('by_status', '')} |"
            )
# CPU time per request of each process: observability configurations and the two shapes.
cpu_rows = ["| point | req/s | CPU us/request, all processes | by process |", "|---|---|---|---|"]
for point in sorted(runs):
    per = defaultdict(list)
    for _, d in sorted(runs[point].items()):
        for proc, us in (d["report"].get("cpu_us_per_request_by_process") or {}).items():
            per[proc].append(us)
    row = summary["points"][point]
    if "cpu_us_per_request" not in row:
        continue
    by = ", ".join(f"{proc} {statistics.median([v for v in vs if v is not None]):.0f}" for proc, vs in per.items() if any(v is not None for v in vs))
    summary["points"][point]["cpu_us_per_request_by_process"] = {
        proc: mmm(vs) for proc, vs in per.items()
    }
    cpu_rows.append(f"| {point} | {row['rps']['median']:,.0f} | {row['cpu_us_per_request']['median']:.0f} | {by} |")
(out / "summary.json").write_text(json.dumps(summary, indent=2))
text = (
    "## Targets\n\n" + "\n".join(lines)
    + "\n\n## Ratios\n\n" + "\n".join(ratios)
    + "\n\n## Open model (median of runs)\n\n" + "\n".join(open_rows)
    + "\n\n## CPU time per request (median of runs)\n\n" + "\n".join(cpu_rows)
    + "\n\n## All points\n\n" + "\n".join(table) + "\n"
)
(out / "summary.md").write_text(text)
print(text)

# ---- chart --------------------------------------------------------------------------
if not any(p.startswith(("pg-order-hot", "sqlite-order-hot")) for p in summary["points"]):
    sys.exit(0)  # a partial run (ONLY=...) without the orders the chart shows
try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    sys.exit(0)

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
series = [
    ("pg-order-hot", "gateway POST /orders, PostgreSQL, hot item", "tab:blue"),
    ("sqlite-order-hot", "gateway POST /orders, SQLite, hot item", "tab:orange"),
    ("pgbench-hot", "pgbench same transactions, hot item", "tab:green"),
]
for prefix, label, color in series:
    xs, ys, lo, hi, p99 = [], [], [], [], []
    for c in (16, 64):
        s = summary["points"].get(f"{prefix}-c{c}", {}).get("rps")
        if not s:
            continue
        xs.append(c)
        ys.append(s["median"])
        lo.append(s["median"] - s["min"])
        hi.append(s["max"] - s["median"])
        p = summary["points"][f"{prefix}-c{c}"].get("p99_ms") or summary["points"][f"{prefix}-c{c}"].get("latency_avg_ms")
        p99.append(p["median"] if p else None)
    if xs:
        ax1.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=4, label=label, color=color)
        if prefix.startswith("pgbench"):
            ax2.plot(xs, p99, marker="s", linestyle="--", label="pgbench (average, no p99)", color=color)
        else:
            ax2.plot(xs, p99, marker="o", label=label, color=color)
ax1.axhline(1500, color="tab:blue", linestyle=":", linewidth=1, label="target PG 1,500/s")
ax1.axhline(1000, color="tab:orange", linestyle=":", linewidth=1, label="target SQLite 1,000/s")
ax1.axhline(55, color="grey", linestyle=":", linewidth=1, label="Flask original ~55/s")
ax1.set_xlabel("concurrent clients")
ax1.set_ylabel("orders/s (median, min-max bars)")
ax1.set_xticks([16, 64])
ax1.set_title("Throughput vs concurrency")
ax1.legend(fontsize=7)
ax2.axhline(100, color="tab:red", linestyle=":", linewidth=1, label="target p99 100 ms")
ax2.set_xlabel("concurrent clients")
ax2.set_ylabel("p99 latency, ms (median of runs)")
ax2.set_xticks([16, 64])
ax2.set_title("p99 latency vs concurrency")
ax2.legend(fontsize=7)
m = summary.get("machine") or {}
fig.suptitle(f"Pedidos Veloz POST /orders, {m.get('nproc', '?')} cores, {m.get('date', '')}, {m.get('runs', '?')} runs per point", fontsize=9)
fig.tight_layout()
fig.savefig(out / "chart.png", dpi=110)
print(f"chart: {out / 'chart.png'}")
