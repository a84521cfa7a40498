"""Placeholders: stable per value, restored whole, and restored in a stream split anywhere."""

from __future__ import annotations

from stackyard.guardrails.vault import StreamRestorer, Vault

TEXT = (
    "Mail ada@example.org, then bob@example.org, then ada@example.org again; "
    "card 4111 1111 1111 1111 and <b>bold</b> text with a lone < sign."
)


def test_placeholders_are_typed_and_stable() -> None:
    vault = Vault()
    redacted = vault.redact(TEXT)
    assert "ada@example.org" not in redacted
    assert redacted.count("<EMAIL_1>") == 2
    assert "<EMAIL_2>" in redacted
    assert "<CARD_1>" in redacted
    assert vault.restore(redacted) == TEXT
    assert vault.restore("an unknown <EMAIL_9> stays") == "an unknown <EMAIL_9> stays"


def test_a_stream_split_at_every_point_is_restored() -> None:
    vault = Vault()
    redacted = vault.redact(TEXT)
    for cut in range(len(redacted) + 1):
        restorer = StreamRestorer(vault)
        pieces = [restorer.feed(redacted[:cut]), restorer.feed(redacted[cut:]), restorer.flush()]
        assert "".join(pieces) == TEXT, cut
    restorer = StreamRestorer(vault)
    one_by_one = "".join(restorer.feed(c) for c in redacted) + restorer.flush()
    assert one_by_one == TEXT
