"""PDF (text layer): pypdf for the text in content-stream order, pdfplumber for ruled tables.

pypdf keeps two-column pages in column order and reads files pdfminer cannot (it silently returns no
pages for some); pdfplumber's table finder runs only on pages whose text names a table, because it
costs about a third of a second a page. Running headers/footers and page numbers are dropped, lines
inside a sentence are joined, and a page without any text is reported, never indexed as empty.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pdfplumber
import pypdf
from pypdf.errors import PdfReadError

from indexer.errors import CorruptDocumentError, EncryptedDocumentError, LimitError, NoTextError
from indexer.formats.layout import Assembler, LoadOptions, clean_text, has_fake_spaces, join_lines, make_document
from indexer.types import Document

log = logging.getLogger(__name__)

_PAGE_NUMBER = re.compile(r"^(?:[-—–·•\s]*\d{1,4}[-—–·•\s]*|第\s*\d+\s*页(?:\s*[/／共]\s*\d+\s*页?)?|\d+\s*/\s*\d+|"
                          r"(?:page|p\.)\s*\d+(?:\s*of\s*\d+)?)$", re.IGNORECASE)
_TABLE_CUE = re.compile(r"(?:^|\n)\s*(?:表|附表|附件|Table)\s*\d", re.IGNORECASE)
_EDGE = 4  # lines at the top and bottom of a page where running heads and page numbers sit


@dataclass(frozen=True)
class Table:
    rows: tuple[str, ...]  # cells joined with " | ", header first
    columns: int
    cover: str  # every cell's text without whitespace: which text lines the table replaces


class PdfLoader:
    name = "pdf"
    suffixes = (".pdf",)

    def sniff(self, head: bytes) -> bool:
        return b"%PDF-" in head[:1024]

    def load(self, file: Path, root: Path, options: LoadOptions) -> list[tuple[Document, str]]:
        reader = _open(file)
        count = len(reader.pages)
        if options.max_pages is not None and count > options.max_pages:
            raise LimitError(f"{file.name}: {count} pages, over the limit of {options.max_pages} pages")
        raw = [_page_text(file, reader, n) for n in range(count)]
        if count == 0 or not any(t.strip() for t in raw):
            raise NoTextError(f"{file.name}: {_no_text(range(1, count + 1))}; this PDF is scanned or image-only "
                              "and OCR is not available, so nothing could be indexed")
        fake_spaces = has_fake_spaces("".join(raw[:20]))
        pages = [clean_text(t, fake_spaces).splitlines() for t in raw]
        running = _running_lines(pages)
        tables = _tables(file, raw)
        body = Assembler()
        for n, lines in enumerate(pages):
            _add_page(body, n + 1, _strip_edges(lines, running), tables.get(n, []))
        blank = [n + 1 for n, t in enumerate(raw) if not t.strip()]
        if blank:
            log.warning("%s: %s", file, _no_text(blank))
        meta = reader.metadata
        title = _title(meta.title if meta else None)
        metadata = {"format": "pdf", "page_count": count, **({"pages_without_text": blank} if blank else {})}
        return [(make_document(file, root, title or file.stem, body, metadata), f"{file}:1")]


def _no_text(pages: range | list[int]) -> str:
    numbers = list(pages)
    listed = "、".join(map(str, numbers)) if numbers else "0"
    english = ", ".join(map(str, numbers))
    return f"第 {listed} 页没有文本层 (page{'s' if len(numbers) > 1 else ''} {english} has no text layer)"


def _open(file: Path) -> pypdf.PdfReader:
    try:
        reader = pypdf.PdfReader(file)
        if reader.is_encrypted and not reader.decrypt(""):
            raise EncryptedDocumentError(f"{file.name}: the PDF is encrypted (password-protected); "
                                         "remove the password and upload it again")
        len(reader.pages)  # forces the page tree, where a damaged file usually fails
        return reader
    except EncryptedDocumentError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise CorruptDocumentError(f"{file.name}: not a readable PDF ({exc})") from exc


def _page_text(file: Path, reader: pypdf.PdfReader, n: int) -> str:
    try:
        return reader.pages[n].extract_text() or ""
    except Exception as exc:  # pypdf raises many types on a damaged page; name the page, keep the cause
        raise CorruptDocumentError(f"{file.name}: page {n + 1} cannot be read ({type(exc).__name__}: {exc})") from exc


def _title(value: str | None) -> str:
    title = clean_text(value or "").strip()
    # Producers fill the field with file names and placeholders; those are no title.
    if not title or re.search(r"(?i)untitled|^microsoft word|\.(?:docx?|pdf|indd|wps)$", title):
        return ""
    return title


def _key(line: str) -> str:
    return re.sub(r"\d+", "#", re.sub(r"\s+", "", line))


def _running_lines(pages: list[list[str]]) -> set[str]:
    """Lines near the page edges that recur (digits aside) on many pages: running heads and footers."""
    if len(pages) < 3:
        return set()
    seen: Counter[str] = Counter()
    for lines in pages:
        edges = lines[:_EDGE] + lines[-_EDGE:]
        seen.update({_key(line) for line in edges if line.strip() and len(line) <= 120})
    least = max(3, int(0.4 * len(pages)))
    return {key for key, count in seen.items() if count >= least}


def _strip_edges(lines: list[str], running: set[str]) -> list[str]:
    kept = []
    for n, line in enumerate(lines):
        line = line.strip()
        at_edge = n < _EDGE or n >= len(lines) - _EDGE
        if not line or (at_edge and (_key(line) in running or _PAGE_NUMBER.match(line))):
            continue
        kept.append(line)
    return kept


def _tables(file: Path, raw: list[str]) -> dict[int, list[Table]]:
    """Ruled tables by page (0-based) on pages that name a table or follow a page that ended with one.

    {} when pdfplumber cannot read the file: the text is still there, as lines.
    """
    found: dict[int, list[Table]] = {}
    if not any(_TABLE_CUE.search(t) for t in raw):
        return found
    try:
        with pdfplumber.open(file) as pdf:
            for n, page in enumerate(pdf.pages[:len(raw)]):
                if _TABLE_CUE.search(raw[n]) or found.get(n - 1):
                    found[n] = [t for t in map(_table, page.extract_tables()) if t]
                page.close()  # frees the page's parsed objects: long documents stay small
    except Exception as exc:  # pdfminer fails on some files that pypdf reads
        log.warning("%s: table detection skipped (%s)", file, exc)
    return found


def _table(rows: list[list[str | None]]) -> Table | None:
    cells = [[clean_text(c or "", fake_spaces=True).replace("\n", "").strip() for c in row] for row in rows]
    cells = [row for row in cells if any(row)]
    columns = max((sum(1 for c in row if c) for row in cells), default=0)
    if len(cells) < 2 or columns < 2:
        return None  # a framed box of text, not a table
    lines = tuple(" | ".join(c for c in row if c) for row in cells)
    cover = re.sub(r"\s+", "", "".join("".join(row) for row in cells))
    return Table(lines, columns, cover)


def _add_page(body: Assembler, page: int, lines: list[str], tables: list[Table]) -> None:
    """The page's paragraphs in order, each table in place of the text lines it covers."""
    pending: list[str] = []
    placed: set[int] = set()

    def flush() -> None:
        for paragraph in join_lines(pending):
            body.add(paragraph, page=page)
        pending.clear()

    for line in lines:
        covering = next((i for i, t in enumerate(tables) if _covered(line, t)), None)
        if covering is None:
            pending.append(line)
            continue
        if covering not in placed:
            flush()
            _add_table(body, page, tables[covering])
            placed.add(covering)
    flush()
    for i, table in enumerate(tables):
        if i not in placed:
            _add_table(body, page, table)


def _covered(line: str, table: Table) -> bool:
    key = re.sub(r"\s+", "", line)
    return len(key) >= 2 and key in table.cover


def _add_table(body: Assembler, page: int, table: Table) -> None:
    number = _continued(body, table, page)
    rows = table.rows
    if number is None:
        number = body.new_table()
        body.add(rows[0], page=page, table=number, header=True)
        rows = rows[1:]
    elif rows[0] == _header_of(body, number):
        rows = rows[1:]  # the header row repeated on the new page
    for row in rows:
        body.add(row, page=page, table=number)


def _continued(body: Assembler, table: Table, page: int) -> int | None:
    """The table this one continues: the previous page ended in a row of a table with as many columns."""
    if not body.segments or body.segments[-1].table is None or body.segments[-1].page != page - 1:
        return None
    last = body.segments[-1]
    header = _header_of(body, last.table)
    return last.table if header is not None and header.count(" | ") + 1 == table.columns else None


def _header_of(body: Assembler, number: int | None) -> str | None:
    for segment in body.segments:
        if segment.table == number and segment.header:
            return body.text[segment.start:segment.end]
    return None
