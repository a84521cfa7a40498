from __future__ import annotations

import pytest

from stackyard.rag.chunking import Section, chunk_sections, markdown_sections, split_tokens


def test_windows_share_the_overlap() -> None:
    text = " ".join(f"w{i}" for i in range(10))
    spans = split_tokens(text, 4, 1)
    pieces = [text[a:b] for a, b in spans]
    assert pieces == ["w0 w1 w2 w3", "w3 w4 w5 w6", "w6 w7 w8 w9"]


def test_a_short_text_is_one_chunk_and_an_empty_one_none() -> None:
    assert split_tokens("just a few words.", 50, 10) == [(0, 17)]
    assert split_tokens("   \n ", 50, 10) == []


@pytest.mark.parametrize(("size", "overlap"), [(0, 0), (5, 5), (5, -1)])
def test_bad_sizes_are_refused(size: int, overlap: int) -> None:
    with pytest.raises(ValueError, match="chunk size"):
        split_tokens("a b c", size, overlap)


def test_markdown_sections_know_their_headings() -> None:
    text = "Intro line.\n# Guide\nText A.\n## Install\nText B.\n# Other\nText C.\n"
    sections = markdown_sections(text)
    assert [s.headings for s in sections] == [(), ("Guide",), ("Guide", "Install"), ("Other",)]
    assert sections[2].text == "## Install\nText B.\n"
    assert text[sections[2].start :].startswith("## Install")


def test_chunks_are_slices_of_the_document_with_their_section() -> None:
    text = "# Title\n" + " ".join(f"word{i}" for i in range(30)) + "\n"
    chunks = chunk_sections(markdown_sections(text), 12, 2)
    assert len(chunks) == 3
    assert all(text[c.start : c.end] == c.text for c in chunks)
    assert [c.position for c in chunks] == [0, 1, 2]
    assert all(c.metadata["section"] == "Title" for c in chunks)


def test_section_metadata_is_kept() -> None:
    chunks = chunk_sections([Section("page text", 0, metadata={"page": 3})], 10, 0)
    assert chunks[0].metadata == {"page": 3}
