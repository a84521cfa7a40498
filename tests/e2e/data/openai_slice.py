"""Writes ``openai-openapi-served.json.gz``: the operations of OpenAI's OpenAPI document that the
gateway serves, with every component they refer to, for the fuzz test (a clone has no
``../shared``). Run from the repository root when the document or the gateway's doors change:

    python tests/e2e/data/openai_slice.py ../shared/data/openai-openapi/openapi.yaml
"""

from __future__ import annotations

import gzip
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

#: OpenAI's operations the gateway serves (paths relative to /v1).
SERVED = re.compile(
    r"^/(chat/completions|completions|embeddings|models(/\{model\})?|files(/\{file_id\}"
    r"(/content)?)?|batches(/\{batch_id\}(/cancel)?)?|responses(/\{response_id\}"
    r"(/input_items)?)?|fine_tuning/jobs(/\{fine_tuning_job_id\}(/cancel|/events)?)?)$"
)
OUT = Path(__file__).with_name("openai-openapi-served.json.gz")


def _refs(node: Any, out: set[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                out.add(value)
            else:
                _refs(value, out)
    elif isinstance(node, list):
        for value in node:
            _refs(value, out)


def served_slice(document: dict[str, Any]) -> dict[str, Any]:
    paths = {p: v for p, v in document["paths"].items() if SERVED.match(p)}
    components: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    todo: set[str] = set()
    _refs(paths, todo)
    while todo:
        ref = todo.pop()
        if ref in seen:
            continue
        seen.add(ref)
        parts = ref.lstrip("#/").split("/")
        node: Any = document
        for part in parts:
            node = node[part]
        components.setdefault(parts[1], {})[parts[2]] = node
        found: set[str] = set()
        _refs(node, found)
        todo |= found - seen
    out: dict[str, Any] = {k: document[k] for k in ("openapi", "info", "servers") if k in document}
    return {**out, "paths": paths, "components": components}


def main() -> None:
    document = yaml.safe_load(Path(sys.argv[1]).read_text())
    text = json.dumps(served_slice(document), separators=(",", ":"), sort_keys=True)
    OUT.write_bytes(gzip.compress(text.encode(), mtime=0))
    print(f"{OUT}: {len(text):,} bytes of JSON")


if __name__ == "__main__":
    main()
