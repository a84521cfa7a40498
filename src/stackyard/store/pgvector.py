"""pgvector's binary form for psycopg: a :class:`Vector` parameter is sent as the dimension and
32-bit floats instead of a text literal (384 numbers took 0.2 ms to write as text in Python,
and the server parsed them again), and a ``vector`` column read with ``binary=True`` comes back
as a NumPy array of 32-bit floats. Used by the cache's and RAG's pgvector backends."""

from __future__ import annotations

import struct
from typing import Any


class Vector:
    """A vector to send to PostgreSQL as pgvector's ``vector`` type, in binary (``%b``)."""

    __slots__ = ("values",)

    def __init__(self, values: Any) -> None:
        self.values = values


def vector_bytes(values: Any) -> bytes:
    """pgvector's binary input: the dimension and a reserved zero (16 bits each), then each
    number as a 32-bit big-endian float."""
    import numpy as np

    array = np.asarray(values, dtype=">f4").reshape(-1)
    return struct.pack(">HH", array.shape[0], 0) + array.tobytes()


def vector_from_bytes(data: Any) -> Any:
    """A NumPy array (32-bit floats, native order) from pgvector's binary output."""
    import numpy as np

    dimension, _ = struct.unpack_from(">HH", data)
    return np.frombuffer(data, dtype=">f4", count=dimension, offset=4).astype(np.float32)


def _register(conn: Any, info: Any) -> None:
    from psycopg.adapt import Dumper, Loader
    from psycopg.pq import Format

    if info is None:
        raise RuntimeError("the vector type is missing: is pgvector installed?")

    class VectorDumper(Dumper):
        format = Format.BINARY
        oid = info.oid

        def dump(self, obj: Any) -> bytes:
            return vector_bytes(obj.values)

    class VectorLoader(Loader):
        format = Format.BINARY

        def load(self, data: Any) -> Any:
            return vector_from_bytes(data)

    conn.adapters.register_dumper(Vector, VectorDumper)
    conn.adapters.register_loader(info.oid, VectorLoader)


async def register_vector(conn: Any) -> None:
    """Teach an async connection to send :class:`Vector` parameters in binary, and to read
    vectors in binary results."""
    from psycopg.types import TypeInfo

    _register(conn, await TypeInfo.fetch(conn, "vector"))


def register_vector_sync(conn: Any) -> None:
    """Teach a connection to send :class:`Vector` parameters in binary, and to read vectors
    in binary results."""
    from psycopg.types import TypeInfo

    _register(conn, TypeInfo.fetch(conn, "vector"))
