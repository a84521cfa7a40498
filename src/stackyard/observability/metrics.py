"""Prometheus metrics, exposed in the text format at ``GET /metrics``, for the whole server.

Built on ``prometheus-client``. Label sets are bounded: model, deployment, team, status and
error codes, never per-request values. The request path looks up the label set's child in a
dict and adds to it.

With one worker the values live in the process (a float under a lock), and a scrape reads them.
With several (``stackyard serve --workers N``), ``serve`` gives the workers a fresh
``PROMETHEUS_MULTIPROC_DIR`` (:mod:`stackyard.observability.metrics_files`) and every value is
also written to the worker's own mmap files there, so whichever worker answers a scrape reads
every worker's files and reports the whole server:

* counters and histograms are summed over the workers, those that have exited included (a
  worker restarted by uvicorn does not take its requests with it);
* a gauge combines as its ``mode`` says (``livesum``: the sum over the workers alive now). A
  gauge computed by a callback is written by each worker once a second and by the worker that
  answers, just before it answers, so another worker's part may be a second old. A worker's
  live gauges go when it stops (:meth:`GatewayMetrics.close`) or, if it died, at the next scrape.

An increment costs about twice as much with the mmap files as without (a few microseconds, see
docs/observability.md), which is why one worker keeps the plain registry.
"""

from __future__ import annotations

import asyncio
import glob
import math
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, cast

import prometheus_client
from prometheus_client import values
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import Metric as Family
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from stackyard.observability.metrics_files import alive

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
#: The variable prometheus-client reads: where each process writes its mmap files.
DIRECTORY_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: How often a worker writes its callback gauges to its files, in seconds.
GAUGE_REFRESH = 1.0
#: How gauges combine across workers (prometheus-client's ``multiprocess_mode``).
GAUGE_MODES = frozenset(prometheus_client.Gauge._MULTIPROC_MODES)

# ``*_created`` series (a timestamp per label set) are not what the gateway ever exposed, and
# the multiprocess collector has none: off, for the same text in both modes.
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]


def use_directory(path: str | None) -> None:
    """Values in mmap files under ``path`` from now on (``None``: in the process).

    prometheus-client picks how values are kept when it is imported, from the environment;
    ``stackyard serve`` sets the directory after that import (its workers, spawned, import it
    afresh), so the choice is made again here. Metrics whose children exist keep theirs.
    """
    os.environ.pop("prometheus_multiproc_dir", None)  # the deprecated spelling
    if path is None:
        os.environ.pop(DIRECTORY_ENV, None)
    else:
        os.environ[DIRECTORY_ENV] = path
    if bool(getattr(values.ValueClass, "_multiprocess", False)) != (path is not None):
        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


def directory() -> str | None:
    """The mmap files' directory when values are kept there, else ``None``."""
    if not getattr(values.ValueClass, "_multiprocess", False):
        return None
    return os.environ.get(DIRECTORY_ENV) or None


def reap_dead(path: str) -> None:
    """Drop the live gauges of workers that died without :meth:`GatewayMetrics.close`."""
    pids = set()
    for name in glob.glob(os.path.join(path, "gauge_live*_*.db")):
        match = re.search(r"_(\d+)\.db$", name)
        if match:
            pids.add(int(match.group(1)))
    for pid in pids - {os.getpid()}:
        if not alive(pid):
            mark_process_dead(pid, path)  # type: ignore[no-untyped-call]


class Metric(ABC):
    """One metric with fixed label names, wrapping prometheus-client's."""

    kind = ""
    metric: prometheus_client.metrics.MetricWrapperBase

    def __init__(self, name: str, help: str, labels: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help
        self.label_names = tuple(labels)

    @property
    @abstractmethod
    def family(self) -> str:
        """The metric's name as prometheus-client files it (a counter's, without ``_total``)."""

    def collect(self) -> Iterable[Family]:
        """This process's values."""
        return self.metric.collect()

    def refresh(self) -> None:  # noqa: B027 (most metrics have nothing to do)
        """Write a value computed on demand to the mmap files (a callback gauge's); the others
        write theirs as they change."""

    def render(self) -> str:
        """This process's values in the text exposition format."""
        return exposition(self.collect(), {self.family: self.label_names})


class Counter(Metric):
    kind = "counter"
    metric: prometheus_client.Counter

    def __init__(self, name: str, help: str, labels: Sequence[str] = ()) -> None:
        if not name.endswith("_total"):
            raise ValueError(f"a counter's name ends in _total: {name}")
        super().__init__(name, help, labels)
        self.metric = prometheus_client.Counter(name, help, self.label_names, registry=None)
        #: labels -> prometheus-client's child: one dict lookup on the request path.
        self.children: dict[tuple[str, ...], prometheus_client.Counter] = (
            {} if labels else {(): self.metric}
        )

    @property
    def family(self) -> str:
        return self.name.removesuffix("_total")

    def inc(self, *labels: str, by: float = 1.0) -> None:
        child = self.children.get(labels)
        if child is None:
            child = self.children[labels] = self.metric.labels(*labels)
        child.inc(by)

    def get(self, *labels: str) -> float:
        """This process's count for the labels (the tests' view)."""
        return _sample(self.collect(), self.name, self.label_names, labels) or 0.0


class Gauge(Metric):
    """A value read when scraped, from a callback. ``mode`` says how the workers' values
    combine (prometheus-client's ``multiprocess_mode``: ``livesum``, ``livemax``, ...)."""

    kind = "gauge"
    metric: prometheus_client.Gauge

    def __init__(
        self, name: str, help: str, read: Callable[[], float], mode: str = "livesum"
    ) -> None:
        if mode not in GAUGE_MODES:
            raise ValueError(f"a gauge's mode is one of {sorted(GAUGE_MODES)}, not {mode!r}")
        super().__init__(name, help)
        self.read = read
        self.mode = mode
        self.metric = prometheus_client.Gauge(
            name,
            help,
            registry=None,
            multiprocess_mode=cast(Any, mode),  # checked above
        )
        self.files = directory() is not None
        if not self.files:
            self.metric.set_function(read)

    @property
    def family(self) -> str:
        return self.name

    def refresh(self) -> None:
        if self.files:
            self.metric.set(float(self.read()))


class Histogram(Metric):
    kind = "histogram"
    metric: prometheus_client.Histogram

    def __init__(
        self,
        name: str,
        help: str,
        labels: Sequence[str] = (),
        buckets: Sequence[float] = LATENCY_BUCKETS,
    ) -> None:
        super().__init__(name, help, labels)
        self.bounds = tuple(buckets)
        self.metric = prometheus_client.Histogram(
            name, help, self.label_names, registry=None, buckets=self.bounds
        )
        self.children: dict[tuple[str, ...], prometheus_client.Histogram] = (
            {} if labels else {(): self.metric}
        )

    @property
    def family(self) -> str:
        return self.name

    def observe(self, value: float, *labels: str) -> None:
        child = self.children.get(labels)
        if child is None:
            child = self.children[labels] = self.metric.labels(*labels)
        child.observe(value)

    def count(self, *labels: str) -> int:
        """This process's observations for the labels (the tests' view)."""
        found = _sample(self.collect(), f"{self.name}_count", self.label_names, labels)
        return int(found or 0)


def _sample(
    families: Iterable[Family], name: str, names: Sequence[str], labels: Sequence[str]
) -> float | None:
    wanted = dict(zip(names, labels, strict=True))
    for family in families:
        for sample in family.samples:
            if sample.name == name and sample.labels == wanted:
                return float(sample.value)
    return None


class Registry:
    """The metrics ``/metrics`` shows: this process's, or every worker's from the mmap files."""

    def __init__(self) -> None:
        self.metrics: list[Metric] = []

    def add(self, metric: Metric) -> Metric:
        self.metrics.append(metric)
        return metric

    def collect(self) -> Iterator[Family]:
        path = directory()
        if path is None:
            for metric in self.metrics:
                yield from metric.collect()
            return
        self.refresh()
        reap_dead(path)
        seen = set()
        collector = MultiProcessCollector(None, path)  # type: ignore[no-untyped-call]
        for family in collector.collect():  # type: ignore[no-untyped-call]
            seen.add(family.name)
            yield family
        for metric in self.metrics:  # no worker has a sample yet: its HELP and TYPE, as alone
            if metric.family not in seen:
                yield Family(metric.family, metric.help, metric.kind)

    def refresh(self) -> None:
        """Write this process's callback gauges to its mmap files."""
        for metric in self.metrics:
            metric.refresh()

    def render(self) -> str:
        return exposition(self.collect(), {m.family: m.label_names for m in self.metrics})


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if value == math.inf:
        return "+Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


def exposition(families: Iterable[Family], order: dict[str, Sequence[str]]) -> str:
    """The text exposition format (0.0.4), as the gateway always wrote it: labels in the order
    the metric declares them, ``le`` last (prometheus-client's writer sorts them, and some
    readers of ``/metrics`` match the text), whole numbers without ``.0``. ``order``: a
    family's label names, by its name."""
    out = []
    for family in families:
        name = family.name + "_total" if family.type == "counter" else family.name
        rank = {label: i for i, label in enumerate((*order.get(family.name, ()), "le"))}
        help = family.documentation.replace("\\", "\\\\").replace("\n", "\\n")
        out.append(f"# HELP {name} {help}\n# TYPE {name} {family.type}\n")
        for sample in family.samples:
            labels = sorted(sample.labels.items(), key=lambda kv: rank.get(kv[0], len(rank)))
            pairs = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
            text = "{" + pairs + "}" if pairs else ""
            out.append(f"{sample.name}{text} {_number(sample.value)}\n")
    return "".join(out)


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

    @property
    def multiprocess(self) -> bool:
        """Whether values go to mmap files, shared by the workers."""
        return directory() is not None

    def gauge(self, name: str, help: str, read: Callable[[], float], mode: str = "livesum") -> None:
        """A gauge read by ``read``; ``mode`` says how the workers' values combine."""
        self.registry.add(Gauge(name, help, read, mode))

    def render(self) -> str:
        return self.registry.render()

    async def refresh_forever(self, interval: float = GAUGE_REFRESH) -> None:
        """Write the callback gauges to this worker's files, for the scrapes other workers
        answer (a background task, with several workers only)."""
        while True:
            self.registry.refresh()
            await asyncio.sleep(interval)

    def close(self) -> None:
        """This worker is stopping: its live gauges no longer count (its counts still do)."""
        path = directory()
        if path is not None:
            mark_process_dead(os.getpid(), path)  # type: ignore[no-untyped-call]
