"""``multipart/form-data`` bodies (file uploads), parsed whole: the body is already bounded by
``server.max_body_bytes``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from stackyard.errors import invalid_request

BOUNDARY = re.compile(rb'boundary="?([^";]+)"?', re.IGNORECASE)
DISPOSITION = re.compile(rb'(\w+)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True, slots=True)
class Upload:
    filename: str
    content: bytes


def parse(body: bytes, content_type: bytes | None) -> tuple[dict[str, str], dict[str, Upload]]:
    """(fields, files) of a multipart body, or a 400 saying what is malformed."""
    if not content_type or not content_type.lower().startswith(b"multipart/form-data"):
        raise invalid_request("Send the file as multipart/form-data (a 'file' part).")
    found = BOUNDARY.search(content_type)
    if found is None:
        raise invalid_request("The multipart content type has no boundary.")
    delimiter = b"--" + found.group(1)
    fields: dict[str, str] = {}
    files: dict[str, Upload] = {}
    parts = body.split(delimiter)
    if len(parts) < 3 or not parts[-1].startswith(b"--"):
        raise invalid_request("The multipart body is truncated or malformed.")
    for part in parts[1:-1]:
        part = part.removeprefix(b"\r\n").removesuffix(b"\r\n")
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            raise invalid_request("A multipart part has no headers.")
        params: dict[bytes, bytes] = {}
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-disposition":
                params = {k.lower(): v for k, v in DISPOSITION.findall(value)}
        key = params.get(b"name")
        if key is None:
            raise invalid_request("A multipart part has no name.")
        if b"filename" in params:
            files[key.decode()] = Upload(params[b"filename"].decode(errors="replace"), content)
        else:
            fields[key.decode()] = content.decode(errors="replace")
    return fields, files
