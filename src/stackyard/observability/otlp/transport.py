"""How an export request reaches the collector: OTLP/HTTP (binary protobuf or JSON, POSTed
to the traces URL) or OTLP/gRPC (``TraceService/Export`` through grpcio's stub, imported only
when chosen). Each says which failures are worth another try, as the OTLP spec lists them,
and how many spans the collector rejected in a partial success."""

from __future__ import annotations

import gzip
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp
import orjson
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from stackyard.config.loader import ConfigError
from stackyard.observability.otlp.encode import to_json
from stackyard.observability.otlp.settings import GRPC_MISSING, OTLPSettings

if TYPE_CHECKING:
    import grpc  # type: ignore[import-untyped]

#: Statuses OTLP/HTTP says to retry.
RETRYABLE_HTTP = frozenset({429, 502, 503, 504})
#: gRPC codes OTLP/gRPC says to retry (RESOURCE_EXHAUSTED only with RetryInfo; we retry it).
RETRYABLE_GRPC = frozenset(
    {"CANCELLED", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED", "OUT_OF_RANGE",
     "UNAVAILABLE", "DATA_LOSS"}
)  # fmt: skip
GZIP_LEVEL = 6  # zlib's default: most of level 9's ratio on span batches, at a fraction of it


class ExportFailed(Exception):
    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class Transport(Protocol):
    def start(self) -> None: ...

    def encode(self, request: ExportTraceServiceRequest) -> Any:
        """The request as :meth:`send` takes it; runs in a worker thread."""

    async def send(self, payload: Any) -> int:
        """Deliver; the number of spans the collector rejected. Raises :class:`ExportFailed`."""

    async def close(self) -> None: ...


class HTTPTransport:
    def __init__(self, settings: OTLPSettings) -> None:
        self.settings = settings
        self.json = settings.protocol == "http/json"
        content_type = "application/json" if self.json else "application/x-protobuf"
        self.headers = {**settings.headers, "content-type": content_type}
        if settings.compression == "gzip":
            self.headers["content-encoding"] = "gzip"
        self._session: aiohttp.ClientSession | None = None

    def start(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.settings.timeout)
        )

    def encode(self, request: ExportTraceServiceRequest) -> bytes:
        body = orjson.dumps(to_json(request)) if self.json else request.SerializeToString()
        if self.settings.compression == "gzip":
            body = gzip.compress(body, compresslevel=GZIP_LEVEL)
        return body

    async def send(self, payload: bytes) -> int:
        assert self._session is not None, "start() first"
        endpoint = self.settings.endpoint
        try:
            async with self._session.post(endpoint, data=payload, headers=self.headers) as reply:
                said = await reply.read()
                if reply.status >= 300:
                    raise ExportFailed(
                        f"{endpoint} answered {reply.status}: {said[:300]!r}",
                        retryable=reply.status in RETRYABLE_HTTP,
                    )
                return self._rejected(said, reply.content_type)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ExportFailed(f"{endpoint}: {exc!r}", retryable=True) from None

    @staticmethod
    def _rejected(said: bytes, content_type: str) -> int:
        """``partial_success.rejected_spans`` of the reply, 0 when it says nothing."""
        try:
            if content_type == "application/x-protobuf":
                response = ExportTraceServiceResponse.FromString(said)
                return int(response.partial_success.rejected_spans)
            if content_type == "application/json" and said.strip():
                partial = orjson.loads(said).get("partialSuccess") or {}
                return int(partial.get("rejectedSpans") or 0)
        except (ValueError, TypeError, AttributeError):
            pass  # a 2xx whose body we cannot read: everything was taken
        return 0

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class GRPCTransport:
    def __init__(self, settings: OTLPSettings) -> None:
        self.settings = settings
        self.metadata = tuple((k.lower(), v) for k, v in settings.headers.items())
        self._channel: grpc.aio.Channel | None = None
        self._export: Any = None

    def start(self) -> None:
        try:
            import grpc
            from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import (
                TraceServiceStub,
            )
        except ImportError:
            raise ConfigError(GRPC_MISSING) from None
        compression = (
            grpc.Compression.Gzip
            if self.settings.compression == "gzip"
            else grpc.Compression.NoCompression
        )
        target = self.settings.grpc_target
        if self.settings.insecure:
            self._channel = grpc.aio.insecure_channel(target, compression=compression)
        else:
            credentials = grpc.ssl_channel_credentials()
            self._channel = grpc.aio.secure_channel(target, credentials, compression=compression)
        self._export = TraceServiceStub(self._channel).Export  # type: ignore[no-untyped-call]
        self._error = grpc.aio.AioRpcError

    def encode(self, request: ExportTraceServiceRequest) -> ExportTraceServiceRequest:
        return request  # grpcio serialises (and compresses) it

    async def send(self, payload: ExportTraceServiceRequest) -> int:
        assert self._export is not None, "start() first"
        try:
            reply: ExportTraceServiceResponse = await self._export(
                payload, timeout=self.settings.timeout, metadata=self.metadata
            )
        except self._error as exc:
            code = exc.code()
            raise ExportFailed(
                f"{self.settings.endpoint} answered {code.name}: {exc.details()}",
                retryable=code.name in RETRYABLE_GRPC,
            ) from None
        return int(reply.partial_success.rejected_spans)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()


def transport(settings: OTLPSettings) -> Transport:
    return GRPCTransport(settings) if settings.protocol == "grpc" else HTTPTransport(settings)
