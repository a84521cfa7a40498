"""``GET /v1/models``: the model names clients may ask for."""

from __future__ import annotations

import time

import orjson

from stackyard.gateway.service import Gateway
from stackyard.server.http import Request, Response


def models_listing(gateway: Gateway, allowed: frozenset[str] | None = None) -> bytes:
    """The model list, of every model or of those in ``allowed``."""
    created = int(time.time())
    data = []
    for name, group in gateway.router.deployments.items():
        if allowed is not None and name not in allowed:
            continue
        providers = sorted({d.entry.provider for d in group})
        data.append(
            {
                "id": name,
                "object": "model",
                "created": created,
                "owned_by": ",".join(providers),
            }
        )
    return orjson.dumps({"object": "list", "data": data})


class ModelsEndpoint:
    """The listing is computed again only when models were added (fine-tuned ones)."""

    def __init__(self, gateway: Gateway) -> None:
        self._count = len(gateway.router.deployments)
        self._body = models_listing(gateway)

    async def __call__(self, gateway: Gateway, request: Request) -> Response:
        # A key is needed as for any other call (none on an open gateway), and a key limited
        # to some models sees only those.
        principal = gateway.governance.authenticate(request)
        if principal.models is not None:
            return Response(200, models_listing(gateway, principal.models))
        count = len(gateway.router.deployments)
        if count != self._count:
            self._count, self._body = count, models_listing(gateway)
        return Response(200, self._body)
