"""Errors that reach API clients, in OpenAI's shape.

Every error the gateway returns is ``{"error": {"message", "type", "param", "code"}}`` with a
4xx/5xx status chosen so that the official SDKs raise the right exception class.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from pydantic import ValidationError


class APIError(Exception):
    """An error to be sent to the client as it is."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = list(headers)

    def body(self) -> dict[str, object]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.body())


def describe_validation(exc: ValidationError) -> tuple[str, str | None]:
    """A pydantic error as one line (``field.path: what is wrong``), and the field's path."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or None
    message = str(first["msg"]).removeprefix("Value error, ")
    return (f"{where}: {message}" if where else message), where


def invalid_request(message: str, *, param: str | None = None, code: str | None = None) -> APIError:
    return APIError(400, message, param=param, code=code)


def model_not_found(model: object, known: Sequence[str]) -> APIError:
    listed = ", ".join(known) if known else "none are configured"
    return APIError(
        404,
        f"The model '{model}' does not exist on this gateway. Known models: {listed}.",
        param="model",
        code="model_not_found",
    )


def body_too_large(limit: int) -> APIError:
    return APIError(
        413,
        f"Request body is larger than the limit of {limit} bytes.",
        code="request_too_large",
    )


def not_found(path: str) -> APIError:
    return APIError(404, f"No route for {path}.", code="not_found")


def method_not_allowed(method: str, path: str, allowed: Sequence[str]) -> APIError:
    return APIError(
        405,
        f"Method {method} is not allowed on {path}.",
        code="method_not_allowed",
        headers=[("allow", ", ".join(allowed))],
    )


def internal_error(request_id: str) -> APIError:
    return APIError(
        500,
        f"The gateway failed to handle this request (request id {request_id}); "
        "the error was logged.",
        type="server_error",
        code="internal_error",
    )
