"""The Prometheus registry: counters, gauges and histograms in the text exposition format."""

from __future__ import annotations

from stackyard.observability.metrics import Counter, GatewayMetrics, Gauge, Histogram, Registry


def test_counter_renders_help_type_and_escaped_labels() -> None:
    counter = Counter("requests_total", "Requests.", ("model",))
    counter.inc('a"b\\c\nd')
    counter.inc('a"b\\c\nd', by=2)
    assert counter.render() == (
        "# HELP requests_total Requests.\n"
        "# TYPE requests_total counter\n"
        'requests_total{model="a\\"b\\\\c\\nd"} 3\n'
    )


def test_a_counter_without_labels_starts_at_zero() -> None:
    assert Counter("dropped_total", "Dropped.").render().endswith("dropped_total 0\n")


def test_histogram_buckets_are_cumulative_with_sum_and_count() -> None:
    histogram = Histogram("latency_seconds", "Latency.", ("model",), buckets=(0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 3.0):
        histogram.observe(value, "m")
    lines = histogram.render().splitlines()[2:]
    assert lines == [
        'latency_seconds_bucket{model="m",le="0.1"} 2',
        'latency_seconds_bucket{model="m",le="1"} 3',
        'latency_seconds_bucket{model="m",le="+Inf"} 4',
        'latency_seconds_sum{model="m"} 3.65',
        'latency_seconds_count{model="m"} 4',
    ]
    assert histogram.count("m") == 4


def test_gauge_is_read_when_scraped() -> None:
    depth = [3]
    registry = Registry()
    registry.add(Gauge("queue_depth", "Depth.", lambda: depth[0]))
    depth[0] = 7
    assert "queue_depth 7\n" in registry.render()


def test_every_gateway_metric_is_exposed_with_help_and_type() -> None:
    metrics = GatewayMetrics()
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
