"""Settling a streamed request once it ends, and the cost header."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stackyard.gateway.deployment import Deployment

if TYPE_CHECKING:
    from stackyard.auth.admission import Governance, Ticket


def cost_header(cost: float) -> tuple[bytes, bytes]:
    return b"x-stackyard-cost-usd", f"{cost:.8f}".encode()


class Settlement:
    """Collects a stream's usage as it passes, and settles the ticket when the stream ends
    (whole, failed, or abandoned by its client)."""

    __slots__ = ("deployment", "governance", "status", "ticket", "usage")

    def __init__(self, governance: Governance, ticket: Ticket, deployment: Deployment) -> None:
        self.governance = governance
        self.ticket = ticket
        self.deployment = deployment
        self.usage: dict[str, Any] | None = None
        self.status = 200

    async def done(self) -> None:
        await self.governance.finish(
            self.ticket, status=self.status, usage=self.usage, deployment=self.deployment
        )
