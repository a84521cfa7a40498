"""The ``stackyard`` command line: :mod:`.main` (the group, ``serve``, registration),
:mod:`.admin` (organisations, teams, users, keys, spend), :mod:`.common` (what every
command, the pillars' included, shares)."""

from stackyard.cli.main import main

__all__ = ["main"]
