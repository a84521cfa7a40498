"""What a stage is: a small object with the hooks it needs, each a no-op by default. The
pipeline calls, for each request, only the hooks a stage overrides, in the stages' order
(their reverse for what comes back from the upstream, like middleware)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stackyard.gateway.deployment import Deployment
    from stackyard.gateway.pipeline.core import Pipeline
    from stackyard.gateway.pipeline.exchange import Body, Exchange, Inbound, Served
    from stackyard.gateway.router import Routed


class Stage:
    #: The stage's name, as doors list the stages they take (``Door.stages``) and the parity
    #: matrix in docs/gateway.md shows it.
    name = "stage"

    async def prepare(self, ex: Exchange) -> None:
        """After the key is checked, before the request is validated and admitted against
        limits and budgets (which count the request as it will be sent): only the registry
        prompt's render runs here."""

    async def before(self, ex: Exchange) -> Served | None:
        """After admission, before routing. Change ``ex.body``, refuse (raise an
        :class:`~stackyard.errors.APIError`), or answer (a :class:`Served`: nothing is
        routed, and the stages after this one do not run)."""
        return None

    async def outbound(
        self, ex: Exchange, deployment: Deployment, body: Body
    ) -> tuple[Body, Inbound | None]:
        """The request as it leaves for ``deployment`` (each attempt of the router: a policy
        may depend on where it goes), and what to do to what comes back from there."""
        return body, None

    async def after(self, ex: Exchange, routed: Routed[Body], pipeline: Pipeline) -> Routed[Body]:
        """A whole (not streamed) answer, before it is settled: check it, fix it, or ask
        again through ``pipeline.call``."""
        return routed

    def settled(
        self,
        ex: Exchange,
        cost: float,
        usage: dict[str, Any] | None,
        answer: Body | None,
        events: list[Any] | None,
    ) -> None:
        """A complete answer, settled at ``cost`` for ``usage``: whole (``answer``) or
        streamed (``events``, as the upstream sent them, when :meth:`records` says so)."""

    def records(self, ex: Exchange) -> bool:
        """Whether this request's stream must be kept as it passes, for :meth:`settled`."""
        return False


def overrides(stage: Stage, hook: str) -> bool:
    return getattr(type(stage), hook) is not getattr(Stage, hook)
