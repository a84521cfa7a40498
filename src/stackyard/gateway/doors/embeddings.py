"""``POST /v1/embeddings``: float and base64 encodings, whatever the upstream supports, as a
door onto the pipeline. Of the stages, the secrets and PII rails apply to text inputs (there
is nothing to restore in vectors)."""

from __future__ import annotations

import base64
import sys
from array import array
from typing import TYPE_CHECKING, Any

from stackyard.gateway.pipeline.door import Change, Door
from stackyard.gateway.pipeline.exchange import Body, Exchange
from stackyard.gateway.providers.base import UpstreamError
from stackyard.gateway.wire import validate_embeddings
from stackyard.guardrails.redaction import change_inputs
from stackyard.guardrails.secrets import mask_inputs, scan_inputs
from stackyard.guardrails.unscannable import Part, token_inputs

if TYPE_CHECKING:
    from stackyard.gateway.deployment import Deployment
    from stackyard.guardrails.secrets import Secret
    from stackyard.guardrails.vault import Vault


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


class EmbeddingsDoor(Door):
    endpoint = "embeddings"
    operation = "embeddings"
    stages = frozenset({"secrets", "pii"})
    streams = False
    options = ()

    def validate(self, ex: Exchange) -> bool:
        validate_embeddings(ex.body)
        return False

    def scan_secrets(self, body: Body) -> list[Secret]:
        return scan_inputs(body)

    def mask_secrets(self, body: Body) -> Body:
        return mask_inputs(body)

    def change_texts(self, body: Body, change: Change) -> Body:
        return change_inputs(body, change)

    def unscanned(self, body: Body) -> list[Part]:
        return token_inputs(body)

    def supports(self, deployment: Deployment, stream: bool) -> bool:
        return deployment.provider.capabilities.embeddings

    async def call(self, ex: Exchange, deployment: Deployment, body: Body) -> Body:
        wanted = body.get("encoding_format") or "float"
        if wanted == "base64" and not deployment.provider.capabilities.base64_embeddings:
            body = {**body, "encoding_format": "float"}
        result = await deployment.provider.embeddings(body)
        try:
            return convert_encoding(result, wanted)
        except (ValueError, TypeError) as exc:
            raise UpstreamError(
                "invalid_response", f"deployment {deployment.id} sent bad embeddings: {exc}"
            ) from None

    def restore(self, answer: Body, vault: Vault) -> Body:
        return answer  # vectors: nothing to restore

    def mask(self, answer: Body) -> int:
        return 0  # vectors: no text to mask

    def summary(self, answer: Body) -> Body:
        """The response as a trace stores it: the vectors' sizes, not their numbers."""
        data = []
        for item in answer.get("data") or ():
            if isinstance(item, dict):
                vector = item.get("embedding")
                size = len(vector) if isinstance(vector, list) else None
                data.append({"index": item.get("index"), "embedding": {"dimensions": size}})
        return {**answer, "data": data}


EMBEDDINGS = EmbeddingsDoor()
