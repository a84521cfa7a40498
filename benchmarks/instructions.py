"""Instructions per request, counted by callgrind: the gateway's own cost in a figure this
machine's noise does not move, to compare two versions of the code (throughput on this
2-core machine moves by 10-20% between runs of the same code, so a 5% bar cannot be judged
from it).

Each target of ``benchmarks.gateway`` (``stackyard``: bare; ``governed``: keys, limits and a
budget in Redis, the spend log in SQLite) runs under ``valgrind --tool=callgrind`` with
instrumentation off; after a warm-up, it is switched on for a fixed number of requests, one at
a time, against the same nginx upstream, and the instructions of the whole server process
(every thread: the event loop, the writers) are divided by that number, less what the server
does idle (timers, pollers) for as long as the burst took, measured just before it.
``--against REV`` measures a git revision too, from a temporary worktree through
``PYTHONPATH``, in the same run, alternating, and prints the ratios.

    python -m benchmarks.instructions --against 59584ec --rounds 2
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from benchmarks import gateway
from benchmarks._gateway_anchors import Target
from benchmarks._procs import ensure_debian_package, post_json, stop_all

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ("stackyard", "governed")
#: Seconds of idle counted, and of settling after a burst (the spend log's batch is written).
IDLE = 4.0
SETTLE = 1.0
BODY = b'{"model": "bench", "messages": [{"role": "user", "content": "Hello"}]}'


@contextlib.contextmanager
def worktree(revision: str) -> Iterator[Path]:
    """``revision``'s tree, checked out beside the repository for the run."""
    with tempfile.TemporaryDirectory(prefix="bench-rev-") as tmp:
        path = Path(tmp) / "tree"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), revision],
            check=True,
            capture_output=True,
        )
        try:
            yield path
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)],
                check=False,
                capture_output=True,
            )


def _total(out_file: Path) -> int:
    """The instructions a callgrind output file counts (its ``totals:`` line; a dump asked
    for while instrumentation was toggled has a ``summary:`` of 0)."""
    text = out_file.read_text(errors="replace")
    found = re.search(r"^totals:\s+(\d+)", text, re.M)
    if found is None:
        raise RuntimeError(f"no total in {out_file}")
    return int(found.group(1))


def count(
    name: str, upstream: str, workdir: Path, requests: int, warmup: int, source: Path | None
) -> float:
    """Instructions per request of target ``name`` (code from ``source``/src, or this tree)."""
    out = workdir / f"callgrind.{name}.out"
    gateway.LAUNCHER = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={out}",
    ]
    gateway.READY_SECONDS = 600.0
    previous = os.environ.get("PYTHONPATH")
    if source is not None:
        os.environ["PYTHONPATH"] = str(source / "src")
    try:
        target = gateway.STARTERS[name](workdir, upstream)
    finally:
        gateway.LAUNCHER = []
        if previous is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = previous
    server = target.server
    assert server is not None
    pid = str(server.process.pid)

    def window(work: Callable[[], None]) -> tuple[int, float]:
        """The instructions and the seconds of ``work``, counted alone."""
        before = set(workdir.glob(f"callgrind.{name}.out.*"))
        started = time.monotonic()
        subprocess.run(["callgrind_control", "--instr=on", pid], check=True, capture_output=True)
        work()
        subprocess.run(["callgrind_control", "--instr=off", pid], check=True, capture_output=True)
        seconds = time.monotonic() - started
        subprocess.run(["callgrind_control", "--dump", pid], check=True, capture_output=True)
        [dump] = set(workdir.glob(f"callgrind.{name}.out.*")) - before
        return _total(dump), seconds

    def burst() -> None:
        for _ in range(requests):
            _ask(target)
        time.sleep(SETTLE)  # the spend log's batch of these requests, written meanwhile

    try:
        for _ in range(warmup):
            _ask(target)
        # What the server does when no request comes (timers, pollers), per second: taken off
        # the burst's count, whose length in seconds depends on how busy the machine is.
        idle, idle_seconds = window(lambda: time.sleep(IDLE))
        busy, busy_seconds = window(burst)
    finally:
        server.stop()
    return (busy - idle / idle_seconds * busy_seconds) / requests


def _ask(target: Target) -> None:
    status, body = post_json(target.url, BODY, target.headers)
    if status != 200:
        raise RuntimeError(f"{target.name} answered {status}: {body[:300]!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", help="a git revision to measure beside this tree")
    parser.add_argument("--only", default=",".join(TARGETS), help="comma-separated targets")
    parser.add_argument("--requests", type=int, default=300, help="requests counted per target")
    parser.add_argument("--warmup", type=int, default=100, help="requests before counting")
    parser.add_argument("--rounds", type=int, default=1, help="measurements per target and code")
    args = parser.parse_args(argv)
    chosen = [t.strip() for t in args.only.split(",") if t.strip()]
    unknown = set(chosen) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets: {', '.join(sorted(unknown))}; known: {', '.join(TARGETS)}")
    ensure_debian_package("valgrind", "valgrind")
    results: dict[tuple[str, str], list[float]] = {}
    with contextlib.ExitStack() as stack:
        codes: dict[str, Path | None] = {"this tree": None}
        if args.against:
            codes[args.against] = stack.enter_context(worktree(args.against))
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-ir-")))
        (workdir / "nginx").mkdir()
        nginx, port = gateway.start_nginx(workdir / "nginx")
        stack.callback(stop_all)
        upstream = f"http://127.0.0.1:{port}/v1"
        for round_ in range(args.rounds):
            for name in chosen:
                for number, (code, source) in enumerate(codes.items()):
                    # Each code its own folder: its own database, migrated by its own code.
                    own = workdir / f"{name}-{number}-{round_}"
                    own.mkdir()
                    figure = count(name, upstream, own, args.requests, args.warmup, source)
                    results.setdefault((name, code), []).append(figure)
                    print(
                        f"round {round_ + 1}: {name} ({code}): {figure:,.0f} instructions "
                        "per request",
                        flush=True,
                    )
        del nginx
    print()
    print(
        f"{time.strftime('%Y-%m-%d')}, callgrind, {args.requests} requests after "
        f"{args.warmup} of warm-up, 1 connection, {args.rounds} round(s); command: "
        f"`python -m benchmarks.instructions {' '.join(sys.argv[1:] if argv is None else argv)}`"
    )
    print()
    print("| target | code | instructions per request (median) |")
    print("| --- | --- | ---: |")
    for (name, code), figures in results.items():
        print(f"| {name} | {code} | {statistics.median(figures):,.0f} |")
    if args.against:
        print()
        for name in chosen:
            ours = statistics.median(results[(name, "this tree")])
            theirs = statistics.median(results[(name, args.against)])
            print(f"{name}: this tree / {args.against} = {ours / theirs:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
