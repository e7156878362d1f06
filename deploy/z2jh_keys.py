"""Derive the list of documented Zero to JupyterHub values keys from the chart's schema.

The chart documents every value in ``jupyterhub/values.schema.yaml`` (a JSON schema
written in YAML). This script walks it and prints one dotted key per line; a key whose
children are free-form (``extraConfig``, ``extraEnv``, Kubernetes objects) ends in
``.*``. ``deploy/z2jh-keys.txt`` is its output for the chart version named in its header,
and ``tests/integration/test_deploy.py`` checks ``deploy/values.yaml`` against it offline.

Regenerate after a chart upgrade (the schema file comes from the chart's repository):

    python deploy/z2jh_keys.py PATH/TO/values.schema.yaml "chart <version or commit>" > deploy/z2jh-keys.txt

Example:

>>> schema = {"properties": {"hub": {"type": "object", "additionalProperties": False,
...           "properties": {"extraConfig": {"type": "object", "additionalProperties": True},
...                          "image": {"type": "object", "properties": {"name": {"type": "string"}}}}}}}
>>> keys(schema)
['hub', 'hub.extraConfig', 'hub.extraConfig.*', 'hub.image', 'hub.image.name']
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any


def _is_free_form(node: dict[str, Any]) -> bool:
    """True when the schema lets any child key appear under ``node``."""
    if node.get("patternProperties"):
        return True
    if node.get("additionalProperties") not in (None, False):
        return True
    types = node.get("type")
    types = types if isinstance(types, list) else [types]
    # an object with no listed properties and no "additionalProperties: false" is open
    return "object" in types and "properties" not in node and node.get("additionalProperties") is not False


def keys(schema: dict[str, Any], prefix: str = "") -> list[str]:
    """Every dotted key the schema documents, ``prefix.*`` where children are free-form."""
    out: list[str] = []
    for name, node in sorted((schema.get("properties") or {}).items()):
        path = f"{prefix}.{name}" if prefix else name
        out.append(path)
        if isinstance(node, dict):
            out.extend(keys(node, path))
            if _is_free_form(node):
                out.append(f"{path}.*")
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    import yaml

    schema = yaml.safe_load(Path(argv[0]).read_text())
    print(f"# Keys documented by the Zero to JupyterHub chart's values.schema.yaml ({argv[1]}).")
    print("# Derived by deploy/z2jh_keys.py; 'x.*' means any key under x is allowed (free-form).")
    for key in keys(schema):
        print(key)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
