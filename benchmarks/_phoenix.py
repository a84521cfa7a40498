"""Arize Phoenix as the trace benchmark's anchor: installed in its own venv, started on SQLite
or PostgreSQL, and fed the same spans as Stackyard over OTLP/HTTP (protobuf) by a separate
process, until its database holds every span."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import IO

from sqlalchemy import create_engine, text

from benchmarks._ingestion import Ingestion, backend_cpu, cpu_spent, database_name, tree_cpu
from benchmarks._procs import Server, anchor_venv, free_port
from stackyard.observability.otlp import payload
from stackyard.observability.writer import Finished

PHOENIX_VERSION = "20.26.1"
OTLP_BATCH = 512  # traces per OTLP request, as stackyard.observability.otlp batches them


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
