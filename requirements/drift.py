"""What a refresh of the locks would change: the versions installed in this interpreter's
environment against those in the lock files given. ``make upgrade-check`` runs it in a scratch
venv holding the newest releases that pyproject.toml allows.

    python requirements/drift.py requirements/dev.txt requirements/models.txt
"""

from __future__ import annotations

import importlib.metadata
import re
import sys
from pathlib import Path

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(paths: list[Path]) -> dict[str, str]:
    pins: dict[str, str] = {}
    for path in paths:
        for line in path.read_text().splitlines():
            match = _PIN.match(line)
            if match:
                pins[canonical(match.group(1))] = match.group(2)
    return pins


def installed() -> dict[str, str]:
    return {
        canonical(dist.metadata["Name"]): dist.version
        for dist in importlib.metadata.distributions()
        if dist.metadata["Name"] and canonical(dist.metadata["Name"]) != "stackyard"
    }


def main(paths: list[Path]) -> int:
    pins, now = locked(paths), installed()
    changed = sorted(n for n in pins.keys() & now.keys() if pins[n] != now[n])
    added = sorted(now.keys() - pins.keys())
    dropped = sorted(pins.keys() - now.keys())
    print(f"drift against {', '.join(str(p) for p in paths)}:")
    for name in changed:
        print(f"  {name:32} {pins[name]:>20} -> {now[name]}")
    for name in added:
        print(f"  {name:32} {'(not locked)':>20} -> {now[name]}")
    for name in dropped:
        print(f"  {name:32} {pins[name]:>20} -> (no longer needed)")
    if not (changed or added or dropped):
        print("  none: the locks hold the newest releases")
    return 0


if __name__ == "__main__":
    sys.exit(main([Path(a) for a in sys.argv[1:]]))
