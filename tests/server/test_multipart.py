from __future__ import annotations

import pytest

from stackyard.errors import APIError
from stackyard.server.multipart import parse

BODY = (
    b"--XyZ\r\n"
    b'Content-Disposition: form-data; name="purpose"\r\n\r\n'
    b"fine-tune\r\n"
    b"--XyZ\r\n"
    b'Content-Disposition: form-data; name="file"; filename="train.jsonl"\r\n'
    b"Content-Type: application/octet-stream\r\n\r\n"
    b'{"prompt": "a"}\r\n{"prompt": "b"}\r\n'
    b"\r\n--XyZ--\r\n"
)


def test_fields_and_files() -> None:
    fields, files = parse(BODY, b"multipart/form-data; boundary=XyZ")
    assert fields == {"purpose": "fine-tune"}
    assert files["file"].filename == "train.jsonl"
    assert files["file"].content == b'{"prompt": "a"}\r\n{"prompt": "b"}\r\n'


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (BODY, b"application/json", "multipart/form-data"),
        (BODY, b"multipart/form-data", "no boundary"),
        (BODY[:60], b"multipart/form-data; boundary=XyZ", "truncated"),
        (b"--XyZ\r\nno headers\r\n--XyZ--\r\n", b"multipart/form-data; boundary=XyZ", "no headers"),
    ],
)
def test_malformed_bodies_are_a_400(body: bytes, content_type: bytes, message: str) -> None:
    with pytest.raises(APIError, match=message) as caught:
        parse(body, content_type)
    assert caught.value.status == 400
