"""Gateway throughput and added latency, side by side with LiteLLM's proxy and Portkey's gateway.

One run starts a zero-delay nginx upstream that answers every chat completion with a fixed
body, then puts each gateway in front of it (one worker each) and drives it with the same
``wrk`` load: requests/s at 16 connections, and latency at 1 and 16 connections, from which
the upstream's own latency (measured directly, in the same run) is subtracted.

    python -m benchmarks.gateway                      # every target, 10 s per measurement
    python -m benchmarks.gateway --only direct,stackyard --duration 5
    python -m benchmarks.gateway --markdown           # a table for BENCHMARKS.md

The anchors install themselves on first use, outside the project's environment: LiteLLM into
``benchmarks/.venvs/litellm`` and Portkey into ``benchmarks/.node`` (nginx and wrk from Debian).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import secrets
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchmarks import _wrk
from benchmarks._procs import Server, ensure_debian_package, free_port, post_json

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LITELLM_VERSION = "1.108.7"
PORTKEY_VERSION = "1.15.2"
TARGETS = ("direct", "stackyard", "litellm", "portkey")

COMPLETION = (
    '{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,'
    '"model":"bench","choices":[{"index":0,"message":{"role":"assistant",'
    '"content":"Hello! How can I help you today?","refusal":null},"logprobs":null,'
    '"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":9,'
    '"total_tokens":18}}'
)


@dataclass
class Target:
    name: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    server: Server | None = None
    version: str = ""


@dataclass
class Measurement:
    name: str
    version: str
    rps_16: float
    p50_1: float
    p99_1: float
    p50_16: float
    p99_16: float
    rss_mib: float | None
    non_2xx: int
    errors: int
    added_p50_1: float = 0.0
    added_p99_1: float = 0.0
    added_p50_16: float = 0.0
    added_p99_16: float = 0.0


def start_nginx(workdir: Path) -> tuple[Server, int]:
    ensure_debian_package("nginx", "nginx-light")
    port = free_port()
    (workdir / "logs").mkdir()
    config = workdir / "nginx.conf"
    config.write_text(
        f"""
worker_processes 1;
daemon off;
error_log {workdir}/logs/error.log warn;
pid {workdir}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path {workdir}/body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
    server {{
        listen 127.0.0.1:{port};
        client_body_buffer_size 64k;
        location / {{
            default_type application/json;
            return 200 '{COMPLETION}';
        }}
    }}
}}
"""
    )
    server = Server(
        "nginx", ["nginx", "-c", str(config), "-p", str(workdir)], log=workdir / "nginx.log"
    )
    server.wait_http(f"http://127.0.0.1:{port}/v1/models", 10)
    return server, port


def start_stackyard(workdir: Path, upstream: str) -> Target:
    config = workdir / "stackyard.yaml"
    config.write_text(
        "models:\n"
        "  - name: bench\n"
        "    provider: openai-compatible\n"
        "    model: bench\n"
        f"    api_base: {upstream}\n"
        "    api_key: sk-bench\n"
    )
    port = free_port()
    binary = Path(sys.executable).parent / "stackyard"
    command = [str(binary), "serve", "--config", str(config), "--port", str(port)]
    command += ["--workers", "1", "--log-level", "warning"]
    server = Server("stackyard", command, log=workdir / "stackyard.log")
    server.wait_http(f"http://127.0.0.1:{port}/ready", 60)
    from stackyard import __version__

    return Target(
        "stackyard", f"http://127.0.0.1:{port}/v1/chat/completions", {}, server, __version__
    )


def _litellm_binary() -> Path:
    venv = HERE / ".venvs" / "litellm"
    binary = venv / "bin" / "litellm"
    if not binary.exists():
        print(f"installing litellm[proxy]=={LITELLM_VERSION} into {venv} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "pip"), "install", "-q"]
        subprocess.run([*pip, f"litellm[proxy]=={LITELLM_VERSION}"], check=True)
    return binary


def start_litellm(workdir: Path, upstream: str) -> Target:
    binary = _litellm_binary()
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
        LITELLM_VERSION,
    )


def _portkey_entry() -> Path:
    prefix = HERE / ".node"
    entry = prefix / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"
    if not entry.exists():
        print(f"installing @portkey-ai/gateway@{PORTKEY_VERSION} into {prefix} ...", flush=True)
        prefix.mkdir(exist_ok=True)
        subprocess.run(
            [
                "npm",
                "install",
                "--no-audit",
                "--no-fund",
                "--prefix",
                str(prefix),
                f"@portkey-ai/gateway@{PORTKEY_VERSION}",
            ],
            check=True,
        )
    return entry


def start_portkey(workdir: Path, upstream: str) -> Target:
    entry = _portkey_entry()
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
        PORTKEY_VERSION,
    )


def measure(target: Target, duration: float) -> Measurement:
    status, body = post_json(target.url, _wrk.CHAT_BODY.encode(), target.headers)
    if status != 200 or b"chat.completion" not in body:
        raise RuntimeError(f"{target.name} answered {status}: {body[:300]!r}")
    script = _wrk.lua_script(target.headers)
    try:
        _wrk.run(target.url, script, connections=16, duration=min(3.0, duration))  # warm-up
        at16 = _wrk.run(target.url, script, connections=16, duration=duration)
        at1 = _wrk.run(target.url, script, connections=1, duration=duration)
    finally:
        script.unlink()
    return Measurement(
        name=target.name,
        version=target.version,
        rps_16=at16.requests_per_second,
        p50_1=at1.p50_ms,
        p99_1=at1.p99_ms,
        p50_16=at16.p50_ms,
        p99_16=at16.p99_ms,
        rss_mib=target.server.rss_mib() if target.server else None,
        non_2xx=at16.non_2xx + at1.non_2xx,
        errors=at16.socket_errors + at1.socket_errors,
    )


def _report(results: list[Measurement], skipped: dict[str, str], markdown: bool) -> str:
    lines = []
    if markdown:
        lines += [
            "| target | version | req/s @16 | added p50 @1 (ms) | added p99 @1 (ms) "
            "| added p50 @16 (ms) | added p99 @16 (ms) | RSS (MiB) | non-2xx |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in results:
            rss = f"{r.rss_mib:.0f}" if r.rss_mib is not None else "-"
            lines.append(
                f"| {r.name} | {r.version or '-'} | {r.rps_16:,.0f} | {r.added_p50_1:.2f} "
                f"| {r.added_p99_1:.2f} | {r.added_p50_16:.2f} | {r.added_p99_16:.2f} "
                f"| {rss} | {r.non_2xx + r.errors} |"
            )
    else:
        lines.append(
            f"{'target':<10} {'req/s@16':>9} {'+p50@1':>8} {'+p99@1':>8} {'+p50@16':>8} "
            f"{'+p99@16':>8} {'RSS MiB':>8} {'non-2xx':>8}"
        )
        for r in results:
            rss = f"{r.rss_mib:.0f}" if r.rss_mib is not None else "-"
            lines.append(
                f"{r.name:<10} {r.rps_16:>9,.0f} {r.added_p50_1:>8.2f} {r.added_p99_1:>8.2f} "
                f"{r.added_p50_16:>8.2f} {r.added_p99_16:>8.2f} {rss:>8} "
                f"{r.non_2xx + r.errors:>8}"
            )
    for name, reason in skipped.items():
        lines.append(f"{name}: skipped: {reason}")
    by_name = {r.name: r for r in results}
    ours = by_name.get("stackyard")
    if ours is not None:
        lines.append("")
        checks = [
            ("portkey", 2.5, "at least 2.5x Portkey's requests/s"),
            ("litellm", 40.0, "at least 40x LiteLLM's requests/s"),
        ]
        for anchor, needed, label in checks:
            other = by_name.get(anchor)
            if other is None or other.rps_16 == 0:
                continue
            ratio = ours.rps_16 / other.rps_16
            verdict = "PASS" if ratio >= needed else "FAIL"
            lines.append(f"- stackyard / {anchor} requests/s = {ratio:.1f}x ({label}): {verdict}")
        if "direct" in by_name:
            verdict = "PASS" if ours.added_p50_1 <= 1.0 else "FAIL"
            lines.append(
                f"- stackyard added p50 at 1 connection = {ours.added_p50_1:.2f} ms "
                f"(at most 1 ms): {verdict}"
            )
    return "\n".join(lines)


STARTERS: dict[str, Callable[[Path, str], Target]] = {
    "stackyard": start_stackyard,
    "litellm": start_litellm,
    "portkey": start_portkey,
}


@contextlib.contextmanager
def _running(workdir: Path) -> Iterator[tuple[Server, str]]:
    nginx, port = start_nginx(workdir)
    try:
        yield nginx, f"http://127.0.0.1:{port}/v1"
    finally:
        nginx.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--only", default=",".join(TARGETS), help="comma-separated targets")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args(argv)
    chosen = [t.strip() for t in args.only.split(",") if t.strip()]
    unknown = set(chosen) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets: {', '.join(sorted(unknown))}; known: {', '.join(TARGETS)}")
    if "direct" not in chosen:
        chosen.insert(0, "direct")  # added latency needs the upstream's own
    ensure_debian_package("wrk", "wrk")

    results: list[Measurement] = []
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as tmp:
        workdir = Path(tmp)
        (workdir / "nginx").mkdir()
        with _running(workdir / "nginx") as (nginx, upstream):
            for name in chosen:
                print(f"measuring {name} ...", flush=True)
                target: Target | None = None
                try:
                    if name == "direct":
                        target = Target("direct", f"{upstream}/chat/completions", {}, nginx)
                        target.version = "nginx"
                    else:
                        target = STARTERS[name](workdir, upstream)
                    time.sleep(0.5)
                    results.append(measure(target, args.duration))
                except (RuntimeError, subprocess.CalledProcessError, OSError, ValueError) as exc:
                    skipped[name] = str(exc).strip().splitlines()[0][:300]
                    print(f"  {name} skipped: {exc}", file=sys.stderr)
                finally:
                    if target is not None and target.server is not None and name != "direct":
                        target.server.stop()
    direct = next((r for r in results if r.name == "direct"), None)
    for r in results:
        if direct is not None:
            r.added_p50_1 = r.p50_1 - direct.p50_1
            r.added_p99_1 = r.p99_1 - direct.p99_1
            r.added_p50_16 = r.p50_16 - direct.p50_16
            r.added_p99_16 = r.p99_16 - direct.p99_16
    command = "python -m benchmarks.gateway " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    header = (
        f"{datetime.date.today().isoformat()}, {os.cpu_count()} cores, "
        f"{args.duration:g} s per measurement, wrk -t1; command: `{command.strip()}`"
    )
    print()
    print(header)
    print(_report(results, skipped, args.markdown))
    if args.json:
        args.json.write_text(
            json.dumps(
                {"header": header, "results": [asdict(r) for r in results], "skipped": skipped},
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
