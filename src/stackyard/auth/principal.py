"""Who is calling: a virtual key (with its user, team and organisation), the master key, or
nobody (open)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limit:
    scope: str  # "key", "user", "team", "organization" or "deployment"
    id: str
    rpm: int | None
    tpm: int | None


@dataclass(frozen=True, slots=True)
class Budget:
    scope: str
    id: str
    usd: float
    period: str  # "day", "month" or "total"
    #: A soft budget never refuses a request; it alerts as it is spent.
    soft: bool = False


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str | None = None
    team_id: str | None = None
    user_id: str | None = None
    organization_id: str | None = None
    #: Models this caller may use (None: all). A key's list is narrowed by its user's, its
    #: team's and its organisation's.
    models: frozenset[str] | None = None
    limits: tuple[Limit, ...] = ()
    budgets: tuple[Budget, ...] = ()
    #: The budgets that refuse requests (not soft), picked once when the snapshot is built.
    hard_budgets: tuple[Budget, ...] = ()
    expires_at: float | None = None  # epoch seconds
    master: bool = False

    @property
    def admin(self) -> bool:
        """The master key, or anyone on a gateway with no keys at all."""
        return self.master or self.key_id is None


MASTER = Principal(master=True)
OPEN = Principal()
