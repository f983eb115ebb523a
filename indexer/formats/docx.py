"""DOCX with python-docx: body paragraphs and tables in document order, headings as the section path.

A heading is a paragraph whose style is a built-in heading ("Heading 2", "标题 2") or carries an outline
level, directly or through its base styles (Chinese standards use custom styles such as 章标题 with an
outline level). Tables become rows of cells joined with " | ", merged cells once; list paragraphs are items.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import docx
from docx.document import Document as DocxDocument
from docx.oxml.ns import qn
from docx.table import Table
from docx.text.paragraph import Paragraph

from indexer.errors import CorruptDocumentError, EncryptedDocumentError
from indexer.formats.layout import Assembler, LoadOptions, clean_text, make_document
from indexer.types import Document

_HEADING_STYLE = re.compile(r"^(?:Heading|标题)\s*(\d)$", re.IGNORECASE)
_BLANKS = re.compile(r"[_\t]{2,}|\t")  # fill-in-form blanks: "姓名___赵四____"


class DocxLoader:
    name = "docx"
    suffixes = (".docx",)

    def sniff(self, head: bytes) -> bool:
        # OOXML is a zip; an encrypted one is an OLE compound file holding the zip (caught in load).
        return head.startswith(b"PK\x03\x04") or head.startswith(b"\xd0\xcf\x11\xe0")

    def load(self, file: Path, root: Path, options: LoadOptions) -> list[tuple[Document, str]]:
        document = _open(file)
        body = Assembler()
        path: list[str] = []
        first_heading = ""
        for block in _blocks(document):
            if isinstance(block, Table):
                _add_table(body, block, tuple(path))
                continue
            text = _clean(block.text)
            level = _heading_level(block)
            if level is not None and text:
                del path[level:]
                path.extend([""] * (level - len(path)))
                path.append(text)
                path[:] = [p for p in path if p]
                first_heading = first_heading or text
                body.add(f"【{text}】", section=tuple(path))
            else:
                body.add(text, section=tuple(path))
        title = clean_text(document.core_properties.title or "").strip() or first_heading
        metadata = {"format": "docx", "tables": len(document.tables)}
        return [(make_document(file, root, title, body, metadata), f"{file}:1")]


def _open(file: Path) -> DocxDocument:
    if file.read_bytes()[:4] == b"\xd0\xcf\x11\xe0":
        raise EncryptedDocumentError(f"{file.name}: the document is encrypted (password-protected) or an old "
                                     "binary .doc; save it as an unprotected .docx and upload it again")
    try:
        return docx.Document(str(file))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise CorruptDocumentError(f"{file.name}: not a readable DOCX ({exc})") from exc
    except Exception as exc:  # lxml and python-docx raise their own types on damaged parts
        raise CorruptDocumentError(f"{file.name}: not a readable DOCX ({type(exc).__name__}: {exc})") from exc


def _blocks(document: DocxDocument) -> Iterator[Paragraph | Table]:
    for child in document.element.body.iterchildren():
        if child.tag == qn("w:p"):
            yield Paragraph(child, document)
        elif child.tag == qn("w:tbl"):
            yield Table(child, document)


def _clean(text: str) -> str:
    return clean_text(_BLANKS.sub(" ", text)).strip()


def _heading_level(paragraph: Paragraph) -> int | None:
    """0-based heading level, or None for body text (the title style counts as level 0)."""
    style = paragraph.style
    while style is not None:
        match = _HEADING_STYLE.match(style.name or "")
        if match:
            return max(int(match.group(1)) - 1, 0)
        if (style.name or "").lower() == "title":
            return 0
        level = _outline_level(style.element)
        if level is not None:
            return level
        style = style.base_style
    return _outline_level(paragraph._p)


def _outline_level(element: object) -> int | None:
    found = element.find(f"{qn('w:pPr')}/{qn('w:outlineLvl')}")  # type: ignore[attr-defined]
    if found is None:
        return None
    level = int(found.get(qn("w:val")))
    return level if level < 9 else None  # 9 is "body text"


def _add_table(body: Assembler, table: Table, section: tuple[str, ...]) -> None:
    number = body.new_table()
    rows = [_row_text(row.cells) for row in table.rows]
    rows = [r for r in rows if r]
    for n, row in enumerate(rows):
        body.add(row, section=section, table=number, header=n == 0 and len(rows) > 1)


def _row_text(cells: list) -> str:
    texts: list[str] = []
    for cell in cells:
        text = _clean(cell.text.replace("\n", " "))
        if text and (not texts or texts[-1] != text):  # a merged cell repeats in every grid column it spans
            texts.append(text)
    return " | ".join(texts)
