"""The ASGI server: a small, fast HTTP layer (no framework on the hot path)."""
