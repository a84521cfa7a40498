"""Datasets: items with an input (the prompt's variables, or a text), an optional expected
output and metadata, read from JSONL or CSV."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class DatasetError(ValueError):
    pass


@dataclass(frozen=True)
class Item:
    id: str
    input: dict[str, Any] | str
    expected: Any = None
    metadata: dict[str, Any] = field(default_factory=dict)


def _item(record: dict[str, Any], where: str, index: int) -> Item:
    if "input" not in record:
        raise DatasetError(f"{where}: item has no 'input'")
    value = record["input"]
    if not isinstance(value, dict | str):
        raise DatasetError(f"{where}: 'input' must be an object (variables) or a string")
    metadata = record.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise DatasetError(f"{where}: 'metadata' must be an object")
    return Item(str(record.get("id", index)), value, record.get("expected"), metadata)


def load(path: Path) -> list[Item]:
    """JSONL (one ``{"input", "expected"?, "metadata"?, "id"?}`` per line) or CSV (an
    ``expected`` column, ``id`` and ``metadata.*`` columns; every other column is an input
    variable)."""
    if not path.exists():
        raise DatasetError(f"{path}: no such file")
    items: list[Item] = []
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            for index, row in enumerate(csv.DictReader(handle), start=1):
                variables = {
                    k: v for k, v in row.items() if k not in ("id", "expected") and "." not in k
                }
                metadata = {
                    k.split(".", 1)[1]: v for k, v in row.items() if k.startswith("metadata.")
                }
                record = {"input": variables, "expected": row.get("expected"), "metadata": metadata}
                if row.get("id"):
                    record["id"] = row["id"]
                items.append(_item(record, f"{path}:{index + 1}", index))
    else:
        for index, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}:{index}: not JSON: {exc.msg}") from None
            if not isinstance(record, dict):
                raise DatasetError(f"{path}:{index}: each line must be a JSON object")
            items.append(_item(record, f"{path}:{index}", index))
    if not items:
        raise DatasetError(f"{path}: the dataset is empty")
    ids = [i.id for i in items]
    if len(set(ids)) != len(ids):
        raise DatasetError(f"{path}: item ids must be unique")
    return items
