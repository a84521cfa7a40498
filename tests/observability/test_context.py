"""The client's tracing headers: W3C traceparent, Stackyard's own, metadata and tags."""

from __future__ import annotations

import pytest

from stackyard.errors import APIError
from stackyard.observability.context import client_context, parse_traceparent
from stackyard.server.http import Request


def request(**headers: str) -> Request:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/chat/completions",
        "headers": [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()],
    }

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b""}

    return Request(scope, receive, max_body_bytes=1 << 20)


def test_traceparent() -> None:
    value = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert parse_traceparent(value) == ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")
    assert parse_traceparent(value.upper()) is not None


@pytest.mark.parametrize(
    "value",
    [
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # all-zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # all-zero parent
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # forbidden version
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",  # short
        "garbage",
    ],
)
def test_an_invalid_traceparent_is_ignored(value: str) -> None:
    assert parse_traceparent(value) is None
    context = client_context(request(traceparent=value))
    assert context.trace_id is None


def test_stackyard_headers_win_over_traceparent_and_accept_uuids() -> None:
    context = client_context(
        request(
            traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            x_stackyard_trace_id="6F9619FF-8B86-D011-B42D-00C04FC964FF",
            x_stackyard_session_id="chat-7",
            x_stackyard_metadata='{"feature": "search"}',
            x_stackyard_tags="a, b,,c ",
        )
    )
    assert context.trace_id == "6f9619ff8b86d011b42d00c04fc964ff"
    assert context.parent_span_id is None
    assert context.session_id == "chat-7"
    assert context.metadata == {"feature": "search"}
    assert context.tags == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("header", "value", "message"),
    [
        ("x_stackyard_trace_id", "not-an-id", "32 hex digits or a UUID"),
        ("x_stackyard_metadata", "{bad json", "is not valid JSON"),
        ("x_stackyard_metadata", '"a string"', "must be a JSON object"),
        ("x_stackyard_metadata", '{"a": "' + "x" * 9000 + '"}', "larger than"),
        ("x_stackyard_tags", ",".join(str(i) for i in range(30)), "at most 20 tags"),
        ("x_stackyard_session_id", "s" * 300, "longer than 200"),
    ],
)
def test_malformed_headers_are_a_400_naming_the_header(
    header: str, value: str, message: str
) -> None:
    with pytest.raises(APIError) as info:
        client_context(request(**{header: value}))
    assert info.value.status == 400
    assert message in info.value.message
    assert info.value.param == header.replace("_", "-")
