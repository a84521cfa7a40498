"""The Prometheus registry: counters, gauges and histograms in the text exposition format, in one
process and summed over several (prometheus-client's multiprocess mode, as ``--workers N``)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackyard.observability import metrics_files
from stackyard.observability.metrics import (
    Counter,
    GatewayMetrics,
    Gauge,
    Histogram,
    Registry,
    directory,
    use_directory,
)


def test_counter_renders_help_type_and_escaped_labels() -> None:
    counter = Counter("requests_total", "Requests.", ("model",))
    counter.inc('a"b\\c\nd')
    counter.inc('a"b\\c\nd', by=2)
    assert counter.render() == (
        "# HELP requests_total Requests.\n"
        "# TYPE requests_total counter\n"
        'requests_total{model="a\\"b\\\\c\\nd"} 3\n'
    )
    assert counter.get('a"b\\c\nd') == 3
    assert counter.get("other") == 0


def test_a_counter_without_labels_starts_at_zero() -> None:
    assert Counter("dropped_total", "Dropped.").render().endswith("dropped_total 0\n")


def test_a_counter_name_ends_in_total() -> None:
    with pytest.raises(ValueError, match="_total"):
        Counter("dropped", "Dropped.")


def test_labels_keep_their_declared_order() -> None:
    counter = Counter("calls_total", "Calls.", ("zone", "alpha"))
    counter.inc("z", "a")
    assert 'calls_total{zone="z",alpha="a"} 1\n' in counter.render()


def test_histogram_buckets_are_cumulative_with_sum_and_count() -> None:
    histogram = Histogram("latency_seconds", "Latency.", ("model",), buckets=(0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 3.0):
        histogram.observe(value, "m")
    lines = sorted(histogram.render().splitlines()[2:])
    assert lines == [
        'latency_seconds_bucket{model="m",le="+Inf"} 4',
        'latency_seconds_bucket{model="m",le="0.1"} 2',
        'latency_seconds_bucket{model="m",le="1.0"} 3',
        'latency_seconds_count{model="m"} 4',
        'latency_seconds_sum{model="m"} 3.65',
    ]
    assert histogram.count("m") == 4
    assert histogram.count("other") == 0


def test_gauge_is_read_when_scraped() -> None:
    depth = [3]
    registry = Registry()
    registry.add(Gauge("queue_depth", "Depth.", lambda: depth[0]))
    depth[0] = 7
    assert "queue_depth 7\n" in registry.render()


def test_a_gauge_mode_is_one_prometheus_client_knows() -> None:
    with pytest.raises(ValueError, match="mode"):
        Gauge("queue_depth", "Depth.", lambda: 0, mode="average")


def test_every_gateway_metric_is_exposed_with_help_and_type() -> None:
    metrics = GatewayMetrics()
    assert not metrics.multiprocess
    text = metrics.render()
    for name in (
        "stackyard_requests_total",
        "stackyard_errors_total",
        "stackyard_request_duration_seconds",
        "stackyard_time_to_first_token_seconds",
        "stackyard_tokens_total",
        "stackyard_cost_usd_total",
        "stackyard_cache_hits_total",
        "stackyard_upstream_retries_total",
        "stackyard_fallbacks_total",
        "stackyard_rate_limit_rejections_total",
        "stackyard_traces_dropped_total",
    ):
        assert f"# TYPE {name} " in text, name
    assert "_created" not in text


# Several processes, as uvicorn's workers: each records, any one's scrape sums them all.

WORKER = textwrap.dedent(
    """
    import sys
    from stackyard.observability.metrics import GatewayMetrics

    requests, depth = int(sys.argv[1]), int(sys.argv[2])
    metrics = GatewayMetrics()
    assert metrics.multiprocess
    metrics.gauge("stackyard_trace_queue_depth", "Traces waiting.", lambda: depth)
    metrics.gauge("busiest", "The most any worker holds.", lambda: depth, mode="livemax")
    for _ in range(requests):
        metrics.requests.inc("chat", "m", "m#0", "", "200")
        metrics.latency.observe(0.2, "chat", "m", "")
    metrics.tokens.inc("m", "", "input", by=2.5)
    metrics.registry.refresh()
    print("ready", flush=True)
    if sys.stdin.readline().strip() == "close":
        metrics.close()
    """
)


class Worker:
    def __init__(self, path: Path, requests: int, depth: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", WORKER, str(requests), str(depth)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(path)},
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "ready"

    def stop(self, how: str) -> None:
        if how == "kill":
            self.process.kill()
        else:
            assert self.process.stdin is not None
            self.process.stdin.write("close\n")
            self.process.stdin.flush()
        self.process.wait(10)
        self.close()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def files(tmp_path: Path) -> Iterator[Path]:
    """This process in multiprocess mode, as a worker answering a scrape; plain again after."""
    use_directory(str(tmp_path))
    try:
        yield tmp_path
    finally:
        use_directory(None)


def samples(text: str) -> dict[str, float]:
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            found[name] = float(value)
    return found


def test_a_scrape_sums_every_worker_and_gauges_combine_by_mode(files: Path) -> None:
    assert directory() == str(files)
    scraper = GatewayMetrics()  # this process answers the scrape, and recorded nothing
    scraper.gauge("stackyard_trace_queue_depth", "Traces waiting.", lambda: 1)
    scraper.gauge("busiest", "The most any worker holds.", lambda: 1, mode="livemax")
    one, two = Worker(files, 3, depth=5), Worker(files, 4, depth=7)
    try:
        found = samples(scraper.render())
        requests = (
            'stackyard_requests_total{endpoint="chat",model="m",deployment="m#0",team="",'
            'status="200"}'
        )
        assert found[requests] == 7
        assert (
            found['stackyard_request_duration_seconds_count{endpoint="chat",model="m",team=""}']
            == 7
        )
        assert (
            found[
                'stackyard_request_duration_seconds_bucket{endpoint="chat",model="m",team="",le="0.25"}'
            ]
            == 7
        )
        assert found['stackyard_tokens_total{model="m",team="",direction="input"}'] == 5
        assert found["stackyard_traces_dropped_total"] == 0
        assert found["stackyard_trace_queue_depth"] == 13  # livesum: 1 + 5 + 7
        assert found["busiest"] == 7  # livemax
        # A worker that stops leaves the live gauges; its counts stay, and so does one that
        # was killed (its gauges go at the next scrape).
        one.stop("close")
        two.stop("kill")
        found = samples(scraper.render())
        assert found[requests] == 7
        assert found["stackyard_trace_queue_depth"] == 1
        assert found["busiest"] == 1
    finally:
        one.close()
        two.close()


def test_one_worker_and_several_write_the_same_text(files: Path) -> None:
    Worker(files, 2, depth=0).stop("close")
    several = GatewayMetrics().render()
    use_directory(None)
    single = GatewayMetrics()
    for _ in range(2):
        single.requests.inc("chat", "m", "m#0", "", "200")
        single.latency.observe(0.2, "chat", "m", "")
    single.tokens.inc("m", "", "input", by=2.5)
    assert samples(several) == samples(single.render())
    heads = {line for line in several.splitlines() if line.startswith("#")}
    assert heads == {line for line in single.render().splitlines() if line.startswith("#")}


def test_use_directory_switches_the_value_class_both_ways(tmp_path: Path) -> None:
    assert directory() is None
    use_directory(str(tmp_path))
    try:
        assert directory() == str(tmp_path)
        Counter("switched_total", "Switched.").inc()
        assert list(tmp_path.glob("counter_*.db"))
    finally:
        use_directory(None)
    assert directory() is None
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ


# The directory of a server start.


def test_each_start_has_a_fresh_directory_and_stale_ones_go(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / metrics_files.FOLDER / f"{dead.pid}-old"
    stale.mkdir(parents=True)
    (stale / "counter_1.db").write_bytes(b"old counts")
    running = tmp_path / metrics_files.FOLDER / f"{os.getppid()}-other-server"
    running.mkdir()
    first = metrics_files.fresh(tmp_path)
    assert not stale.exists()
    assert running.exists()  # a server still running keeps its own
    second = metrics_files.fresh(tmp_path)
    assert first != second
    assert first.parent == tmp_path / metrics_files.FOLDER
    assert not list(first.iterdir())
    assert not list(second.iterdir())
    metrics_files.remove(first)
    assert not first.exists()
    assert second.exists()


def test_an_unwritable_base_falls_back_to_the_temporary_directory(tmp_path: Path) -> None:
    base = tmp_path / "file"
    base.write_text("not a directory")
    path = metrics_files.fresh(base)
    try:
        assert path.is_dir()
        assert not path.is_relative_to(base)
    finally:
        metrics_files.remove(path)
