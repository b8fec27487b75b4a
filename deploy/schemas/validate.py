#!/usr/bin/env python3
"""Validates the prometheus-operator objects (ServiceMonitor, PrometheusRule) of rendered
manifests against the strict schemas beside this file; kubernetes-validate covers the core
kinds and has no schema for these.

    kubectl kustomize deploy/base | python3 deploy/schemas/validate.py -

Prints one line per object and exits 1 when any object fails, 2 when a document's kind has
no schema here. Needs PyYAML and jsonschema: python3 -m pip install -r deploy/requirements.txt
"""

import json
import sys
from pathlib import Path

import jsonschema
import yaml

HERE = Path(__file__).resolve().parent


def schema_for(doc):
    group, _, version = doc.get("apiVersion", "").rpartition("/")
    path = HERE / f"{group}_{version}_{doc.get('kind', '').lower()}.json"
    return path if path.exists() else None


def main(argv):
    sources = argv[1:] or ["-"]
    failed = unknown = 0
    for src in sources:
        text = sys.stdin.read() if src == "-" else Path(src).read_text(encoding="utf-8")
        for doc in yaml.safe_load_all(text):
            if not doc:
                continue
            what = f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"
            path = schema_for(doc)
            if path is None:
                print(f"NOSCHEMA {what} ({doc.get('apiVersion')})")
                unknown += 1
                continue
            schema = json.loads(path.read_text(encoding="utf-8"))
            errors = sorted(
                jsonschema.Draft7Validator(schema).iter_errors(doc), key=lambda e: list(e.path)
            )
            for e in errors:
                where = ".".join(str(p) for p in e.absolute_path) or "(root)"
                print(f"ERROR {what} {where}: {e.message}")
            if errors:
                failed += 1
            else:
                print(f"OK {what} against {path.name}")
    return 1 if failed else 2 if unknown else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
