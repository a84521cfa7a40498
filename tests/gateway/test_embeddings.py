import base64
import struct

from stackyard.gateway.doors.embeddings import convert_encoding, decode_base64, encode_base64


def test_base64_is_little_endian_float32() -> None:
    vector = [0.5, -1.25, 3.0]
    encoded = encode_base64(vector)
    assert base64.b64decode(encoded) == struct.pack("<3f", *vector)
    assert decode_base64(encoded) == vector


def test_convert_both_ways() -> None:
    floats = {"data": [{"object": "embedding", "index": 0, "embedding": [0.25, 0.5]}]}
    as_base64 = convert_encoding(floats, "base64")
    assert isinstance(as_base64["data"][0]["embedding"], str)
    back = convert_encoding(as_base64, "float")
    assert back["data"][0]["embedding"] == [0.25, 0.5]
    # Already in the wanted encoding: untouched.
    assert convert_encoding(back, "float")["data"][0]["embedding"] == [0.25, 0.5]
