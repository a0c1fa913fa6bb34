"""Parses gekko's Grafana dashboards with grafana-foundation-sdk and lifts their PromQL.

Run by services/gekko/tests/monitoring.rs as
`.venv-sdk/bin/python dashboards.py DASHBOARD.json...`. Grafana itself cannot be
installed here, so the SDK's typed models are the check on the dashboard structure:

- every file parses with `Dashboard.from_json`, with the Prometheus data-query and the
  timeseries/stat/table panel variants registered, so targets and options parse into
  their typed models instead of the lenient unknown fallback;
- every panel has a title, a unique id, the provisioned data source (uid `prometheus`)
  and at least one target, and every target is a Prometheus query with an expression;
- the parsed model serializes back (`to_json`) to the same expressions.

It prints one JSON document on stdout, `[{"file", "uid", "title", "panels": [{"title",
"exprs"}]}]`, which the Rust test turns into a rules file for `promtool check rules`
and a list of metric names to find in a live `/metrics`. Problems go to stderr, one a
line, and the exit status is 1.
"""

import json
import sys

from grafana_foundation_sdk.cog import runtime
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import prometheus, stat, table, timeseries
from grafana_foundation_sdk.models.dashboard import Dashboard, Panel

DATASOURCE_UID = "prometheus"


def main(paths: list[str]) -> int:
    runtime.register_dataquery_variant(prometheus.variant_config())
    for variant in (timeseries, stat, table):
        runtime.register_panelcfg_variant(variant.variant_config())

    problems: list[str] = []
    out = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
        dash = Dashboard.from_json(raw)
        where = path
        if not dash.title:
            problems.append(f"{where}: no title")
        if not dash.uid:
            problems.append(f"{where}: no uid")
        if not dash.panels:
            problems.append(f"{where}: no panels")
        ids = set()
        panels = []
        for panel in dash.panels or []:
            if not isinstance(panel, Panel):
                problems.append(f"{where}: a {type(panel).__name__} where a panel belongs")
                continue
            pw = f"{where}: panel {panel.id_val} {panel.title!r}"
            if not panel.title:
                problems.append(f"{pw}: no title")
            if panel.id_val in ids:
                problems.append(f"{pw}: duplicate id")
            ids.add(panel.id_val)
            if panel.type_val not in ("timeseries", "stat", "table"):
                problems.append(f"{pw}: panel type {panel.type_val!r} has no registered variant")
            if panel.datasource is None or panel.datasource.uid != DATASOURCE_UID:
                problems.append(f"{pw}: data source is not uid {DATASOURCE_UID!r}")
            if not panel.targets:
                problems.append(f"{pw}: no targets")
            exprs = []
            for target in panel.targets or []:
                if not isinstance(target, prometheus.Dataquery):
                    problems.append(f"{pw}: target {type(target).__name__} is not a Prometheus query")
                    continue
                if not target.expr or not target.expr.strip():
                    problems.append(f"{pw}: target {target.ref_id} has no expression")
                    continue
                exprs.append(target.expr)
            panels.append({"title": panel.title, "exprs": exprs})
        again = Dashboard.from_json(json.loads(json.dumps(dash, cls=JSONEncoder)))
        lifted = [t.expr for p in again.panels or [] for t in p.targets or []]
        if lifted != [e for p in panels for e in p["exprs"]]:
            problems.append(f"{where}: expressions change across a to_json round trip")
        out.append({"file": path, "uid": dash.uid, "title": dash.title, "panels": panels})
    for p in problems:
        print(p, file=sys.stderr)
    json.dump(out, sys.stdout)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
