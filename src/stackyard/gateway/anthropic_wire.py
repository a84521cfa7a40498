"""The Anthropic Messages request shape the ``/v1/messages`` door checks, and its errors."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stackyard.errors import APIError
from stackyard.gateway.wire import as_api_error


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class Block(_Wire):
    type: str


class Turn(_Wire):
    role: Literal["user", "assistant"]
    content: str | list[Block]


class ToolDefinition(_Wire):
    name: Annotated[str, Field(min_length=1)]
    input_schema: dict[str, Any] | None = None


class ToolChoice(_Wire):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None


class OutputFormat(_Wire):
    type: Literal["json_schema"]
    schema_: dict[str, Any] = Field(alias="schema")


class OutputConfig(_Wire):
    format: OutputFormat | None = None
    effort: Literal["low", "medium", "high", "xhigh", "max"] | None = None


class MessagesRequest(_Wire):
    model: Annotated[str, Field(min_length=1)]
    max_tokens: Annotated[int, Field(ge=1)]
    messages: Annotated[list[Turn], Field(min_length=1)]
    system: str | list[Block] | None = None
    stream: bool | None = None
    temperature: Annotated[float, Field(ge=0, le=1)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    top_k: Annotated[int, Field(ge=0)] | None = None
    stop_sequences: list[str] | None = None
    tools: list[ToolDefinition] | None = None
    tool_choice: ToolChoice | None = None
    metadata: dict[str, Any] | None = None
    output_config: OutputConfig | None = None
    output_format: OutputFormat | None = None  # the structured-outputs beta's name for it


class CountTokensRequest(MessagesRequest):
    max_tokens: Annotated[int, Field(ge=1)] = 1


def validate_messages(body: dict[str, Any], *, count: bool = False) -> None:
    try:
        (CountTokensRequest if count else MessagesRequest).model_validate(body)
    except ValidationError as exc:
        raise as_api_error(exc) from None


ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_type(status: int) -> str:
    return ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def error_body(error: APIError) -> bytes:
    """An error in Anthropic's shape: ``{"type": "error", "error": {"type", "message"}}``."""
    message = error.message
    if error.param and error.param not in message:
        message = f"{error.param}: {message}"
    return orjson.dumps(
        {"type": "error", "error": {"type": error_type(error.status), "message": message}}
    )
