"""The gateway: one OpenAI-compatible API over many providers, with routing and fallback."""
