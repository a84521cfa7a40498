from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from stackyard.rag.loaders import Fields, LoadError, load


def one(path: Path, fields: Fields = Fields()) -> tuple[str, list[dict[str, object]], dict]:  # type: ignore[type-arg]
    (document,) = list(load(path, path.name, fields))
    return document.text, [s.metadata for s in document.sections], document.metadata


def test_markdown_keeps_its_sections(tmp_path: Path) -> None:
    path = tmp_path / "a.md"
    path.write_text("# One\ntext\n## Two\nmore\n")
    (document,) = list(load(path, "a.md"))
    assert [s.headings for s in document.sections] == [("One",), ("One", "Two")]


def test_html_keeps_headings_and_drops_scripts(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text(
        "<html><head><title>Guide</title><style>p{}</style></head><body>"
        "<h1>Setup</h1><p>Install it.</p><script>alert(1)</script>"
        "<h2>Run</h2><p>Start &amp; go.</p></body></html>"
    )
    (document,) = list(load(path, "page.html"))
    assert document.metadata == {"title": "Guide"}
    assert [s.headings for s in document.sections] == [("Setup",), ("Setup", "Run")]
    assert "alert" not in document.text
    assert "Start & go." in document.text


def test_docx_paragraphs_and_heading_styles(tmp_path: Path) -> None:
    w = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    xml = (
        f'<w:document xmlns:w="{w}"><w:body>'
        '<w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:r><w:t>Policy</w:t></w:r></w:p>'
        "<w:p><w:r><w:t>Refunds within </w:t></w:r><w:r><w:t>30 days.</w:t></w:r></w:p>"
        "</w:body></w:document>"
    )
    path = tmp_path / "policy.docx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("word/document.xml", xml)
    (document,) = list(load(path, "policy.docx"))
    assert document.sections[0].headings == ("Policy",)
    assert "Refunds within 30 days." in document.text


def minimal_pdf(pages: list[str]) -> bytes:
    objects = ["<< /Type /Catalog /Pages 2 0 R >>"]
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(len(pages)))
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>")
    font = 3 + 2 * len(pages)
    for i, text in enumerate(pages):
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET"
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {4 + 2 * i} 0 R "
            f"/Resources << /Font << /F1 {font} 0 R >> >> >>"
        )
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream")
    objects.append("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return out


def test_pdf_pages_become_sections(tmp_path: Path) -> None:
    path = tmp_path / "report.pdf"
    path.write_bytes(minimal_pdf(["First page words", "Second page words"]))
    text, metadata, _ = one(path)
    assert "First page words" in text
    assert "Second page words" in text
    assert metadata == [{"page": 1}, {"page": 2}]


def test_rows_take_the_text_field_and_keep_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "faq.csv"
    path.write_text("key,question,lang\nk1,Where is it?,en\nk2,Wo ist es?,de\n")
    documents = list(load(path, "faq.csv", Fields(text="question", id="key")))
    assert [d.source_id for d in documents] == ["faq.csv#k1", "faq.csv#k2"]
    assert documents[1].metadata == {"key": "k2", "lang": "de"}
    assert documents[1].text == "Wo ist es?"


@pytest.mark.parametrize(
    ("name", "content", "error"),
    [
        ("rows.jsonl", b'{"text": "ok"}\nnot json\n', "line 2 is not JSON"),
        ("rows.jsonl", b'["a list"]\n', "not a JSON object"),
        ("rows.jsonl", b'{"body": "no text"}\n', "no text in the field 'text'"),
        ("bad.pdf", b"%PDF-garbage", "not a readable PDF"),
        ("bad.docx", b"not a zip", "not a readable DOCX"),
        ("latin.txt", "caf\xe9".encode("latin-1"), "not UTF-8"),
        ("image.png", b"\x89PNG", "no loader for '.png'"),
    ],
)
def test_unreadable_sources_say_why(tmp_path: Path, name: str, content: bytes, error: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(LoadError, match=error):
        list(load(path, name))


def test_a_document_hash_changes_with_its_content(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("one")
    (first,) = list(load(path, "a.txt"))
    path.write_text("two")
    (second,) = list(load(path, "a.txt"))
    assert first.digest != second.digest
    path.write_text("one")
    (again,) = list(load(path, "a.txt"))
    assert again.digest == first.digest
