"""The LLM cache: an exact tier today (the semantic tier is to come), on an in-process or a
Redis backend, isolated per tenant."""
