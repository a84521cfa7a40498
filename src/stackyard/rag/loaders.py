"""Reading sources into documents: text, Markdown, HTML, PDF, DOCX, and CSV or JSONL rows.

A file is one document, except CSV and JSONL, where each row is one (its text from a chosen
field, the other fields as metadata). Each loader is a function registered in ``LOADERS`` by
file suffix.
"""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import orjson

from stackyard.rag.chunking import Section, markdown_sections


class LoadError(ValueError):
    """A source that cannot be read (reported, and the rest of the sync goes on)."""


@dataclass(frozen=True, slots=True)
class Document:
    source_id: str
    sections: list[Section]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return "".join(s.text for s in self.sections)

    @property
    def digest(self) -> str:
        """The content hash: text, sections' metadata and the document's metadata."""
        h = hashlib.sha256()
        for section in self.sections:
            h.update(section.text.encode())
            h.update(orjson.dumps(section.metadata, option=orjson.OPT_SORT_KEYS))
        h.update(orjson.dumps(self.metadata, option=orjson.OPT_SORT_KEYS))
        return h.hexdigest()


@dataclass(frozen=True, slots=True)
class Fields:
    """For CSV and JSONL: which field holds the text, and which (if any) a row's id."""

    text: str = "text"
    id: str | None = None


Loader = Callable[[Path, str, Fields], Iterator[Document]]


def plain(path: Path, source_id: str, fields: Fields) -> Iterator[Document]:
    yield Document(source_id, [Section(_read(path), 0)])


def markdown(path: Path, source_id: str, fields: Fields) -> Iterator[Document]:
    yield Document(source_id, markdown_sections(_read(path)))


def html(path: Path, source_id: str, fields: Fields) -> Iterator[Document]:
    parser = _HTMLText()
    parser.feed(_read(path))
    parser.close()
    text = "".join(parser.out)
    metadata = {"title": parser.title.strip()} if parser.title.strip() else {}
    yield Document(source_id, markdown_sections(text), metadata)


def pdf(path: Path, source_id: str, fields: Fields) -> Iterator[Document]:
    try:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError
    except ImportError as exc:  # pragma: no cover - the rag extra brings pypdf
        raise LoadError("reading PDF needs pypdf: pip install 'stackyard[rag]'") from exc
    try:
        reader = PdfReader(str(path))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError) as exc:
        raise LoadError(f"not a readable PDF: {exc}") from None
    sections, offset = [], 0
    for number, text in enumerate(pages, start=1):
        if text.strip():
            sections.append(Section(text + "\n", offset, metadata={"page": number}))
        offset += len(text) + 1
    yield Document(source_id, sections)


W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def docx(path: Path, source_id: str, fields: Fields) -> Iterator[Document]:
    """Paragraphs of ``word/document.xml``; heading styles become Markdown headings."""
    try:
        with zipfile.ZipFile(path) as archive:
            root = ElementTree.fromstring(archive.read("word/document.xml"))
    except (zipfile.BadZipFile, KeyError, ElementTree.ParseError) as exc:
        raise LoadError(f"not a readable DOCX file: {exc}") from None
    lines = []
    for paragraph in root.iter(f"{W}p"):
        text = "".join(t.text or "" for t in paragraph.iter(f"{W}t"))
        if not text.strip():
            continue
        style = paragraph.find(f"{W}pPr/{W}pStyle")
        name = style.get(f"{W}val", "") if style is not None else ""
        level = name[7:] if name.lower().startswith("heading") else ""
        if level.isdigit() and 1 <= int(level) <= 6:
            text = "#" * int(level) + " " + text
        lines.append(text)
    yield Document(source_id, markdown_sections("\n\n".join(lines) + "\n"))


def jsonl(path: Path, source_id: str, fields: Fields) -> Iterator[Document]:
    for number, line in enumerate(_read(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise LoadError(f"line {number} is not JSON: {exc}") from None
        if not isinstance(row, dict):
            raise LoadError(f"line {number} is not a JSON object")
        yield _row(row, source_id, number, fields)


def csv_rows(path: Path, source_id: str, fields: Fields) -> Iterator[Document]:
    reader = csv.DictReader(io.StringIO(_read(path), newline=""))
    for number, row in enumerate(reader, start=1):
        yield _row(dict(row), source_id, number, fields)


def _row(row: dict[str, Any], source_id: str, number: int, fields: Fields) -> Document:
    text = row.pop(fields.text, None)
    if not isinstance(text, str):
        raise LoadError(f"row {number} has no text in the field '{fields.text}'")
    key = row.get(fields.id) if fields.id else number
    metadata = {k: v for k, v in row.items() if isinstance(v, str | int | float | bool)}
    return Document(f"{source_id}#{key}", [Section(text, 0)], metadata)


LOADERS: dict[str, Loader] = {
    ".txt": plain,
    ".text": plain,
    ".rst": plain,
    ".md": markdown,
    ".markdown": markdown,
    ".html": html,
    ".htm": html,
    ".pdf": pdf,
    ".docx": docx,
    ".jsonl": jsonl,
    ".csv": csv_rows,
}


def load(path: Path, source_id: str, fields: Fields = Fields()) -> Iterator[Document]:
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        raise LoadError(f"no loader for '{path.suffix}' files")
    return loader(path, source_id, fields)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise LoadError("not UTF-8 text") from None


class _HTMLText(HTMLParser):
    """Visible text, with headings as Markdown headings and blocks on their own lines."""

    SKIP = frozenset({"script", "style", "noscript", "template", "head"})
    BLOCKS = frozenset({"p", "div", "li", "tr", "br", "section", "article", "pre", "table"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.title = ""
        self._skipping = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        if tag in self.SKIP:
            self._skipping += 1
        elif len(tag) == 2 and tag[0] == "h" and tag[1] in "123456":
            self.out.append("\n\n" + "#" * int(tag[1]) + " ")
        elif tag in self.BLOCKS:
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in self.SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif (len(tag) == 2 and tag[0] == "h" and tag[1] in "123456") or tag in self.BLOCKS:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif not self._skipping:
            self.out.append(data)
