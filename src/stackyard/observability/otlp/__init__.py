"""Export of spans to any OpenTelemetry collector, as the OTLP spec defines it: binary
protobuf over HTTP by default, JSON over HTTP or gRPC by choice, gzip-compressed, in batches
from a background task; configured by ``observability.otlp`` and the standard
``OTEL_EXPORTER_OTLP_*`` environment variables.

- :mod:`.settings`: the configuration file and the environment, resolved;
- :mod:`.encode`: traces as ``ExportTraceServiceRequest`` messages (and OTLP/JSON);
- :mod:`.transport`: OTLP/HTTP and OTLP/gRPC;
- :mod:`.exporter`: the queue, the batches and the retries.
"""

from stackyard.observability.otlp.encode import any_value, export_request, payload, to_json
from stackyard.observability.otlp.exporter import OTLPExporter
from stackyard.observability.otlp.settings import OTLPSettings, resolve

__all__ = [
    "OTLPExporter",
    "OTLPSettings",
    "any_value",
    "export_request",
    "payload",
    "resolve",
    "to_json",
]
