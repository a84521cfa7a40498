"""Guardrails: today, reversible PII redaction before a request leaves for an external
provider (injection, secrets, topics and output validation are to come)."""
