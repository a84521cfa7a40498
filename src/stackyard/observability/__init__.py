"""Observability: a trace for every request, Prometheus metrics, request logs, OTLP export,
and scores (feedback) on traces."""
