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
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy import text

from benchmarks import _wrk
from benchmarks._ingestion import (
    Ingestion,
    backend_cpu,
    cpu_spent,
    database_name,
    postgres_database,
)
from benchmarks._phoenix import measure_phoenix, otlp_batches, phoenix_venv
from benchmarks._procs import (
    Server,
    ensure_debian_package,
    free_port,
    post_json,
    stop_all,
)
from benchmarks._trace_data import make_traces, span_total
from benchmarks.gateway import start_nginx
from stackyard.observability.redact import Redactor
from stackyard.observability.writer import Finished, TraceWriter
from stackyard.store.db import Database

HERE = Path(__file__).resolve().parent
BACKENDS = ("sqlite", "postgresql")
PARTS = ("stackyard", "phoenix", "crash")
FLUSH_INTERVAL = 0.5  # observability.flush_interval's default

# ---------------------------------------------------------------------------------------------
# Results


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
