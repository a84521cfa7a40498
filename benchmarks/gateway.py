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
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks import _wrk
from benchmarks._gateway_anchors import (
    Target,
    start_litellm,
    start_portkey,
)
from benchmarks._procs import (
    Server,
    ensure_debian_package,
    free_port,
    post_json,
    stop_all,
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TARGETS = (
    "direct",
    "stackyard",
    "logged",
    "exported",
    "exported-thread",
    "governed",
    "litellm",
    "portkey",
)

COMPLETION = (
    '{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,'
    '"model":"bench","choices":[{"index":0,"message":{"role":"assistant",'
    '"content":"Hello! How can I help you today?","refusal":null},"logprobs":null,'
    '"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":9,'
    '"total_tokens":18}}'
)


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
error_log stderr warn;
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
        location = /otlp/v1/traces {{
            default_type application/x-protobuf;
            return 200 '';
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


#: What runs our server (empty: itself; ``benchmarks.instructions`` puts callgrind there).
LAUNCHER: list[str] = []
#: How long our server may take to be ready (callgrind slows its start-up).
READY_SECONDS = 60.0


def _start_ours(name: str, workdir: Path, config_text: str, headers: dict[str, str]) -> Target:
    config = workdir / f"{name}.yaml"
    config.write_text(config_text)
    port = free_port()
    binary = Path(sys.executable).parent / "stackyard"
    command = [*LAUNCHER, str(binary), "serve", "--config", str(config), "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", "1", "--log-level", "warning"]
    server = Server(name, command, log=workdir / f"{name}.log")
    server.wait_http(f"http://127.0.0.1:{port}/ready", READY_SECONDS)
    from stackyard import __version__

    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    return Target(name, url, headers, server, __version__)


def _model(upstream: str) -> str:
    return (
        "models:\n"
        "  - name: bench\n"
        "    provider: openai-compatible\n"
        "    model: bench\n"
        f"    api_base: {upstream}\n"
        "    api_key: sk-bench\n"
        "    input_cost_per_mtok: 0.15\n"
        "    output_cost_per_mtok: 0.60\n"
    )


def start_stackyard(workdir: Path, upstream: str) -> Target:
    """The bare gateway: no keys, nothing stored (metrics still count every request)."""
    config = _model(upstream) + "observability:\n  bodies: 'off'\n"
    return _start_ours("stackyard", workdir, config, {})


def start_logged(workdir: Path, upstream: str) -> Target:
    """Full request logging: every trace with its spans and redacted bodies, to SQLite."""
    config = _model(upstream) + f"database_url: sqlite:///{workdir / 'logged.db'}\n"
    return _start_ours("logged", workdir, config, {})


def start_exported(workdir: Path, upstream: str, encoder: str = "process") -> Target:
    """Full request logging (as ``logged``) and every trace exported over OTLP, as configured
    by default (http/protobuf, gzip, encoded in a process of its own), to a collector that
    accepts everything (the nginx upstream, answering an empty ExportTraceServiceResponse);
    ``exported-thread`` encodes in a worker thread instead (``encoder: thread``)."""
    name = "exported" if encoder == "process" else f"exported-{encoder}"
    collector = upstream.removesuffix("/v1") + "/otlp/v1/traces"
    config = (
        _model(upstream)
        + f"database_url: sqlite:///{workdir / (name + '.db')}\n"
        + f"observability:\n  otlp:\n    endpoint: {collector}\n    encoder: {encoder}\n"
    )
    return _start_ours(name, workdir, config, {})


def start_governed(workdir: Path, upstream: str) -> Target:
    """Stackyard with governance on: a virtual key with RPM, TPM and a budget, shared through
    Redis, and the spend log written to SQLite."""
    ensure_redis()
    config = workdir / "governed.yaml"
    config.write_text(
        _model(upstream) + "observability:\n  bodies: 'off'\n"
        "auth:\n"
        "  master_key: sk-master-bench-0123456789\n"
        f"database_url: sqlite:///{workdir / 'governed.db'}\n"
        "redis_url: redis://127.0.0.1:6379/14\n"
    )
    binary = Path(sys.executable).parent / "stackyard"
    base = [str(binary)]
    subprocess.run(
        [
            *base,
            "teams",
            "create",
            "bench",
            "--rpm",
            "100000000",
            "--tpm",
            "100000000000",
            "--budget",
            "1000000",
            "--config",
            str(config),
        ],
        check=True,
        capture_output=True,
    )
    key = subprocess.run(
        [
            *base,
            "keys",
            "create",
            "--team",
            "bench",
            "--rpm",
            "100000000",
            "--tpm",
            "100000000000",
            "--budget",
            "1000000",
            "--config",
            str(config),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return _start_ours("governed", workdir, config.read_text(), {"Authorization": f"Bearer {key}"})


def ensure_redis() -> None:
    import redis

    client = redis.Redis.from_url("redis://127.0.0.1:6379/14")
    try:
        client.flushdb()
    except redis.ConnectionError:
        subprocess.run(
            ["redis-server", "--daemonize", "yes", "--port", "6379", "--save", ""], check=True
        )
        time.sleep(0.5)
        client.flushdb()
    finally:
        client.close()


def measure(target: Target, duration: float) -> Measurement:
    status, body = post_json(target.url, _wrk.CHAT_BODY.encode(), target.headers)
    if status != 200 or b"How can I help you today?" not in body:
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
    for r in results:
        if r.non_2xx or r.errors:
            lines.append(
                f"WARNING: {r.name} had {r.non_2xx} non-2xx responses and {r.errors} socket "
                "errors under load: its figures are not valid"
            )
    checks = _checks(results)
    if checks:
        lines.append("")
        lines += [f"- {text}: {verdict}" for text, verdict in checks]
    return "\n".join(lines)


def _checks(results: list[Measurement]) -> list[tuple[str, str]]:
    """The issue's targets, as (what was measured, PASS / FAIL / INVALID)."""
    by_name = {r.name: r for r in results}
    ours = by_name.get("stackyard")
    if ours is None:
        return []

    def verdict(ok: bool, *involved: Measurement) -> str:
        if any(m.non_2xx or m.errors for m in involved):
            return "INVALID (non-2xx or socket errors)"
        return "PASS" if ok else "FAIL"

    out: list[tuple[str, str]] = []
    for anchor, needed, label in [
        ("portkey", 2.5, "at least 2.5x Portkey's requests/s"),
        ("litellm", 40.0, "at least 40x LiteLLM's requests/s"),
    ]:
        other = by_name.get(anchor)
        if other is None or other.rps_16 == 0:
            continue
        ratio = ours.rps_16 / other.rps_16
        text = f"stackyard / {anchor} requests/s = {ratio:.1f}x ({label})"
        out.append((text, verdict(ratio >= needed, ours, other)))
    logged = by_name.get("logged")
    if logged is not None and ours.rps_16:
        share = logged.rps_16 / ours.rps_16
        text = f"full logging / bare stackyard requests/s = {share:.0%} (at least 80%)"
        out.append((text, verdict(share >= 0.80, ours, logged)))
    for name in ("exported", "exported-thread"):
        exported = by_name.get(name)
        if exported is not None and logged is not None and logged.rps_16:
            share = exported.rps_16 / logged.rps_16
            text = f"{name} / logged requests/s = {share:.0%} (what OTLP export costs)"
            out.append((text, "INFO" if not (exported.non_2xx or exported.errors) else "INVALID"))
    governed = by_name.get("governed")
    if governed is not None and ours.rps_16:
        share = governed.rps_16 / ours.rps_16
        text = f"governed / bare stackyard requests/s = {share:.0%} (at least 85%)"
        out.append((text, verdict(share >= 0.85, ours, governed)))
    direct = by_name.get("direct")
    if direct is not None:
        text = f"stackyard added p50 at 1 connection = {ours.added_p50_1:.2f} ms (at most 1 ms)"
        out.append((text, verdict(ours.added_p50_1 <= 1.0, ours, direct)))
    return out


STARTERS: dict[str, Callable[[Path, str], Target]] = {
    "stackyard": start_stackyard,
    "logged": start_logged,
    "exported": start_exported,
    "exported-thread": lambda workdir, upstream: start_exported(workdir, upstream, "thread"),
    "governed": start_governed,
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


def _run_targets(
    chosen: list[str], duration: float, results: list[Measurement], skipped: dict[str, str]
) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as tmp:
        workdir = Path(tmp)
        (workdir / "nginx").mkdir()
        with _running(workdir / "nginx") as (nginx, upstream):
            for name in chosen:
                print(f"measuring {name} ...", flush=True)
                target: Target | None = None
                try:
                    if nginx.process.poll() is not None:
                        raise RuntimeError(f"the nginx upstream exited: {nginx.log()[-300:]}")
                    if name == "direct":
                        target = Target("direct", f"{upstream}/chat/completions", {}, nginx)
                        target.version = "nginx"
                    else:
                        target = STARTERS[name](workdir, upstream)
                    time.sleep(0.5)
                    results.append(measure(target, duration))
                except Exception as exc:  # one target failing must not end the run
                    reason = str(exc).strip() or type(exc).__name__
                    skipped[name] = reason.splitlines()[0][:300]
                    print(f"  {name} skipped: {reason}", file=sys.stderr)
                finally:
                    # This target's servers, including one whose start failed half-way.
                    for server in list(Server.live):
                        if server is not nginx:
                            server.stop()


def _medians(rounds: list[list[Measurement]]) -> list[Measurement]:
    """Each target's median figures over the rounds (the first round's order)."""
    if len(rounds) == 1:
        return rounds[0]
    out = []
    for first in rounds[0]:
        runs = [m for r in rounds for m in r if m.name == first.name]
        merged = Measurement(**asdict(first))
        for name in ("rps_16", "p50_1", "p99_1", "p50_16", "p99_16", "rss_mib"):
            values = [getattr(m, name) for m in runs if getattr(m, name) is not None]
            setattr(merged, name, statistics.median(values) if values else None)
        merged.non_2xx = sum(m.non_2xx for m in runs)
        merged.errors = sum(m.errors for m in runs)
        out.append(merged)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--only", default=",".join(TARGETS), help="comma-separated targets")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="measure every target this many times, in turn, and report the median of each "
        "figure (this machine's noise moves single runs by several per cent)",
    )
    args = parser.parse_args(argv)
    chosen = [t.strip() for t in args.only.split(",") if t.strip()]
    unknown = set(chosen) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets: {', '.join(sorted(unknown))}; known: {', '.join(TARGETS)}")
    if "direct" not in chosen:
        chosen.insert(0, "direct")  # added latency needs the upstream's own
    ensure_debian_package("wrk", "wrk")
    # A plain `kill` ends the run as Ctrl-C does: through the `finally`s that stop the servers.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))

    results: list[Measurement] = []
    skipped: dict[str, str] = {}
    try:
        rounds: list[list[Measurement]] = []
        for round_ in range(max(1, args.repeat)):
            if args.repeat > 1:
                print(f"round {round_ + 1} of {args.repeat}", flush=True)
            rounds.append([])
            _run_targets(chosen, args.duration, rounds[-1], skipped)
        results = _medians(rounds)
    except KeyboardInterrupt:
        print("\ninterrupted: every server this run started is stopped", file=sys.stderr)
        return 130
    finally:
        stop_all()
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
    nproc = len(os.sched_getaffinity(0))
    header = (
        f"{datetime.date.today().isoformat()}, {nproc} cores (nproc), "
        f"{args.duration:g} s per measurement, wrk -t1; command: `{command.strip()}`"
    )
    print()
    print(header)
    print(_report(results, skipped, args.markdown))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "date": datetime.date.today().isoformat(),
                    "nproc": nproc,
                    "duration_s": args.duration,
                    "command": command.strip(),
                    "header": header,
                    "results": [asdict(r) for r in results],
                    "skipped": skipped,
                    "checks": [{"check": t, "verdict": v} for t, v in _checks(results)],
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
