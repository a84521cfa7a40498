"""Prometheus metrics in memory, exposed in the text format at ``GET /metrics``.

A tiny registry of our own (counters, gauges, histograms with fixed label names): the request
path only adds to a dict. Label sets are bounded: model, deployment, team, status and error
codes, never per-request values.
"""

from __future__ import annotations

import bisect
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    pairs = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        pairs.append(extra)
    return "{" + ",".join(pairs) + "}" if pairs else ""


def _number(value: float) -> str:
    if value == math.inf:
        return "+Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class Metric(ABC):
    kind = ""

    def __init__(self, name: str, help: str, labels: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help
        self.label_names = tuple(labels)

    @abstractmethod
    def samples(self) -> Iterable[str]:
        """The metric's lines, one per label set, in the text exposition format."""

    def render(self) -> str:
        head = f"# HELP {self.name} {self.help}\n# TYPE {self.name} {self.kind}\n"
        return head + "".join(line + "\n" for line in self.samples())


class Counter(Metric):
    kind = "counter"

    def __init__(self, name: str, help: str, labels: Sequence[str] = ()) -> None:
        super().__init__(name, help, labels)
        self.values: dict[tuple[str, ...], float] = {} if labels else {(): 0.0}

    def inc(self, *labels: str, by: float = 1.0) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + by

    def get(self, *labels: str) -> float:
        return self.values.get(labels, 0.0)

    def samples(self) -> Iterable[str]:
        for labels, value in sorted(self.values.items()):
            yield f"{self.name}{_labels(self.label_names, labels)} {_number(value)}"


class Gauge(Metric):
    """A value read when scraped."""

    kind = "gauge"

    def __init__(self, name: str, help: str, read: Callable[[], float]) -> None:
        super().__init__(name, help)
        self.read = read

    def samples(self) -> Iterable[str]:
        yield f"{self.name} {_number(self.read())}"


class Histogram(Metric):
    kind = "histogram"

    def __init__(
        self,
        name: str,
        help: str,
        labels: Sequence[str] = (),
        buckets: Sequence[float] = LATENCY_BUCKETS,
    ) -> None:
        super().__init__(name, help, labels)
        self.bounds = tuple(buckets)
        #: labels -> [count per bucket (not cumulative)..., +Inf count], sum
        self.values: dict[tuple[str, ...], tuple[list[int], list[float]]] = {}

    def observe(self, value: float, *labels: str) -> None:
        entry = self.values.get(labels)
        if entry is None:
            entry = self.values[labels] = ([0] * (len(self.bounds) + 1), [0.0])
        entry[0][bisect.bisect_left(self.bounds, value)] += 1
        entry[1][0] += value

    def count(self, *labels: str) -> int:
        entry = self.values.get(labels)
        return sum(entry[0]) if entry else 0

    def samples(self) -> Iterable[str]:
        names = self.label_names
        for labels, (counts, total) in sorted(self.values.items()):
            running = 0
            for bound, count in zip((*self.bounds, math.inf), counts, strict=True):
                running += count
                le = f'le="{_number(bound)}"'
                yield f"{self.name}_bucket{_labels(names, labels, le)} {running}"
            yield f"{self.name}_sum{_labels(names, labels)} {_number(total[0])}"
            yield f"{self.name}_count{_labels(names, labels)} {running}"


class Registry:
    def __init__(self) -> None:
        self.metrics: list[Metric] = []

    def add(self, metric: Metric) -> Metric:
        self.metrics.append(metric)
        return metric

    def render(self) -> str:
        return "".join(m.render() for m in self.metrics)


class GatewayMetrics:
    """The gateway's metrics, each with a fixed, bounded set of labels."""

    def __init__(self) -> None:
        self.registry = r = Registry()
        route = ("endpoint", "model", "deployment", "team", "status")
        self.requests = Counter("stackyard_requests_total", "Requests answered.", route)
        self.errors = Counter(
            "stackyard_errors_total", "Requests answered with an error, by code.", ("model", "code")
        )
        self.latency = Histogram(
            "stackyard_request_duration_seconds",
            "Time from request to the last byte of the response.",
            ("endpoint", "model", "team"),
        )
        self.ttft = Histogram(
            "stackyard_time_to_first_token_seconds",
            "Time from request to the first chunk of a stream.",
            ("model", "deployment"),
        )
        self.tokens = Counter(
            "stackyard_tokens_total", "Tokens, input and output.", ("model", "team", "direction")
        )
        self.cost = Counter("stackyard_cost_usd_total", "Cost in US dollars.", ("model", "team"))
        self.cache_hits = Counter(
            "stackyard_cache_hits_total", "Requests answered from the cache.", ("model", "team")
        )
        self.retries = Counter(
            "stackyard_upstream_retries_total",
            "Upstream attempts after a request's first.",
            ("model",),
        )
        self.fallbacks = Counter(
            "stackyard_fallbacks_total",
            "Requests answered by a model down the fallback chain.",
            ("model", "fallback"),
        )
        self.rejections = Counter(
            "stackyard_rate_limit_rejections_total",
            "Requests refused by a rate limit, budget or quota.",
            ("team", "code"),
        )
        self.traces_dropped = Counter(
            "stackyard_traces_dropped_total", "Traces not stored because the queue was full."
        )
        self.traces_written = Counter("stackyard_traces_written_total", "Traces stored.")
        self.spans_exported = Counter(
            "stackyard_otlp_spans_exported_total", "Spans delivered to the OTLP collector."
        )
        self.spans_export_failed = Counter(
            "stackyard_otlp_spans_failed_total", "Spans the OTLP collector did not take."
        )
        for metric in (
            self.requests,
            self.errors,
            self.latency,
            self.ttft,
            self.tokens,
            self.cost,
            self.cache_hits,
            self.retries,
            self.fallbacks,
            self.rejections,
            self.traces_dropped,
            self.traces_written,
            self.spans_exported,
            self.spans_export_failed,
        ):
            r.add(metric)

    def gauge(self, name: str, help: str, read: Callable[[], float]) -> None:
        self.registry.add(Gauge(name, help, read))

    def render(self) -> str:
        return self.registry.render()
