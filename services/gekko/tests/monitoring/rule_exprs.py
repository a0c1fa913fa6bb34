"""Lists the PromQL of Prometheus rule files as JSON, for services/gekko/tests/monitoring.rs.

`.venv-sdk/bin/python rule_exprs.py RULES.yml...` prints
`[{"file", "group", "name", "kind": "record"|"alert", "expr"}]`. It reads YAML with
pyyaml (pinned in scripts/sdk-requirements.txt) so the Rust test need not parse YAML;
promtool has already checked the files' structure by the time this runs.
"""

import json
import sys

import yaml


def main(paths: list[str]) -> int:
    out = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
        for group in doc.get("groups", []):
            for rule in group.get("rules", []):
                kind = "record" if "record" in rule else "alert"
                out.append({
                    "file": path,
                    "group": group["name"],
                    "name": rule[kind],
                    "kind": kind,
                    "expr": rule["expr"],
                })
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
