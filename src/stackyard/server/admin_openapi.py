"""The admin API's OpenAPI 3.1 document, served at ``GET /admin/openapi.json``."""

from __future__ import annotations

from typing import Any

LIMITS: dict[str, Any] = {
    "rpm": {"type": ["integer", "null"], "minimum": 1, "description": "Requests per minute."},
    "tpm": {"type": ["integer", "null"], "minimum": 1, "description": "Tokens per minute."},
    "budget_usd": {"type": ["number", "null"], "minimum": 0, "description": "USD per period."},
    "budget_period": {"type": "string", "enum": ["day", "month", "total"], "default": "month"},
    "budget_soft": {
        "type": "boolean",
        "default": False,
        "description": "The budget alerts when spent instead of refusing requests.",
    },
}
MODELS: dict[str, Any] = {
    "type": ["array", "null"],
    "items": {"type": "string"},
    "description": "Models allowed (null: all).",
}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _obj(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


ORGANIZATION = _obj(
    ["id", "name"],
    {"id": {"type": "string"}, "name": {"type": "string"}, "models": MODELS, **LIMITS},
)
TEAM = _obj(
    ["id", "name"],
    {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "organization_id": {"type": ["string", "null"]},
        "models": MODELS,
        **LIMITS,
    },
)
USER = _obj(
    ["id", "email"],
    {
        "id": {"type": "string"},
        "email": {"type": "string"},
        "team_id": {"type": ["string", "null"]},
        "models": MODELS,
        **LIMITS,
    },
)
GROUP_BY = {
    "name": "by",
    "in": "query",
    "schema": {"enum": ["organization", "team", "user", "key", "model"], "default": "team"},
}
KEY = _obj(
    ["id", "prefix", "team_id"],
    {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "prefix": {"type": "string", "description": "The key's first characters, for display."},
        "team_id": {"type": "string"},
        "user_id": {"type": ["string", "null"]},
        "models": MODELS,
        "expires_at": {"type": ["string", "null"], "format": "date-time"},
        "revoked_at": {"type": ["string", "null"], "format": "date-time"},
        **LIMITS,
    },
)
ERROR = _obj(
    ["error"],
    {
        "error": _obj(
            ["message", "type"],
            {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        )
    },
)


def _list(item: dict[str, Any]) -> dict[str, Any]:
    return _obj(["data"], {"data": {"type": "array", "items": item}})


def _operation(summary: str, response: dict[str, Any], body: dict[str, Any] | None = None) -> Any:
    operation: dict[str, Any] = {
        "summary": summary,
        "security": [{"masterKey": []}],
        "responses": {
            "200": {"description": "OK", **_json(response)},
            "400": {"description": "Invalid request", **_json(ERROR)},
            "401": {"description": "No or unknown key", **_json(ERROR)},
            "403": {"description": "Not the master key", **_json(ERROR)},
        },
    }
    if body is not None:
        operation["requestBody"] = {"required": True, **_json(body)}
    return operation


DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Stackyard admin API", "version": "1"},
    "components": {"securitySchemes": {"masterKey": {"type": "http", "scheme": "bearer"}}},
    "paths": {
        "/admin/organizations": {
            "get": _operation("List organisations", _list(ORGANIZATION)),
            "post": _operation(
                "Create an organisation",
                ORGANIZATION,
                _obj(["name"], {"name": {"type": "string"}, "models": MODELS, **LIMITS}),
            ),
        },
        "/admin/teams": {
            "get": _operation("List teams", _list(TEAM)),
            "post": _operation(
                "Create a team",
                TEAM,
                _obj(
                    ["name"],
                    {
                        "name": {"type": "string"},
                        "organization": {
                            "type": "string",
                            "description": "Organisation name or id.",
                        },
                        "models": MODELS,
                        **LIMITS,
                    },
                ),
            ),
        },
        "/admin/users": {
            "get": _operation("List users", _list(USER)),
            "post": _operation(
                "Create a user",
                USER,
                _obj(
                    ["email"],
                    {
                        "email": {"type": "string"},
                        "team": {"type": "string"},
                        "models": MODELS,
                        **LIMITS,
                    },
                ),
            ),
        },
        "/admin/keys": {
            "get": _operation("List keys (prefixes only)", _list(KEY)),
            "post": _operation(
                "Create a key; the response is the only time it is shown",
                {**KEY, "properties": {**KEY["properties"], "key": {"type": "string"}}},
                _obj(
                    ["team"],
                    {
                        "team": {"type": "string", "description": "Team name or id."},
                        "user": {"type": "string", "description": "User email or id."},
                        "name": {"type": "string"},
                        "models": MODELS,
                        "expires_in_days": {"type": "number", "minimum": 0},
                        **LIMITS,
                    },
                ),
            ),
        },
        "/admin/keys/revoke": {
            "post": _operation("Revoke a key", KEY, _obj(["id"], {"id": {"type": "string"}}))
        },
        "/admin/keys/update": {
            "post": _operation(
                "Change a key's models, limits or budget (only the fields sent; null clears)",
                KEY,
                _obj(["id"], {"id": {"type": "string"}, "models": MODELS, **LIMITS}),
            )
        },
        "/admin/teams/update": {
            "post": _operation(
                "Change a team's models, limits or budget (only the fields sent; null clears)",
                TEAM,
                _obj(
                    ["team"],
                    {
                        "team": {"type": "string", "description": "A team's name or id."},
                        "models": MODELS,
                        **LIMITS,
                    },
                ),
            )
        },
        "/admin/spend": {
            "get": {
                **_operation(
                    "Spend per organisation, team, user, key or model",
                    _list(
                        _obj(
                            ["requests", "cost_usd"],
                            {
                                "requests": {"type": "integer"},
                                "prompt_tokens": {"type": "integer"},
                                "completion_tokens": {"type": "integer"},
                                "cost_usd": {"type": "number"},
                            },
                        )
                    ),
                ),
                "parameters": [
                    GROUP_BY,
                    {
                        "name": "since",
                        "in": "query",
                        "schema": {"type": "string", "default": "30d"},
                        "description": "7d, 24h, 30m or an ISO date.",
                    },
                ],
            }
        },
        "/admin/guardrails/audit": {
            "get": {
                **_operation(
                    "The guardrails' decisions, newest first (what was found and done, never "
                    "the values)",
                    _list(
                        _obj(
                            ["created_at", "request_id", "rail", "action"],
                            {
                                "created_at": {"type": "string", "format": "date-time"},
                                "request_id": {"type": "string"},
                                "team": {"type": ["string", "null"]},
                                "key_id": {"type": ["string", "null"]},
                                "model": {"type": "string"},
                                "endpoint": {"type": "string"},
                                "rail": {
                                    "enum": [
                                        "pii",
                                        "secrets",
                                        "secrets_output",
                                        "injection",
                                        "json",
                                    ]
                                },
                                "action": {"type": "string"},
                                "detail": {"type": "object"},
                            },
                        )
                    ),
                ),
                "parameters": [
                    {"name": "team", "in": "query", "schema": {"type": "string"}},
                    {
                        "name": "since",
                        "in": "query",
                        "schema": {"type": "string", "default": "1d"},
                        "description": "7d, 24h, 30m or an ISO date.",
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 10000},
                    },
                ],
            }
        },
        "/admin/spend/daily": {
            "get": {
                **_operation(
                    "Spend per UTC day and organisation, team, user, key or model (from the "
                    "daily rollup)",
                    _list(
                        _obj(
                            ["day", "requests", "cost_usd"],
                            {
                                "day": {"type": "string", "format": "date"},
                                "requests": {"type": "integer"},
                                "errors": {"type": "integer"},
                                "cache_hits": {"type": "integer"},
                                "prompt_tokens": {"type": "integer"},
                                "completion_tokens": {"type": "integer"},
                                "cost_usd": {"type": "number"},
                                "mean_latency_ms": {"type": "number"},
                            },
                        )
                    ),
                ),
                "parameters": [
                    GROUP_BY,
                    {
                        "name": "days",
                        "in": "query",
                        "schema": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": 3660,
                            "default": 30,
                        },
                        "description": "How many days back, today included.",
                    },
                ],
            }
        },
    },
}
