"""Trace ingestion: spans per CPU-second for Stackyard's trace writer and for Arize Phoenix, on
SQLite and PostgreSQL; and how many traces a crash loses.

One run builds N realistic request traces (a root span, an admission span and one or two
upstream attempts, with a chat request body and its response) and stores them twice per
database: through Stackyard's real ``TraceWriter`` (its queue and worker thread, bodies redacted
and encoded there, one row per request), and through a ``phoenix serve`` fed the same spans over
OTLP/HTTP (protobuf, in batches of 512 traces, as our exporter batches), waiting until Phoenix's
database holds every span. CPU time is that of the process that ingests (ours: the benchmark's
own process, writer thread included; Phoenix: its server's process tree), and on PostgreSQL also
that of the database's backends serving it. Then a real ``stackyard serve`` under wrk load is
killed with SIGKILL, and the answered requests are compared with the traces it stored.

    python -m benchmarks.traces                       # 20,000 traces, both databases
    python -m benchmarks.traces --traces 5000 --only stackyard,crash
    python -m benchmarks.traces --markdown            # a table for BENCHMARKS.md

Phoenix installs itself on first use into ``benchmarks/.venvs/phoenix`` (its own venv);
PostgreSQL is reached at $STACKYARD_TEST_POSTGRES (default: local, user postgres), where each
run creates throwaway databases and drops them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import gc
import json
import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from sqlalchemy import create_engine, text

from benchmarks import _wrk
from benchmarks._procs import (
    Server,
    anchor_venv,
    ensure_debian_package,
    free_port,
    post_json,
    stop_all,
)
from benchmarks._trace_data import make_traces, span_total
from benchmarks.gateway import start_nginx
from stackyard.observability.otlp import payload
from stackyard.observability.redact import Redactor
from stackyard.observability.writer import Finished, TraceWriter
from stackyard.store.db import Database

HERE = Path(__file__).resolve().parent
PHOENIX_VERSION = "20.26.1"
POSTGRES = os.environ.get(
    "STACKYARD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = ("sqlite", "postgresql")
PARTS = ("stackyard", "phoenix", "crash")
OTLP_BATCH = 512  # traces per OTLP request, as stackyard.observability.otlp batches them
FLUSH_INTERVAL = 0.5  # observability.flush_interval's default
TICK = os.sysconf("SC_CLK_TCK")

# ---------------------------------------------------------------------------------------------
# Measuring CPU


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def tree_cpu(root: int) -> float:
    """CPU seconds (user + system) of a process and its descendants, the live ones and those
    that ended and were waited for."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                children.setdefault(int(_stat(int(entry.name))[1]), []).append(int(entry.name))
    ticks, todo = 0, [root]
    while todo:
        pid = todo.pop()
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = _stat(pid)
            ticks += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
        todo.extend(children.get(pid, []))
    return ticks / TICK


def backend_cpu(database: str, exclude: set[int]) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend connected to ``database`` (by process title)."""
    marker = f" {database} ".encode()
    out: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in exclude:
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            title = (entry / "cmdline").read_bytes()
            if title.startswith(b"postgres:") and marker in title.replace(b"\0", b" "):
                out[int(entry.name)] = sum(int(v) for v in _stat(int(entry.name))[11:13]) / TICK
    return out


def cpu_spent(before: dict[int, float], after: dict[int, float]) -> float:
    """Backends that ended in between are missed (connection pools keep theirs open)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


@contextlib.contextmanager
def postgres_database(label: str) -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards (as tests/conftest.py makes them)."""
    admin = create_engine(
        POSTGRES.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    name = f"bench_traces_{label}_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield POSTGRES.rsplit("/", 1)[0] + "/" + name
    finally:
        with contextlib.suppress(Exception), admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def database_name(url: str) -> str:
    return url.rsplit("/", 1)[1]


# ---------------------------------------------------------------------------------------------
# Results


@dataclass
class Ingestion:
    system: str
    version: str
    backend: str
    traces: int
    spans: int
    stored_spans: int
    wall_s: float
    cpu_s: float
    #: PostgreSQL's backends serving the ingesting process (None on SQLite: in-process).
    db_cpu_s: float | None
    note: str = ""

    @property
    def spans_per_s(self) -> float:
        return self.stored_spans / self.wall_s if self.wall_s else 0.0

    @property
    def spans_per_cpu_s(self) -> float:
        return self.stored_spans / self.cpu_s if self.cpu_s else 0.0

    @property
    def spans_per_total_cpu_s(self) -> float:
        total = self.cpu_s + (self.db_cpu_s or 0.0)
        return self.stored_spans / total if total else 0.0

    @property
    def complete(self) -> bool:
        return self.stored_spans == self.spans


@dataclass
class CrashLoss:
    backend: str
    answered: int
    stored: int
    load_s: float
    requests_per_s: float
    flush_interval: float
    non_2xx: int
    #: stackyard_trace_queue_depth read from /metrics just before the kill (None: unread).
    queued_at_kill: int | None
    #: Seconds our writer takes per trace, from the ingestion part on this backend (None:
    #: not measured in this run).
    write_s_per_trace: float | None = None

    @property
    def lost(self) -> int:
        return self.answered - self.stored

    @property
    def batch_write_s(self) -> float:
        """How long writing one interval's batch takes (measured by the ingestion part)."""
        per_trace = self.write_s_per_trace or 0.0
        return self.requests_per_s * self.flush_interval * per_trace

    @property
    def bound(self) -> float:
        """The last unflushed batch: the traces accepted while a batch gathers (one flush
        interval) and while the batch before it was being written."""
        return self.requests_per_s * (self.flush_interval + self.batch_write_s)


# ---------------------------------------------------------------------------------------------
# Stackyard


async def _write_all(writer: TraceWriter, traces: list[Finished]) -> None:
    writer.start()
    for done in traces:
        if not writer.offer(done):
            raise RuntimeError("the trace writer's queue was full")
    await writer.close()


def measure_stackyard(backend: str, url: str, traces: list[Finished], workdir: Path) -> Ingestion:
    from stackyard import __version__

    db = Database(url)
    db.migrate()
    pg_name = database_name(url) if backend == "postgresql" else None
    writer = TraceWriter(
        db,
        max_queue=len(traces) + 1,
        interval=FLUSH_INTERVAL,
        redactor=Redactor(pii=True),  # the server's default: observability.redact_pii
        spill_path=workdir / f"stackyard-{backend}-unwritten.jsonl",
    )
    gc.collect()
    with db.engine.connect():  # open the pool's connection before the clock starts
        pass
    pg_before = backend_cpu(pg_name, set()) if pg_name else {}
    wall0, cpu0 = time.perf_counter(), time.process_time()
    asyncio.run(_write_all(writer, traces))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    db_cpu = cpu_spent(pg_before, backend_cpu(pg_name, set())) if pg_name else None
    with db.engine.connect() as connection:
        rows, spans = connection.execute(
            text("SELECT count(*), coalesce(sum(span_count), 0) FROM traces")
        ).one()
    db.dispose()
    note = "" if rows == len(traces) else f"{rows} of {len(traces)} rows stored"
    if writer.spilled:
        note += f"; {writer.spilled} spilled"
    return Ingestion(
        "stackyard",
        __version__,
        backend,
        len(traces),
        span_total(traces),
        int(spans),
        wall,
        cpu,
        db_cpu,
        note.strip("; "),
    )


# ---------------------------------------------------------------------------------------------
# Phoenix

#: Run with the Phoenix venv's Python: encodes the OTLP/JSON batches as protobuf
#: (ExportTraceServiceRequest), says "ready", waits for a line on stdin, then posts them one
#: after the other, waiting and retrying while Phoenix answers 503 (its span queue is full).
SENDER = r"""
import base64, http.client, json, sys, time
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

def b64(value):
    return base64.b64encode(bytes.fromhex(value)).decode()

bodies = []
with open(sys.argv[1]) as batches:
    for line in batches:
        message = json.loads(line)
        for resource in message["resourceSpans"]:
            for scope in resource["scopeSpans"]:
                for span in scope["spans"]:
                    for key in ("traceId", "spanId", "parentSpanId"):
                        if key in span:
                            span[key] = b64(span[key])
        request = json_format.ParseDict(message, ExportTraceServiceRequest())
        bodies.append(request.SerializeToString())
print("ready", len(bodies), sum(map(len, bodies)), flush=True)
sys.stdin.readline()
connection = http.client.HTTPConnection("127.0.0.1", int(sys.argv[2]), timeout=120)
busy = 0
for body in bodies:
    while True:
        connection.request(
            "POST", "/v1/traces", body, {"content-type": "application/x-protobuf"}
        )
        reply = connection.getresponse()
        said = reply.read()
        if reply.status == 200:
            break
        if reply.status == 503:
            busy += 1
            time.sleep(0.05)
            continue
        sys.exit(f"phoenix answered {reply.status}: {said[:300]!r}")
print("sent", len(bodies), "busy", busy, flush=True)
"""


def phoenix_venv() -> tuple[Path, str]:
    """Phoenix in its own venv, with its PostgreSQL driver (the ``pg`` extra) and the OTLP
    protobuf classes for the sender."""
    python, version = anchor_venv(
        "phoenix", "arize-phoenix", PHOENIX_VERSION, "[pg]", ("opentelemetry-proto",)
    )
    return python.parent.parent, version


def otlp_batches(traces: list[Finished], path: Path) -> None:
    """The traces as OTLP/JSON requests of OTLP_BATCH traces, one a line: the spans our
    exporter sends, plus the bodies on the root span as OpenInference's ``input.value`` and
    ``output.value`` (where Phoenix keeps them), since we store them too."""
    with path.open("w") as out:
        for start in range(0, len(traces), OTLP_BATCH):
            batch = traces[start : start + OTLP_BATCH]
            message = payload(batch, "stackyard")
            spans = message["resourceSpans"][0]["scopeSpans"][0]["spans"]
            roots = {f.trace.root.span_id: f for f in batch}
            for span in spans:
                done = roots.get(span["spanId"])
                if done is None:
                    continue
                extra = {
                    "input.value": json.dumps(done.trace.body),
                    "input.mime_type": "application/json",
                }
                if done.trace.response is not None:
                    extra["output.value"] = json.dumps(done.trace.response)
                    extra["output.mime_type"] = "application/json"
                span["attributes"] += [
                    {"key": k, "value": {"stringValue": v}} for k, v in extra.items()
                ]
            out.write(json.dumps(message) + "\n")


def start_phoenix(venv: Path, workdir: Path, backend: str, url: str | None) -> tuple[Server, int]:
    port = free_port()
    home = workdir / f"phoenix-{backend}"
    home.mkdir()
    env = {
        "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_PORT": str(port),
        "PHOENIX_GRPC_PORT": str(free_port()),
        "PHOENIX_WORKING_DIR": str(home),
        "PHOENIX_TELEMETRY_ENABLED": "false",
        "PHOENIX_LOG_MIGRATIONS": "false",
        "PHOENIX_SQL_DATABASE_URL": url or f"sqlite:///{home / 'phoenix.db'}",
    }
    command = [str(venv / "bin" / "phoenix"), "serve"]
    server = Server(f"phoenix-{backend}", command, env=env, log=workdir / f"phoenix-{backend}.log")
    server.wait_http(f"http://127.0.0.1:{port}/healthz", 180)
    return server, port


class SpanCounter:
    """Counts the spans in Phoenix's database, from outside Phoenix."""

    def __init__(self, home: Path, url: str | None) -> None:
        self.sqlite: sqlite3.Connection | None = None
        self.pid: int | None = None
        if url is None:
            path = home / "phoenix.db"
            self.sqlite = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        else:
            self.engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
            self.connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            self.pid = int(self.connection.execute(text("SELECT pg_backend_pid()")).scalar_one())

    def count(self) -> int:
        if self.sqlite is not None:
            return int(self.sqlite.execute("SELECT count(*) FROM spans").fetchone()[0])
        return int(self.connection.execute(text("SELECT count(*) FROM spans")).scalar_one())

    def close(self) -> None:
        if self.sqlite is not None:
            self.sqlite.close()
        else:
            self.connection.close()
            self.engine.dispose()


def measure_phoenix(
    venv: Path,
    version: str,
    backend: str,
    url: str | None,
    batches: Path,
    spans: int,
    traces: int,
    workdir: Path,
) -> Ingestion:
    server, port = start_phoenix(venv, workdir, backend, url)
    counter = SpanCounter(workdir / f"phoenix-{backend}", url)
    sender = subprocess.Popen(
        [str(venv / "bin" / "python"), "-c", SENDER, str(batches), str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert sender.stdin is not None
        assert sender.stdout is not None
        ready = sender.stdout.readline()
        if not ready.startswith("ready"):
            raise RuntimeError(f"the OTLP sender failed: {ready} {_tail(sender.stderr)}")
        time.sleep(2.0)  # Phoenix settles after start-up
        exclude = {counter.pid} if counter.pid else set()
        pg_name = database_name(url) if url else None
        pg_before = backend_cpu(pg_name, exclude) if pg_name else {}
        cpu0, wall0 = tree_cpu(server.process.pid), time.perf_counter()
        sender.stdin.write("go\n")
        sender.stdin.flush()
        stored, last_progress, last = 0, time.monotonic(), -1
        while stored < spans:
            time.sleep(0.2)
            stored = counter.count()
            if stored != last:
                last, last_progress = stored, time.monotonic()
            elif time.monotonic() - last_progress > 60:
                break  # no progress for a minute: report what it stored
            if server.process.poll() is not None:
                raise RuntimeError(f"phoenix exited:\n{server.log()}")
            if sender.poll() not in (None, 0):
                raise RuntimeError(f"the OTLP sender failed: {_tail(sender.stderr)}")
        wall = time.perf_counter() - wall0
        cpu = tree_cpu(server.process.pid) - cpu0
        db_cpu = cpu_spent(pg_before, backend_cpu(pg_name, exclude)) if pg_name else None
        sent = ""
        if stored == spans:  # then the sender is done, or all but done
            sent = sender.stdout.readline().strip()
            sender.wait(60)
    finally:
        if sender.poll() is None:
            sender.kill()
            sender.wait()
        counter.close()
        server.stop()
    note = "" if stored == spans else f"stalled: {stored} of {spans} spans stored"
    busy = sent.split()[-1] if sent.startswith("sent") else "0"
    if busy != "0":
        retried = f"{busy} requests answered 503 (Phoenix's span queue full) and were retried"
        note = "; ".join(p for p in (note, retried) if p)
    return Ingestion("phoenix", version, backend, traces, spans, stored, wall, cpu, db_cpu, note)


def _tail(stream: IO[str] | None) -> str:
    return stream.read()[-500:] if stream is not None else ""


# ---------------------------------------------------------------------------------------------
# Crash loss


def count_traces(url: str) -> int:
    db = Database(url)
    try:
        with db.engine.connect() as connection:
            return int(connection.execute(text("SELECT count(*) FROM traces")).scalar_one())
    finally:
        db.dispose()


def measure_crash(
    backend: str, url: str, upstream: str, workdir: Path, load_s: float = 3.0
) -> CrashLoss:
    """Full bodies to ``url`` under wrk load at 16 connections; SIGKILL after ``load_s``."""
    config = workdir / f"crash-{backend}.yaml"
    config.write_text(
        "models:\n"
        "  - name: bench\n"
        "    provider: openai-compatible\n"
        "    model: bench\n"
        f"    api_base: {upstream}\n"
        "    api_key: sk-bench\n"
        f"database_url: {url}\n"
        "observability:\n"
        "  bodies: full\n"
        f"  flush_interval: {FLUSH_INTERVAL}\n"
    )
    port = free_port()
    binary = Path(sys.executable).parent / "stackyard"
    command = [str(binary), "serve", "--config", str(config), "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", "1", "--log-level", "warning"]
    server = Server(f"crash-{backend}", command, log=workdir / f"crash-{backend}.log")
    target = f"http://127.0.0.1:{port}/v1/chat/completions"
    script = _wrk.lua_script({})
    try:
        server.wait_http(f"http://127.0.0.1:{port}/ready", 60)
        status, body = post_json(target, _wrk.CHAT_BODY.encode(), {})
        if status != 200:
            raise RuntimeError(f"stackyard answered {status}: {body[:300]!r}")
        time.sleep(2 * FLUSH_INTERVAL)  # the warm-up request's trace is written
        wrk = subprocess.Popen(
            [
                *("wrk", "-t1", "-c16", f"-d{round(load_s) + 2}s", "--latency"),
                *("--timeout", "10s", "-s", str(script), target),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started = time.monotonic()
        time.sleep(load_s)
        queued = queue_depth(f"http://127.0.0.1:{port}/metrics")
        os.killpg(server.process.pid, signal.SIGKILL)
        killed = time.monotonic()
        server.process.wait()
        out, _ = wrk.communicate(timeout=60)
    finally:
        server.stop()
        script.unlink()
    result = _wrk.parse(out)
    answered = result.requests - result.non_2xx + 1  # + the warm-up request
    elapsed = killed - started
    return CrashLoss(
        backend,
        answered,
        count_traces(url),
        elapsed,
        result.requests / elapsed,
        FLUSH_INTERVAL,
        result.non_2xx,
        queued,
    )


def queue_depth(metrics_url: str) -> int | None:
    """The trace writer's queue depth, from the Prometheus text at ``metrics_url``."""
    try:
        with urllib.request.urlopen(metrics_url, timeout=2) as reply:
            for line in reply.read().decode().splitlines():
                if line.startswith("stackyard_trace_queue_depth"):
                    return int(float(line.split()[-1]))
    except (OSError, ValueError):
        return None
    return None


# ---------------------------------------------------------------------------------------------
# The run


@dataclass
class Run:
    ingestion: list[Ingestion]
    crashes: list[CrashLoss]
    skipped: dict[str, str]


def _skip(run: Run, what: str, exc: BaseException) -> None:
    said = str(exc).strip() or type(exc).__name__
    lines = said.splitlines()
    # A server's exit names it on the first line and says why on the last ones.
    reason = lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1].strip()}"
    run.skipped[what] = reason[:300]
    print(f"  {what} skipped: {said}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _database(backend: str, workdir: Path, label: str) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{workdir / f'{label}.db'}"
    else:
        with postgres_database(label) as url:
            yield url


def run_all(
    count: int, phoenix_count: int, backends: list[str], parts: list[str], run: Run
) -> None:
    traces: list[Finished] = []
    if "stackyard" in parts or "phoenix" in parts:
        print(f"building {count:,} traces ...", flush=True)
        traces = make_traces(count)
        print(f"  {span_total(traces):,} spans", flush=True)
    # Phoenix gets the first traces of the same list (all of them unless told fewer).
    theirs = traces[: phoenix_count or count]
    spans = span_total(theirs)
    with tempfile.TemporaryDirectory(prefix="bench-traces-") as tmp:
        workdir = Path(tmp)
        venv: Path | None = None
        version = ""
        batches = workdir / "otlp.jsonl"
        if "phoenix" in parts:
            try:
                venv, version = phoenix_venv()
                otlp_batches(theirs, batches)
            except Exception as exc:
                for backend in backends:
                    _skip(run, f"phoenix {backend}", exc)
        for backend in backends:
            if "stackyard" in parts:
                print(f"stackyard on {backend} ...", flush=True)
                try:
                    with _database(backend, workdir, "stackyard") as url:
                        result = measure_stackyard(backend, url, traces, workdir)
                    run.ingestion.append(result)
                    print(f"  {result.spans_per_cpu_s:,.0f} spans per CPU-second", flush=True)
                except Exception as exc:
                    _skip(run, f"stackyard {backend}", exc)
            if venv is not None:
                print(f"phoenix {version} on {backend} ...", flush=True)
                try:
                    with _database(backend, workdir, "phoenix") as url:
                        result = measure_phoenix(
                            venv,
                            version,
                            backend,
                            None if backend == "sqlite" else url,
                            batches,
                            spans,
                            len(theirs),
                            workdir,
                        )
                    run.ingestion.append(result)
                    print(f"  {result.spans_per_cpu_s:,.0f} spans per CPU-second", flush=True)
                except Exception as exc:
                    _skip(run, f"phoenix {backend}", exc)
                finally:
                    for server in list(Server.live):
                        server.stop()
        del traces, theirs
        if "crash" in parts:
            try:
                ensure_debian_package("wrk", "wrk")
                (workdir / "nginx").mkdir()
                nginx, nginx_port = start_nginx(workdir / "nginx")
            except Exception as exc:
                for backend in backends:
                    _skip(run, f"crash {backend}", exc)
                return
            try:
                for backend in backends:
                    print(f"crash loss on {backend} ...", flush=True)
                    try:
                        with _database(backend, workdir, "crash") as url:
                            upstream = f"http://127.0.0.1:{nginx_port}/v1"
                            crash = measure_crash(backend, url, upstream, workdir)
                            ours = [
                                r
                                for r in run.ingestion
                                if r.system == "stackyard" and r.backend == backend
                            ]
                            if ours:
                                crash.write_s_per_trace = ours[0].wall_s / ours[0].traces
                            run.crashes.append(crash)
                    except Exception as exc:
                        _skip(run, f"crash {backend}", exc)
            finally:
                nginx.stop()


# ---------------------------------------------------------------------------------------------
# The report


def _ratios(results: list[Ingestion], backend: str) -> tuple[float, float] | None:
    by = {r.system: r for r in results if r.backend == backend}
    ours, theirs = by.get("stackyard"), by.get("phoenix")
    if ours is None or theirs is None or not theirs.spans_per_cpu_s:
        return None
    return (
        ours.spans_per_cpu_s / theirs.spans_per_cpu_s,
        ours.spans_per_total_cpu_s / theirs.spans_per_total_cpu_s,
    )


def checks(run: Run) -> list[tuple[str, str]]:
    """The targets, as (what was measured, PASS / FAIL / INVALID)."""
    out: list[tuple[str, str]] = []
    for backend in BACKENDS:
        ratios = _ratios(run.ingestion, backend)
        if ratios is None:
            continue
        by = {r.system: r for r in run.ingestion if r.backend == backend}
        text = (
            f"{backend}: stackyard / phoenix spans per CPU-second = {ratios[0]:.1f}x (at least 5x)"
        )
        if backend == "postgresql":
            text += f"; counting PostgreSQL's backends too: {ratios[1]:.1f}x"
        valid = by["stackyard"].complete and by["phoenix"].complete
        verdict = ("PASS" if ratios[0] >= 5 else "FAIL") if valid else "INVALID (spans missing)"
        out.append((text, verdict))
    for crash in run.crashes:
        text = (
            f"{crash.backend}: SIGKILL under load lost {crash.lost} of {crash.answered} answered "
            f"requests' traces ({crash.lost / crash.requests_per_s:.2f} s of traffic; bound: "
            f"the last unflushed batch, one flush interval ({crash.flush_interval:g} s) plus "
            f"one batch write ({crash.batch_write_s:.2f} s) = {crash.bound:.0f} traces)"
        )
        if crash.queued_at_kill is not None:
            text += (
                f"; {crash.queued_at_kill} were queued in memory at the kill, the rest in the "
                "batch being written"
            )
        verdict = "INVALID (non-2xx)" if crash.non_2xx else "PASS"
        if not crash.non_2xx and crash.lost > crash.bound:
            verdict = "FAIL"
        out.append((text, verdict))
    return out


def _ingestion_table(results: list[Ingestion], markdown: bool) -> list[str]:
    if not results:
        return []
    if markdown:
        lines = [
            "| system | version | database | spans | stored | wall (s) | spans/s | CPU (s) "
            "| spans per CPU-s | DB backends CPU (s) | spans per CPU-s, DB included |",
            "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in results:
            db = f"{r.db_cpu_s:.1f}" if r.db_cpu_s is not None else "(in process)"
            lines.append(
                f"| {r.system} | {r.version} | {r.backend} | {r.spans:,} | {r.stored_spans:,} "
                f"| {r.wall_s:.1f} | {r.spans_per_s:,.0f} | {r.cpu_s:.1f} "
                f"| {r.spans_per_cpu_s:,.0f} | {db} | {r.spans_per_total_cpu_s:,.0f} |"
            )
        return lines
    lines = [
        f"{'system':<10} {'database':<10} {'spans':>7} {'stored':>7} {'wall s':>7} "
        f"{'spans/s':>8} {'CPU s':>6} {'/CPU-s':>8} {'DB CPU':>7} {'/all-s':>8}"
    ]
    for r in results:
        db = f"{r.db_cpu_s:.1f}" if r.db_cpu_s is not None else "-"
        lines.append(
            f"{r.system:<10} {r.backend:<10} {r.spans:>7} {r.stored_spans:>7} "
            f"{r.wall_s:>7.1f} {r.spans_per_s:>8,.0f} {r.cpu_s:>6.1f} "
            f"{r.spans_per_cpu_s:>8,.0f} {db:>7} {r.spans_per_total_cpu_s:>8,.0f}"
        )
    return lines


def report(run: Run, markdown: bool) -> str:
    lines = _ingestion_table(run.ingestion, markdown)
    for r in run.ingestion:
        if r.note:
            lines.append(f"{r.system} on {r.backend}: {r.note}")
    if run.crashes:
        if lines:
            lines.append("")
        if markdown:
            lines += [
                "| crash (SIGKILL) | load (s) | req/s | answered | traces stored | lost "
                "| queued at the kill | bound: the last unflushed batch |",
                "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
            ]
            for c in run.crashes:
                queued = "-" if c.queued_at_kill is None else f"{c.queued_at_kill:,}"
                lines.append(
                    f"| {c.backend} | {c.load_s:.1f} | {c.requests_per_s:,.0f} | {c.answered:,} "
                    f"| {c.stored:,} | {c.lost:,} | {queued} "
                    f"| {c.bound:,.0f} ({c.flush_interval:g} s + {c.batch_write_s:.2f} s) |"
                )
        else:
            for c in run.crashes:
                lines.append(
                    f"crash {c.backend}: {c.load_s:.1f} s at {c.requests_per_s:,.0f} req/s, "
                    f"{c.answered} answered, {c.stored} stored, {c.lost} lost "
                    f"({c.queued_at_kill} queued at the kill; bound {c.bound:.0f})"
                )
    for name, reason in run.skipped.items():
        lines.append(f"{name}: skipped: {reason}")
    verdicts = checks(run)
    if verdicts:
        lines.append("")
        lines += [f"- {text}: {verdict}" for text, verdict in verdicts]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--traces", type=int, default=20_000, help="requests to store")
    parser.add_argument(
        "--phoenix-traces",
        type=int,
        default=5_000,
        help="of those, how many Phoenix gets (the first ones; 0: all): it stores about 200 "
        "spans a second here, so all 20,000 take some 6 minutes a database",
    )
    parser.add_argument("--only", default=",".join(PARTS), help="comma-separated parts")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if set(parts) - set(PARTS):
        parser.error(f"unknown parts; known: {', '.join(PARTS)}")
    if set(backends) - set(BACKENDS):
        parser.error(f"unknown backends; known: {', '.join(BACKENDS)}")
    # A plain `kill` ends the run as Ctrl-C does: through the `finally`s that stop the servers.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    run = Run([], [], {})
    try:
        run_all(args.traces, args.phoenix_traces, backends, parts, run)
    except KeyboardInterrupt:
        print("\ninterrupted: every server this run started is stopped", file=sys.stderr)
        return 130
    finally:
        stop_all()
    command = "python -m benchmarks.traces " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    nproc = len(os.sched_getaffinity(0))
    today = datetime.date.today().isoformat()
    theirs = min(args.phoenix_traces or args.traces, args.traces)
    header = (
        f"{today}, {nproc} cores (nproc), {args.traces:,} traces (Phoenix: the first "
        f"{theirs:,}); command: `{command.strip()}`"
    )
    print()
    print(header)
    print(report(run, args.markdown))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "date": today,
                    "nproc": nproc,
                    "traces": args.traces,
                    "phoenix_traces": theirs,
                    "command": command.strip(),
                    "header": header,
                    "ingestion": [
                        {
                            **asdict(r),
                            "spans_per_s": r.spans_per_s,
                            "spans_per_cpu_s": r.spans_per_cpu_s,
                            "spans_per_total_cpu_s": r.spans_per_total_cpu_s,
                        }
                        for r in run.ingestion
                    ],
                    "crashes": [
                        {**asdict(c), "lost": c.lost, "bound": c.bound} for c in run.crashes
                    ],
                    "skipped": run.skipped,
                    "checks": [{"check": t, "verdict": v} for t, v in checks(run)],
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
