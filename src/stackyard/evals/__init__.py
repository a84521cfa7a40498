"""Evaluation: datasets, scorers, experiments through the gateway, and the CI gate."""
