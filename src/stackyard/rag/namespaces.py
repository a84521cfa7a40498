"""Whose collection a name means. Each team has its own namespace of collection names, and so
has the master key (collections with no team):

- A virtual key always means its own team's collection. It may name its team (``team_id``),
  never another: that is a 403, whether or not the other team has such a collection.
- The master key (or anyone on a gateway with no keys) means its own namespace, unless it
  names a team with ``team_id``. A name is never looked up across namespaces, so two teams'
  collections of one name are never confused; the master key's 404 says which namespaces
  have the name (the master key may see them all anyway).

A name that is not in the caller's namespace is a 404 that says nothing of other teams.
"""

from __future__ import annotations

from stackyard.auth.principal import Principal
from stackyard.rag.collections import Collection, Collections, RagError


def namespace(principal: Principal, team_id: str | None = None) -> str | None:
    """The namespace ``principal`` addresses, ``team_id`` being the team it names (if any):
    a team's id, or None for the master key's own."""
    if principal.admin:
        return team_id or None
    if principal.team_id is None:  # every key has a team; refuse rather than guess
        raise RagError(403, "this key belongs to no team", code="permission_denied")
    if team_id and team_id != principal.team_id:
        raise RagError(
            403,
            "only the master key may name another team's collections",
            code="permission_denied",
            param="team_id",
        )
    return principal.team_id


def visible(principal: Principal, collection: Collection) -> bool:
    """Whether ``principal`` may see and use ``collection``: the master key all, a key its
    team's."""
    if principal.admin:
        return True
    return principal.team_id is not None and collection.team_id == principal.team_id


def resolve(
    collections: Collections, principal: Principal, name: str, team_id: str | None = None
) -> Collection:
    """The collection ``name`` in the namespace ``principal`` addresses (from the snapshot:
    no database I/O), or a 404."""
    space = namespace(principal, team_id)
    found = collections.find(name, space)
    if found is None:
        raise not_found(collections, principal, name, space)
    return found


def not_found(
    collections: Collections, principal: Principal, name: str, space: str | None
) -> RagError:
    """The 404 for ``name`` missing from ``space``: for the master key, it says which
    namespaces have one (it may see them all anyway); for a key, nothing more."""
    message = f"no collection named '{name}'"
    if principal.admin:
        message += f" in team {space}" if space else " among the master key's own"
        teams = [team for team, other in collections.by_team_name if other == name]
        places = [f"team {team}" for team in sorted(filter(None, teams))]
        if None in teams:
            places.insert(0, "the master key's own")
        if places:
            message += f" (elsewhere: {', '.join(places)})"
    return RagError(404, message, code="collection_not_found")
