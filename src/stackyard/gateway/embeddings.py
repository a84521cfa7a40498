"""``POST /v1/embeddings``: float and base64 encodings, whatever the upstream supports. The
guardrails apply to text inputs: secrets are refused or masked, and PII is redacted before
the inputs leave for an external provider (there is nothing to restore in vectors)."""

from __future__ import annotations

import base64
import sys
from array import array
from typing import Any

from stackyard.gateway.accounting import settled_json
from stackyard.gateway.chat import check_secrets, pii_vault
from stackyard.gateway.deployment import Deployment
from stackyard.gateway.providers.base import Body, UpstreamError
from stackyard.gateway.router import Routed, RouteStats
from stackyard.gateway.service import Gateway
from stackyard.gateway.wire import validate_embeddings
from stackyard.guardrails.redaction import change_inputs, redacted
from stackyard.guardrails.secrets import mask_inputs, scan_inputs
from stackyard.server.http import Request, Response


def encode_base64(vector: list[float]) -> str:
    """Little-endian float32, base64-encoded: what OpenAI's clients decode."""
    packed = array("f", vector)
    if sys.byteorder != "little":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")


def decode_base64(text: str) -> list[float]:
    packed = array("f")
    packed.frombytes(base64.b64decode(text))
    if sys.byteorder != "little":
        packed.byteswap()
    return packed.tolist()


def convert_encoding(response: Body, wanted: str) -> Body:
    """Make every embedding in ``response`` use the encoding the client asked for."""
    for item in response.get("data") or ():
        if not isinstance(item, dict):
            continue
        vector: Any = item.get("embedding")
        if wanted == "base64" and isinstance(vector, list):
            item["embedding"] = encode_base64(vector)
        elif wanted == "float" and isinstance(vector, str):
            item["embedding"] = decode_base64(vector)
    return response


async def embeddings(gateway: Gateway, request: Request) -> Response:
    body = await request.json_object()
    governance = gateway.governance
    principal = governance.authenticate(request)  # a caller without a key learns nothing more
    validate_embeddings(body)
    ticket = await governance.admit(request, body, endpoint="embeddings", principal=principal)
    wanted = body.get("encoding_format") or "float"
    stats = RouteStats()

    async def attempt(deployment: Deployment) -> Body:
        upstream_body = body
        vault = pii_vault(gateway, deployment, ticket)
        if vault is not None:  # nothing to restore: the answer is vectors
            upstream_body = await redacted(upstream_body, vault, change_inputs)
        if wanted == "base64" and not deployment.provider.capabilities.base64_embeddings:
            upstream_body = {**body, "encoding_format": "float"}
        result = await deployment.provider.embeddings(upstream_body)
        try:
            return convert_encoding(result, wanted)
        except (ValueError, TypeError) as exc:
            raise UpstreamError(
                "invalid_response", f"deployment {deployment.id} sent bad embeddings: {exc}"
            ) from None

    async def call() -> Routed[Body]:
        nonlocal body  # ``attempt`` sends the masked body
        body = check_secrets(gateway, body, ticket, scan_inputs, mask_inputs)
        return await gateway.router.run(
            body["model"],
            attempt,
            stats=stats,
            supports=lambda d: d.provider.capabilities.embeddings,
            operation="embeddings",
        )

    return await settled_json(governance, request, ticket, stats, call, _summary)


def _summary(response: Body) -> Body:
    """The response as a trace stores it: the vectors' sizes, not their numbers."""
    data = []
    for item in response.get("data") or ():
        if isinstance(item, dict):
            vector = item.get("embedding")
            size = len(vector) if isinstance(vector, list) else None
            data.append({"index": item.get("index"), "embedding": {"dimensions": size}})
    return {**response, "data": data}
