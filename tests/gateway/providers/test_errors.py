import email.utils
import time

import aiohttp
import pytest

from stackyard.gateway.providers.errors import from_exception, from_response, parse_retry_after


def test_retry_after_forms() -> None:
    assert parse_retry_after({"retry-after": "7"}) == 7.0
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None
    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    delay = parse_retry_after({"retry-after": date})
    assert delay is not None
    assert 25 < delay <= 30


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "client"),
        (401, "deployment"),
        (403, "deployment"),
        (404, "deployment"),
        (408, "timeout"),
        (409, "server"),
        (413, "client"),
        (422, "client"),
        (429, "rate_limited"),
        (500, "server"),
        (503, "server"),
        (529, "server"),
    ],
)
def test_status_to_kind(status: int, kind: str) -> None:
    assert from_response(status, {}, b"{}", upstream="u").kind == kind


def test_openai_error_body_is_kept() -> None:
    raw = (
        b'{"error": {"message": "This model\'s maximum context length is 8192 tokens",'
        b' "type": "invalid_request_error", "param": "messages", '
        b'"code": "context_length_exceeded"}}'
    )
    error = from_response(400, {}, raw, upstream="u")
    assert error.message.startswith("This model's maximum context length")
    assert (error.error_type, error.param, error.code) == (
        "invalid_request_error",
        "messages",
        "context_length_exceeded",
    )


def test_non_json_error_body_and_rate_limit_headers() -> None:
    error = from_response(429, {"retry-after": "3"}, b"Too Many Requests", upstream="u")
    assert error.message == "Too Many Requests"
    assert error.retry_after == 3.0
    assert error.retryable


def test_x_should_retry_overrides_status() -> None:
    assert from_response(500, {"x-should-retry": "false"}, b"", upstream="u").kind == "deployment"
    assert from_response(400, {"x-should-retry": "true"}, b"", upstream="u").kind == "server"


def test_client_side_failures() -> None:
    assert from_exception(TimeoutError(), upstream="u").kind == "timeout"
    assert from_exception(aiohttp.ServerDisconnectedError(), upstream="u").kind == "connection"
    assert from_exception(ConnectionResetError(), upstream="u").kind == "connection"
    with pytest.raises(KeyError):
        from_exception(KeyError("a bug, not an upstream failure"), upstream="u")
