"""The gateway benchmark's anchors, LiteLLM's proxy and Portkey's gateway, installed on first use
outside the project's environment (LiteLLM into ``benchmarks/.venvs/litellm`` from its lock,
Portkey into ``benchmarks/.node`` with ``npm ci`` from ``benchmarks/portkey``), and what a
benchmark target is."""

from __future__ import annotations

import hashlib
import json
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks._procs import Server, anchor_venv, free_port

HERE = Path(__file__).resolve().parent
LITELLM_VERSION = "1.108.7"
PORTKEY_VERSION = "1.15.2"


@dataclass
class Target:
    name: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    server: Server | None = None
    version: str = ""


def _litellm_binary() -> tuple[Path, str]:
    """LiteLLM's proxy in its own venv (pinned version if installable, else the latest)."""
    python, version = anchor_venv("litellm", "litellm", LITELLM_VERSION, "[proxy]")
    return python.parent / "litellm", version


def start_litellm(workdir: Path, upstream: str) -> Target:
    binary, version = _litellm_binary()
    print(f"  litellm {version}", flush=True)
    config = workdir / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: bench\n"
        "    litellm_params:\n"
        "      model: openai/bench\n"
        f"      api_base: {upstream}\n"
        "      api_key: sk-bench\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
    )
    port = free_port()
    master_key = "sk-" + secrets.token_hex(24)  # LiteLLM refuses weak keys such as sk-1234
    env = {
        "LITELLM_MASTER_KEY": master_key,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_LOG": "ERROR",
    }
    command = [str(binary), "--config", str(config), "--port", str(port), "--num_workers", "1"]
    server = Server("litellm", command, env=env, log=workdir / "litellm.log")
    server.wait_http(f"http://127.0.0.1:{port}/health/liveliness", 180)
    return Target(
        "litellm",
        f"http://127.0.0.1:{port}/v1/chat/completions",
        {"Authorization": f"Bearer {master_key}"},
        server,
        version,
    )


def _portkey_entry() -> tuple[Path, str]:
    """Portkey's gateway under benchmarks/.node: the file its package's bin (what
    `npx @portkey-ai/gateway` runs) points at. Installed with `npm ci` from its lock,
    benchmarks/portkey/package-lock.json (again when the lock changes), where there is one;
    else the pinned version if installable, else the latest."""
    prefix = HERE / ".node"
    package = prefix / "node_modules" / "@portkey-ai" / "gateway"
    entry = package / "build" / "start-server.js"
    locked = HERE / "portkey"
    lock = locked / "package-lock.json"
    if lock.exists():
        digest = hashlib.sha256(lock.read_bytes()).hexdigest()
        installed = prefix / ".installed"  # the lock's sha256, once installed from it
        if not (entry.exists() and installed.exists() and installed.read_text().strip() == digest):
            print(f"installing {lock} into {prefix} ...", flush=True)
            prefix.mkdir(exist_ok=True)
            installed.unlink(missing_ok=True)
            for name in ("package.json", "package-lock.json"):
                shutil.copyfile(locked / name, prefix / name)
            # npm ci: exactly the lock (integrity-checked), node_modules emptied first.
            subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund", "--prefix", str(prefix)], check=True
            )
            installed.write_text(digest + "\n")
    elif not entry.exists():
        print(f"installing @portkey-ai/gateway@{PORTKEY_VERSION} into {prefix} ...", flush=True)
        prefix.mkdir(exist_ok=True)
        npm = ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(prefix)]
        try:
            subprocess.run([*npm, f"@portkey-ai/gateway@{PORTKEY_VERSION}"], check=True)
        except subprocess.CalledProcessError:
            print(f"portkey {PORTKEY_VERSION} not installable; installing the latest", flush=True)
            subprocess.run([*npm, "@portkey-ai/gateway"], check=True)
    version = str(json.loads((package / "package.json").read_text())["version"])
    return entry, version


def start_portkey(workdir: Path, upstream: str) -> Target:
    entry, version = _portkey_entry()
    print(f"  portkey {version}", flush=True)
    port = free_port()
    # As `npx @portkey-ai/gateway` runs it, on our port.
    server = Server("portkey", ["node", str(entry), f"--port={port}"], log=workdir / "portkey.log")
    server.wait_http(f"http://127.0.0.1:{port}/", 60)
    headers = {"x-portkey-provider": "openai", "x-portkey-custom-host": upstream}
    return Target(
        "portkey",
        f"http://127.0.0.1:{port}/v1/chat/completions",
        {**headers, "Authorization": "Bearer sk-bench"},
        server,
        version,
    )
