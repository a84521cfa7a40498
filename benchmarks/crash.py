"""What ``kill -9`` in the middle of a burst costs the spend log.

A local upstream answers every chat completion at once and counts what it served; the gateway
takes a burst at ``--concurrency`` connections and is killed with SIGKILL mid-burst. Then the
store is counted twice: as it was at the kill (what the spend writer alone had written, the
design before the journal: its last second was lost), and after a restart on the same store and
journal (the journal replayed). Every answered request's id is checked against the spend log:
a lost one is reported with how long before the kill it was answered (the target: none older
than 10 ms).

    python -m benchmarks.crash                     # SQLite, 3 s of burst, 16 connections
    python -m benchmarks.crash --database postgresql://postgres@127.0.0.1:5432/test
    python -m benchmarks.crash --runs 3 --markdown
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml
from aiohttp import ClientSession, web
from sqlalchemy import Engine, create_engine, text

from benchmarks._procs import free_port

COMPLETION = {
    "id": "chatcmpl-crash",
    "object": "chat.completion",
    "created": 1_700_000_000,
    "model": "crash",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "ok", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
}


@dataclass
class Run:
    served: int  # by the upstream
    answered: int  # to the clients, 200s
    at_kill: int  # rows in the store when the gateway died
    after: int  # rows after the restart (journal replayed)
    lost: int  # answered requests with no row
    oldest_lost_ms: float  # how long before the kill the oldest lost answer came
    duplicates: int


async def _upstream(port: int, served: list[float]) -> web.AppRunner:
    async def chat(request: web.Request) -> web.Response:
        await request.read()
        served.append(time.monotonic())
        return web.json_response(COMPLETION)

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


def _start(folder: Path, config: Mapping[str, object]) -> tuple[subprocess.Popen[bytes], int]:
    path = folder / "stackyard.yaml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "stackyard", "serve", "--config", str(path), "--port", str(port)],
        cwd=folder,
        stdout=(folder / "gateway.log").open("ab"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready = f"http://127.0.0.1:{port}/ready"
        with contextlib.suppress(OSError), urllib.request.urlopen(ready, timeout=1) as answer:
            if answer.status == 200:
                return process, port
        time.sleep(0.05)
    process.kill()
    raise RuntimeError((folder / "gateway.log").read_text())


def _rows(url: str) -> tuple[int, set[str], int]:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as connection:
        ids = {r[0] for r in connection.execute(text("select request_id from spend_log"))}
        (count,) = connection.execute(text("select count(*) from spend_log")).one()
        (entries,) = connection.execute(
            text("select count(distinct entry_id) from spend_log")
        ).one()
    engine.dispose()
    return int(count), ids, int(count) - int(entries)


def _admin(server: str) -> Engine:
    return create_engine(
        server.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )


def _fresh_database(server: str) -> str:
    """A new, empty database on the PostgreSQL server of ``server`` (dropped after the run)."""
    name = f"stackyard_crash_{os.urandom(5).hex()}"
    engine = _admin(server)
    with engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return server.rsplit("/", 1)[0] + "/" + name


def _drop_database(url: str) -> None:
    server, name = url.rsplit("/", 1)
    engine = _admin(server + "/postgres")
    with engine.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


async def one_run(database: str | None, seconds: float, concurrency: int) -> Run:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        url = _fresh_database(database) if database else f"sqlite:///{folder / 'crash.db'}"
        served: list[float] = []
        upstream_port = free_port()
        runner = await _upstream(upstream_port, served)
        config = {
            "models": [
                {
                    "name": "m",
                    "provider": "openai-compatible",
                    "api_base": f"http://127.0.0.1:{upstream_port}/v1",
                }
            ],
            "database_url": url,
            "auth": {"spend_journal": str(folder / "journal")},
        }
        process, port = _start(folder, config)
        answered: dict[str, float] = {}
        stop = asyncio.Event()

        async def client(session: ClientSession) -> None:
            while not stop.is_set():
                try:
                    async with session.post(
                        f"http://127.0.0.1:{port}/v1/chat/completions",
                        json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
                    ) as answer:
                        await answer.read()
                        if answer.status == 200:
                            answered[answer.headers["x-request-id"]] = time.monotonic()
                except Exception:
                    return  # the gateway died under it

        async with ClientSession() as session:
            clients = [asyncio.ensure_future(client(session)) for _ in range(concurrency)]
            await asyncio.sleep(seconds)
            killed_at = time.monotonic()
            os.kill(process.pid, signal.SIGKILL)  # mid-burst, with requests in flight
            stop.set()
            await asyncio.gather(*clients, return_exceptions=True)
        process.wait()
        at_kill, _, _ = _rows(url)
        again, _ = _start(folder, config)  # replays the journal at start
        again.terminate()
        again.wait(30)
        after, stored, duplicates = _rows(url)
        await runner.cleanup()
        if database:
            _drop_database(url)
        lost = [t for request_id, t in answered.items() if request_id not in stored]
        oldest = max((killed_at - t for t in lost), default=0.0)
        return Run(
            served=len(served),
            answered=len(answered),
            at_kill=at_kill,
            after=after,
            lost=len(lost),
            oldest_lost_ms=round(oldest * 1000, 2),
            duplicates=duplicates,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", help="a PostgreSQL URL (default: SQLite in a scratch dir)")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    runs = [
        asyncio.run(one_run(args.database, args.seconds, args.concurrency))
        for _ in range(args.runs)
    ]
    if args.markdown:
        print(
            "| run | upstream served | answered | rows at the kill (writer alone) "
            "| rows after restart (journal) | answered, no row | oldest lost (ms before kill) "
            "| twice |"
        )
        print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for number, run in enumerate(runs, 1):
        if args.markdown:
            print(
                f"| {number} | {run.served:,} | {run.answered:,} | {run.at_kill:,} "
                f"({run.served - run.at_kill:,} short) | {run.after:,} "
                f"({run.served - run.after:,} short) | {run.lost} | {run.oldest_lost_ms} "
                f"| {run.duplicates} |"
            )
        else:
            print(run)
    worst = max(r.oldest_lost_ms for r in runs)
    verdict = "PASS" if worst <= 10 else "FAIL"
    print(f"{verdict}: the oldest answered request without a row was {worst} ms before the kill")


if __name__ == "__main__":
    main()
