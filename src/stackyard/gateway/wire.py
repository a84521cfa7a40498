"""The OpenAI request shapes the gateway checks before anything leaves.

Validation is strict about the fields it knows (types, ranges, required parts) and lets every
other field through to the upstream. A failure is a 400 naming the field, as OpenAI does
(``messages[0].content``). Handlers forward the client's own dict, never a re-dump of these
models, so unknown fields and key order survive.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from stackyard.errors import APIError, invalid_request


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class FunctionCall(_Wire):
    name: str
    arguments: str


class ToolCall(_Wire):
    id: str
    type: str = "function"
    function: FunctionCall | None = None


class Message(_Wire):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None

    @model_validator(mode="after")
    def _role_rules(self) -> Message:
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a 'tool' message needs 'tool_call_id'")
        if self.role != "assistant" and self.content is None:
            raise ValueError(f"a '{self.role}' message needs 'content'")
        if self.role == "assistant" and self.content is None and not self.tool_calls:
            raise ValueError("an 'assistant' message needs 'content' or 'tool_calls'")
        if isinstance(self.content, list):
            for index, part in enumerate(self.content):
                if not isinstance(part.get("type"), str):
                    raise ValueError(f"content[{index}] needs a string 'type'")
        return self


class FunctionDefinition(_Wire):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(_Wire):
    type: str = "function"
    function: FunctionDefinition | None = None

    @model_validator(mode="after")
    def _function_needed(self) -> Tool:
        if self.type == "function" and self.function is None:
            raise ValueError("a tool of type 'function' needs 'function'")
        return self


class JSONSchemaFormat(_Wire):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None
    description: str | None = None


class ResponseFormat(_Wire):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JSONSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_needed(self) -> ResponseFormat:
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("'json_schema' is required when type is 'json_schema'")
        return self


class StreamOptions(_Wire):
    include_usage: bool | None = None


class ChatCompletionRequest(_Wire):
    model: Annotated[str, Field(min_length=1)]
    messages: Annotated[list[Message], Field(min_length=1)]
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    n: Annotated[int, Field(ge=1, le=128)] | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    seed: int | None = None
    stop: str | Annotated[list[str], Field(max_length=16)] | None = None
    user: str | None = None
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    presence_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    frequency_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: Annotated[int, Field(ge=0, le=20)] | None = None

    @field_validator("stream_options")
    @classmethod
    def _stream_options_need_stream(
        cls, value: StreamOptions | None, info: ValidationInfo
    ) -> StreamOptions | None:
        if value is not None and not info.data.get("stream"):
            raise ValueError("'stream_options' is only allowed when 'stream' is true")
        return value


_INPUT_SHAPES = (
    "a non-empty string, an array of strings, an array of token ids, or an array of arrays "
    "of token ids"
)


def _is_token_ids(value: object) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(t, int) and not isinstance(t, bool) for t in value)
    )


class EmbeddingRequest(_Wire):
    model: Annotated[str, Field(min_length=1)]
    input: Any
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: Annotated[int, Field(ge=1)] | None = None
    user: str | None = None

    @field_validator("input", mode="plain")
    @classmethod
    def _input_shape(cls, value: object) -> object:
        if isinstance(value, str):
            if value:
                return value
        elif isinstance(value, list) and value:
            if all(isinstance(v, str) for v in value):
                return value
            if _is_token_ids(value) or all(_is_token_ids(v) for v in value):
                return value
        raise ValueError(f"expected {_INPUT_SHAPES}")


class RerankDocument(_Wire):
    text: str


class RerankRequest(_Wire):
    """The ``/rerank`` shape that Cohere, Jina, vLLM and Infinity share."""

    model: Annotated[str, Field(min_length=1)]
    query: Annotated[str, Field(min_length=1)]
    documents: Annotated[list[str | RerankDocument], Field(min_length=1, max_length=1000)]
    top_n: Annotated[int, Field(ge=1)] | None = None
    return_documents: bool = False


_TYPE_NAMES = frozenset({"str", "int", "float", "bool", "dict", "list", "none"})


def _param(loc: tuple[int | str, ...]) -> str:
    """``("messages", 0, "content", "str")`` -> ``messages[0].content``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        if "[" in part or "-" in part or part.lower() in _TYPE_NAMES or part[:1].isupper():
            continue  # a union member's or a validator's name, not a field
        out += f".{part}" if out else part
    return out


_EXPECTED = {
    "Input should be a valid string": "a string",
    "Input should be a valid list": "an array",
    "Input should be a valid number": "a number",
    "Input should be a valid integer": "an integer",
    "Input should be a valid boolean": "a boolean",
    "Input should be a valid dictionary": "an object",
    "Input should be a valid dictionary or instance of Message": "an object",
    "Input should be None": "null",
}


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def as_api_error(exc: ValidationError) -> APIError:
    """The first problem of a validation failure, as OpenAI words it."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    param = _param(tuple(first["loc"]))
    same = [e for e in errors if _param(tuple(e["loc"])) == param]
    kind = first["type"]
    if kind == "missing":
        return invalid_request(f"Missing required parameter: '{param}'.", param=param)
    if kind == "extra_forbidden":
        return invalid_request(f"Unrecognized request argument: '{param}'.", param=param)
    if kind == "value_error":
        message = str(first["msg"]).removeprefix("Value error, ")
        where = f" in '{param}'" if param else ""
        return invalid_request(f"Invalid value{where}: {message}.", param=param or None)
    got = _describe(first.get("input"))
    expected = [_EXPECTED.get(str(e["msg"])) for e in same]
    if all(expected):
        wanted = " or ".join(dict.fromkeys(e for e in expected if e))
        return invalid_request(
            f"Invalid type for '{param}': expected {wanted}, but got {got} instead.",
            param=param or None,
        )
    return invalid_request(f"Invalid value for '{param}': {first['msg']}.", param=param or None)


def validate_chat(body: dict[str, Any]) -> ChatCompletionRequest:
    try:
        return ChatCompletionRequest.model_validate(body)
    except ValidationError as exc:
        raise as_api_error(exc) from None


def validate_rerank(body: dict[str, Any]) -> RerankRequest:
    try:
        return RerankRequest.model_validate(body)
    except ValidationError as exc:
        raise as_api_error(exc) from None


def validate_embeddings(body: dict[str, Any]) -> EmbeddingRequest:
    try:
        return EmbeddingRequest.model_validate(body)
    except ValidationError as exc:
        raise as_api_error(exc) from None
