"""The models API: the model names clients may ask for, one of them, and deleting a fine-tuned
one.

GET    /v1/models         OpenAI's list; Anthropic's page (?limit=&before_id=&after_id=)
GET    /v1/models/{id}    OpenAI's model; Anthropic's
DELETE /v1/models/{id}    a fine-tuned model (its team's keys, or the master key)

A request that carries ``anthropic-version`` (the ``anthropic`` SDK's ``client.models``) gets
Anthropic's shapes and errors; any other, OpenAI's. A key limited to some models sees only
those. Model ids may hold ``/`` and ``:`` (``org/model``, ``ft:smollm2:team:abc123``): the
rest of the path is the id.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from stackyard.auth.principal import Principal
from stackyard.errors import APIError, invalid_request, model_not_found
from stackyard.gateway.deployment import Deployment
from stackyard.gateway.doors.messages import anthropic_error
from stackyard.gateway.service import Gateway
from stackyard.server.http import Request, Response
from stackyard.server.routing import Reply, Routes

PREFIXES = ("/v1/models/", "/models/")
#: Anthropic's page sizes: ``limit`` from 1 to 1000, 20 when not given.
ANTHROPIC_LIMIT = 1000
ANTHROPIC_DEFAULT_LIMIT = 20
LIFECYCLES = frozenset({"active", "deprecated", "retired"})


@dataclass(frozen=True, slots=True)
class Made:
    """The fine-tuning job that made a model, and the team it belongs to."""

    job_id: str
    team_id: str | None
    #: Why the model may not be deleted now, if it may not.
    refusal: str | None = None


class FineTuned(Protocol):
    """Fine-tuned models, as the models API deletes them (``finetune.models.TunedModels``)."""

    def find(self, name: str) -> Made | None:
        """The job that made model ``name``; None when no job did (or it is deleted)."""
        ...

    async def delete(self, name: str) -> None:
        """Delete it: from the store, so that no instance serves it again, and from this
        instance's router now."""
        ...


def wants_anthropic(request: Request) -> bool:
    """A request from Anthropic's SDK (which sends ``anthropic-version`` on every call)."""
    return request.header(b"anthropic-version") is not None


def model_id(request: Request) -> str:
    path = request.path
    for prefix in PREFIXES:
        if path.startswith(prefix):
            return path[len(prefix) :]
    return path  # not reached: the routes send only paths under PREFIXES


def cannot_delete(name: str) -> APIError:
    """The same 404 whether the model does not exist or belongs to another team."""
    return APIError(
        404,
        f"The model '{name}' does not exist, or this key may not delete it.",
        param="model",
        code="model_not_found",
    )


def rfc3339(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat().replace("+00:00", "Z")


def _limit(value: str | None) -> int:
    if value is None:
        return ANTHROPIC_DEFAULT_LIMIT
    if not value.isdigit() or not 1 <= int(value) <= ANTHROPIC_LIMIT:
        raise invalid_request(
            f"limit: must be a whole number from 1 to {ANTHROPIC_LIMIT}", param="limit"
        )
    return int(value)


def _position(names: list[str], name: str, param: str) -> int:
    try:
        return names.index(name)
    except ValueError:
        raise invalid_request(f"{param}: no model '{name}' in the list", param=param) from None


def lifecycles(request: Request) -> set[str]:
    """The lifecycle stages asked for (``lifecycle[]=active&lifecycle[]=deprecated``, as the
    SDK sends them); by default, as Anthropic's: ``active`` and ``deprecated``."""
    raw = request.scope.get("query_string", b"").decode("latin-1")
    asked = {
        value
        for key, values in urllib.parse.parse_qs(raw).items()
        if key in ("lifecycle", "lifecycle[]")
        for value in values
    }
    unknown = sorted(asked - LIFECYCLES)
    if unknown:
        raise invalid_request(
            f"lifecycle: '{unknown[0]}' is none of {', '.join(sorted(LIFECYCLES))}",
            param="lifecycle",
        )
    return asked or {"active", "deprecated"}


def page(names: list[str], query: dict[str, str]) -> tuple[list[str], bool]:
    """Anthropic's page of ``names``: up to ``limit`` right after ``after_id``, or right
    before ``before_id``; and whether more lie beyond it in that direction."""
    limit = _limit(query.get("limit"))
    after, before = query.get("after_id"), query.get("before_id")
    start = _position(names, after, "after_id") + 1 if after else 0
    end = _position(names, before, "before_id") if before else len(names)
    if before and not after:
        first = max(start, end - limit)
        return names[first:end], first > start
    last = max(start, min(end, start + limit))
    return names[start:last], last < end


class ModelsEndpoint:
    def __init__(self, gateway: Gateway) -> None:
        self.router = gateway.router
        self.governance = gateway.governance
        #: Set when fine-tuning is available: what ``DELETE`` deletes.
        self.tuned: FineTuned | None = None
        #: When this instance first listed each model (a stable ``created`` for it).
        self._created: dict[str, int] = {}
        # OpenAI's full list, computed again only when models were added or deleted.
        self._names: tuple[str, ...] | None = None  # not computed yet (no models is a list)
        self._body = b""

    def register(self, routes: Routes) -> None:
        routes.add("GET", ["/v1/models", "/models"], self.list_models)
        for prefix in PREFIXES:
            routes.add_prefix("GET", prefix, self.retrieve)
            routes.add_prefix("DELETE", prefix, self.delete)

    # -- the shapes -------------------------------------------------------------------------

    def _created_at(self, name: str) -> int:
        created = self._created.get(name)
        if created is None:
            created = self._created[name] = int(time.time())
        return created

    def openai_model(self, name: str, group: list[Deployment]) -> dict[str, Any]:
        return {
            "id": name,
            "object": "model",
            "created": self._created_at(name),
            "owned_by": ",".join(sorted({d.entry.provider for d in group})),
        }

    def anthropic_model(self, name: str) -> dict[str, Any]:
        return {
            "type": "model",
            "id": name,
            "display_name": name,
            "created_at": rfc3339(self._created_at(name)),
            # Every model a gateway serves is callable and open to new callers.
            "lifecycle": "active",
            "deprecated_at": None,
            "retires_at": None,
        }

    # -- what a key may see -----------------------------------------------------------------

    def _visible(self, principal: Principal) -> list[str]:
        allowed = principal.models
        return [n for n in self.router.deployments if allowed is None or n in allowed]

    def _find(self, name: str, principal: Principal) -> list[Deployment] | None:
        """The deployments of ``name`` if the key may use it, asking for a fine-tuned model
        served since (as a chat request would)."""
        if principal.models is not None and name not in principal.models:
            return None
        group = self.router.deployments.get(name)
        discover = self.router.discover
        if group is None and discover is not None and discover(name):
            group = self.router.deployments.get(name)
        return group or None

    def _get(self, name: str, principal: Principal) -> list[Deployment]:
        group = self._find(name, principal)
        if group is None:
            raise model_not_found(name, self._visible(principal))
        return group

    # -- the endpoints ----------------------------------------------------------------------

    async def list_models(self, request: Request) -> Reply:
        # A key is needed as for any other call (none on an open gateway).
        if wants_anthropic(request):
            try:
                names = self._visible(self.governance.authenticate(request))
                stages = lifecycles(request)
                shown, more = page(names, request.query)
                if "active" not in stages:
                    shown, more = [], False  # every model here is active
            except APIError as exc:
                return anthropic_error(exc)
            return Response.json(
                {
                    "data": [self.anthropic_model(n) for n in shown],
                    "has_more": more,
                    "first_id": shown[0] if shown else None,
                    "last_id": shown[-1] if shown else None,
                }
            )
        principal = self.governance.authenticate(request)
        if principal.models is not None:
            return Response.json(self._openai_list(self._visible(principal)))
        every = tuple(self.router.deployments)
        if every != self._names:
            self._names, self._body = every, orjson.dumps(self._openai_list(every))
        return Response(200, self._body)

    def _openai_list(self, names: tuple[str, ...] | list[str]) -> dict[str, Any]:
        deployments = self.router.deployments
        return {"object": "list", "data": [self.openai_model(n, deployments[n]) for n in names]}

    async def retrieve(self, request: Request) -> Reply:
        name = model_id(request)
        if wants_anthropic(request):
            try:
                self._get(name, self.governance.authenticate(request))
            except APIError as exc:
                return anthropic_error(exc)
            return Response.json(self.anthropic_model(name))
        group = self._get(name, self.governance.authenticate(request))
        return Response.json(self.openai_model(name, group))

    async def delete(self, request: Request) -> Reply:
        principal = self.governance.authenticate(request)
        name = model_id(request)
        tuned = self.tuned
        made = None
        if tuned is not None and name.startswith("ft:"):
            made = await asyncio.to_thread(tuned.find, name)
        if tuned is None or made is None:
            if self._find(name, principal) is not None:
                raise invalid_request(
                    f"'{name}' is not a fine-tuned model made by a job here: only those can be "
                    "deleted. A model of the config is removed from the config.",
                    param="model",
                    code="model_not_deletable",
                )
            raise cannot_delete(name)
        if not (principal.admin or made.team_id == principal.team_id):
            raise cannot_delete(name)
        if made.refusal is not None:
            raise invalid_request(made.refusal, param="model", code="model_not_deletable")
        await tuned.delete(name)
        self._created.pop(name, None)
        return Response.json({"id": name, "object": "model", "deleted": True})
