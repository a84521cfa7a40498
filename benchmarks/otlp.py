"""What encoding spans for OTLP costs: a batch of finished traces (two spans, a dozen
attributes each) through the exporter's encoders, best of five, per trace.

    python -m benchmarks.otlp [--traces 200]
"""

from __future__ import annotations

import argparse
import gzip
import time
import timeit
from collections.abc import Callable

import orjson

from stackyard.observability.otlp.encode import export_request, payload
from stackyard.observability.otlp.transport import GZIP_LEVEL
from stackyard.observability.spans import SERVER, RequestTrace, Span, new_span_id, new_trace_id
from stackyard.observability.writer import Finished


def traces(count: int) -> list[Finished]:
    out = []
    for number in range(count):
        start = time.time_ns() - number * 1_000_000_000
        root = Span("chat m", new_span_id(), None, start, start + 10_000_000)
        root.kind = SERVER
        root.attributes.update(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "m",
                "gen_ai.response.model": "m-2024",
                "gen_ai.usage.input_tokens": 5,
                "gen_ai.usage.output_tokens": 7,
                "gen_ai.response.finish_reasons": ["stop"],
                "stackyard.cost_usd": 0.01,
                "stackyard.deployment": "m#0",
            }
        )
        body = {"model": "m", "messages": [{"role": "user", "content": f"question {number}"}]}
        trace = RequestTrace(f"req_{number}", new_trace_id(), root, "chat", "m", body)
        trace.response = {"choices": [{"message": {"content": f"answer {number}"}}]}
        trace.child("upstream", start + 1, start + 2)
        out.append(
            Finished(
                trace, "k", "t", None, 200, None, "m#0", "openai", 5, 7, 0.01, False, 1, "full"
            )
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--traces", type=int, default=200)
    args = parser.parse_args(argv)
    batch = traces(args.traces)
    resource = {"service.name": "stackyard"}

    def protobuf() -> bytes:
        return bytes(export_request(batch, resource).SerializeToString())

    encoders: dict[str, Callable[[], bytes]] = {
        "http/protobuf": protobuf,
        f"http/protobuf, gzip {GZIP_LEVEL} (the default)": lambda: gzip.compress(
            protobuf(), compresslevel=GZIP_LEVEL
        ),
        "http/json": lambda: orjson.dumps(payload(batch, "stackyard")),
    }
    print(f"{args.traces} traces of 2 spans; best of 5")
    print("| encoding | µs per trace | bytes per batch |")
    print("| --- | ---: | ---: |")
    for name, encode in encoders.items():
        seconds = min(timeit.repeat(encode, number=10, repeat=5)) / 10
        print(f"| {name} | {seconds * 1e6 / len(batch):.1f} | {len(encode()):,} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
