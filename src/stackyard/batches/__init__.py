"""The Batch API: a file of requests that the gateway runs itself, in the background, each line
through the whole request pipeline (keys, budgets, cache, guardrails, traces), below
interactive traffic, resumable after a restart."""
