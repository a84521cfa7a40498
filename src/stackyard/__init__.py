"""Stackyard: a self-hostable LLMOps stack behind one OpenAI-compatible gateway."""

__version__ = "0.1.0"
