"""A small Python client for the gateway's own APIs (the OpenAI SDK covers ``/v1``)."""

from stackyard.client.base import Client
from stackyard.client.collections import CollectionsClient
from stackyard.client.prompts import Prompt, PromptsClient

__all__ = ["Client", "CollectionsClient", "Prompt", "PromptsClient"]
