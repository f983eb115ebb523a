"""Spreadsheets: XLSX with openpyxl (values, not formulas), CSV with the standard library.

Each data row becomes one line "列名：值；列名：值": the header row is repeated in every row, so a row read
alone (and every chunk) says what each value is, without a header line that would double a wide sheet's
chunks. Rows are table rows (never split), with the sheet name and the 1-based row number as it shows in
the spreadsheet program.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import openpyxl

from indexer.errors import CorruptDocumentError, EncryptedDocumentError, NoTextError
from indexer.formats.html import decode
from indexer.formats.layout import Assembler, LoadOptions, clean_text, make_document
from indexer.types import Document


class XlsxLoader:
    name = "xlsx"
    suffixes = (".xlsx", ".xlsm")

    def sniff(self, head: bytes) -> bool:
        return head.startswith(b"PK\x03\x04") or head.startswith(b"\xd0\xcf\x11\xe0")

    def load(self, file: Path, root: Path, options: LoadOptions) -> list[tuple[Document, str]]:
        if file.read_bytes()[:4] == b"\xd0\xcf\x11\xe0":
            raise EncryptedDocumentError(f"{file.name}: the workbook is encrypted (password-protected) or an old "
                                         "binary .xls; save it as an unprotected .xlsx and upload it again")
        try:
            book = openpyxl.load_workbook(file, read_only=True, data_only=True)
        except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
            raise CorruptDocumentError(f"{file.name}: not a readable XLSX ({exc})") from exc
        body = Assembler()
        try:
            for sheet in book.worksheets:
                add_sheet(body, sheet.title, sheet.iter_rows(values_only=True))
            title = clean_text(book.properties.title or "").strip()
            names = [s.title for s in book.worksheets]
        finally:
            book.close()
        return [(_document(file, root, title, body, {"format": "xlsx", "sheets": names}), f"{file}:1")]


class CsvLoader:
    name = "csv"
    suffixes = (".csv", ".tsv")

    def sniff(self, head: bytes) -> bool:
        return b"\0" not in head[:4096]  # text, not a binary file renamed

    def load(self, file: Path, root: Path, options: LoadOptions) -> list[tuple[Document, str]]:
        text = decode(file)
        try:
            dialect = csv.Sniffer().sniff(text[:8192], delimiters=",\t;|")
        except csv.Error:
            dialect = csv.excel_tab if file.suffix.lower() == ".tsv" else csv.excel
        body = Assembler()
        add_sheet(body, "", csv.reader(io.StringIO(text), dialect))
        return [(_document(file, root, "", body, {"format": "csv"}), f"{file}:1")]


def _document(file: Path, root: Path, title: str, body: Assembler, metadata: dict[str, Any]) -> Document:
    if not body.segments:
        raise NoTextError(f"{file.name}: no rows with values")
    return make_document(file, root, title, body, metadata)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.10g}"
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    text = clean_text(str(value)).strip()
    try:  # numbers stored as text with float noise: '57.382000000000005'
        return f"{float(text):.10g}" if "." in text and len(text) > 12 else text
    except ValueError:
        return text


def add_sheet(body: Assembler, sheet: str, rows: Iterable[Sequence[Any]]) -> None:
    """One line per data row under the header row (the first row with a value), numbered as in the sheet."""
    table: int | None = None
    header: list[str] = []
    for number, row in enumerate(rows, start=1):
        cells = [_cell(v) for v in row]
        if not any(cells):
            continue
        if table is None:  # the header row: every row line names its columns, so it is not a line of its own
            table, header = body.new_table(), cells
            continue
        pairs = [f"{header[i] if i < len(header) and header[i] else f'列{i + 1}'}：{c}"
                 for i, c in enumerate(cells) if c]
        body.add("；".join(pairs), sheet=sheet, row=number, table=table)
