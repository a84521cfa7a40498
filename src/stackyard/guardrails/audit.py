"""Recording what a rail decided on a request. Each decision goes on the request's ticket
(and from there, when the request is settled, to the audit log), and on its trace. A detail
may be a function, called at settlement, for what is only known once the answer is back (how
many values were redacted). Details name detectors, kinds, places and counts, never a value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stackyard.auth.admission import Ticket

#: What a decision found; a function is called at settlement, and a decision whose function
#: gives None (nothing was found after all) is dropped.
Detail = dict[str, Any] | Callable[[], dict[str, Any] | None]


def decide(ticket: Ticket, rail: str, action: str, detail: Detail | None = None) -> None:
    ticket.decisions.append((rail, action, detail if detail is not None else {}))


def details(ticket: Ticket) -> list[tuple[str, str, dict[str, Any]]]:
    """The ticket's decisions with their details worked out."""
    out = []
    for rail, action, detail in ticket.decisions:
        found = detail() if callable(detail) else detail
        if found is not None:
            out.append((rail, action, found))
    return out
