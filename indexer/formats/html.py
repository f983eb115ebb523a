"""HTML with trafilatura: the main content only (navigation, scripts, comments, footers dropped).

trafilatura's Markdown output keeps headings ("## …"), which become the section path, and tables as
"| a | b |" rows. The encoding is sniffed: BOM, then a <meta charset>, then strict UTF-8, then
charset-normalizer (some pages declare no charset at all).
"""

from __future__ import annotations

import re
from pathlib import Path

import charset_normalizer
import trafilatura

from indexer.errors import CorruptDocumentError, NoTextError
from indexer.formats.layout import Assembler, LoadOptions, clean_text, make_document
from indexer.types import Document

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-]+)""", re.IGNORECASE)
_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*$")
_MD_RULE = re.compile(r"^\|?\s*:?-{3,}")
_LIST_MARK = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_INLINE_TAG = re.compile(r"</?(?:u|b|i|em|strong|span|font|sup|sub)\b[^>]*>", re.IGNORECASE)  # left in the Markdown
_STRAY = re.compile(r"^[。，、；：！？”）」』\s]+$")  # a line left with only punctuation after an inline tag


class HtmlLoader:
    name = "html"
    suffixes = (".html", ".htm", ".xhtml")

    def sniff(self, head: bytes) -> bool:
        start = head[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
        return start.startswith((b"<!doctype html", b"<html", b"<!--", b"<head", b"<body", b"<meta", b"<?xml")) \
            or b"<html" in start

    def load(self, file: Path, root: Path, options: LoadOptions) -> list[tuple[Document, str]]:
        html = decode(file)
        markdown = trafilatura.extract(html, output_format="markdown", include_tables=True, include_comments=False,
                                       include_images=False, deduplicate=True)
        if not markdown or not markdown.strip():
            raise NoTextError(f"{file.name}: no main content found in the HTML page")
        body, first_heading = _assemble(markdown)
        meta = trafilatura.extract_metadata(html)
        title = clean_text((meta.title if meta else "") or "").strip() or first_heading
        metadata = {"format": "html", **({"url": meta.url} if meta and meta.url else {})}
        return [(make_document(file, root, title, body, metadata), f"{file}:1")]


def decode(file: Path) -> str:
    raw = file.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8", errors="replace")
    declared = _META_CHARSET.search(raw[:4096])
    if declared:
        try:
            return raw.decode(declared.group(1).decode("ascii"), errors="replace")
        except LookupError:
            pass  # an unknown charset name: sniff as if none were declared
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        best = charset_normalizer.from_bytes(raw).best()
        if best is None:
            raise CorruptDocumentError(f"{file.name}: the text encoding cannot be determined") from None
        return str(best)


def _assemble(markdown: str) -> tuple[Assembler, str]:
    body = Assembler()
    path: list[tuple[int, str]] = []
    table: int | None = None
    first_heading = ""
    lines = [clean_text(_INLINE_TAG.sub("", line)).strip() for line in markdown.splitlines()]
    for line in _merge_stray(lines):
        section = tuple(name for _, name in path)
        heading = _MD_HEADING.match(line)
        if heading:
            level, name = len(heading.group(1)), heading.group(2).strip("*_ ")
            path = [(lvl, n) for lvl, n in path if lvl < level] + [(level, name)]
            first_heading = first_heading or name
            body.add(f"【{name}】", section=tuple(n for _, n in path))
            table = None
        elif line.startswith("|"):
            if _MD_RULE.match(line):
                continue
            cells = [c.strip() for c in line.strip("|").split("|")]
            header = table is None
            table = body.new_table() if table is None else table
            body.add(" | ".join(c for c in cells if c), section=section, table=table, header=header)
        else:
            table = None
            body.add(_LIST_MARK.sub("", line).replace("**", ""), section=section)
    return body, first_heading


def _merge_stray(lines: list[str]) -> list[str]:
    out: list[str] = []
    for line in lines:
        if out and line and _STRAY.match(line):
            out[-1] += line.replace(" ", "")
        else:
            out.append(line)
    return out
