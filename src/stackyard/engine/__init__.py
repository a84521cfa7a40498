"""The in-process engine: models loaded in this process, served with continuous batching.

Everything here imports torch lazily: the gateway installs without it (the ``local`` extra).
"""
