"""Chinese-aware chunking: sentences packed into chunks, with character spans into the source.

Sentences end at 。！？；… (with any closing quotes/brackets), at line breaks and at blank lines.
A chunk is cut only between sentences, except when one sentence alone is longer than the chunk
size; then it is cut at a comma-like mark if one is near, else hard at the size limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from indexer.types import Document, Passage, Segment

_SENTENCE = re.compile(r"[^。！？；!?;…\n]*(?:[。！？；!?;]+|…+|\n+|$)[”’」』）)\]]*")
_SOFT_BREAK = "，,、：:"
_SENTENCE_END = "。！？!?；;…”’」』）)】"
_HEADING_LINE = re.compile(r"^【[^】\n]{1,30}】$")
_SECTION = re.compile(r"^【([^】\n]{1,30})】$", re.MULTILINE)


@dataclass(frozen=True)
class ChunkerConfig:
    max_chars: int = 400
    overlap_sentences: int = 1

    def __post_init__(self) -> None:
        if self.max_chars < 20:
            raise ValueError("max_chars must be at least 20")
        if self.overlap_sentences < 0:
            raise ValueError("overlap_sentences must be >= 0")


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Spans [start, end) of the sentences of ``text``, whitespace trimmed, empty ones dropped."""
    spans: list[tuple[int, int]] = []
    for match in _SENTENCE.finditer(text):
        start, end = match.start(), match.end()
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if start < end:
            spans.append((start, end))
    return _attach_headings(text, spans)


def _attach_headings(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """A section heading line is glued to the sentence after it, so no chunk ends on a heading."""
    out: list[tuple[int, int]] = []
    pending: int | None = None
    for start, end in spans:
        if _HEADING_LINE.match(text[start:end]):
            pending = start if pending is None else pending
            continue
        out.append((pending if pending is not None else start, end))
        pending = None
    if pending is not None:
        out.append((pending, spans[-1][1]))
    return out


def _cut_long(text: str, start: int, end: int, limit: int) -> list[tuple[int, int]]:
    pieces: list[tuple[int, int]] = []
    while end - start > limit:
        window = text[start : start + limit]
        cut = max(window.rfind(ch) for ch in _SOFT_BREAK)
        cut = start + cut + 1 if cut >= limit // 2 else start + limit
        pieces.append((start, cut))
        start = cut
    pieces.append((start, end))
    return pieces


def _with_section(metadata: dict[str, Any], headings: list[tuple[int, str]], start: int) -> dict[str, Any]:
    """Record the section heading in effect where the chunk starts (documents with 【heading】 lines)."""
    current = [name for pos, name in headings if pos <= start]
    return {**metadata, "section": current[-1]} if current else metadata


class Chunker:
    """Packs the sentences of each document into chunks of at most ``max_chars`` characters."""

    def __init__(self, config: ChunkerConfig | None = None) -> None:
        self.config = config or ChunkerConfig()

    def run(self, documents: list[Document]) -> list[Passage]:
        return [passage for doc in documents for passage in self.chunk(doc)]

    def chunk(self, doc: Document) -> list[Passage]:
        if doc.layout:
            return self._chunk_layout(doc)
        spans = self._pack(doc.text)
        headings = [(m.start(), m.group(1)) for m in _SECTION.finditer(doc.text)]
        return [
            Passage(
                chunk_id=f"{doc.id}#{n}",
                doc_id=doc.id,
                title=doc.title,
                text=doc.text[start:end],
                span=(start, end),
                source=doc.source,
                url=doc.url,
                metadata=_with_section(doc.metadata, headings, start),
            )
            for n, (start, end) in enumerate(spans)
        ]

    def _chunk_layout(self, doc: Document) -> list[Passage]:
        """Documents with a layout (PDF, DOCX, HTML, sheets): prose packed as usual, tables by whole rows."""
        pieces: list[tuple[int, int, str]] = []
        for region in _regions(doc.text, doc.layout):
            if region[0].table is None or all(s.header for s in region):
                start, end = region[0].start, region[-1].end
                pieces.extend((start + s, start + e, doc.text[start + s:start + e])
                              for s, e in self._pack(doc.text[start:end]))
            else:
                pieces.extend(self._pack_rows(doc.text, region))
        return [
            Passage(chunk_id=f"{doc.id}#{n}", doc_id=doc.id, title=doc.title, text=text, span=(start, end),
                    source=doc.source, url=doc.url, metadata={**doc.metadata, **_locate(doc.layout, start, end)})
            for n, (start, end, text) in enumerate(pieces)
        ]

    def _pack_rows(self, text: str, rows: list[Segment]) -> list[tuple[int, int, str]]:
        """Whole rows up to the size limit; each chunk of a table starts with its header row.

        A chunk's span covers its rows; its text is the header row, then those rows. A row longer than the
        limit is a chunk of its own: a row is never cut.
        """
        header = next((text[s.start:s.end] for s in rows if s.header), "")
        body = [s for s in rows if not s.header]
        prefix = header + "\n" if header else ""
        out: list[tuple[int, int, str]] = []
        first = 0
        for n in range(1, len(body) + 1):
            if n == len(body) or len(prefix) + body[n].end - body[first].start > self.config.max_chars:
                start, end = body[first].start, body[n - 1].end
                out.append((start, end, prefix + text[start:end]))
                first = n
        return out

    def _pack(self, text: str) -> list[tuple[int, int]]:
        limit = self.config.max_chars
        sentences = [p for s, e in split_sentences(text) for p in _cut_long(text, s, e, limit)]
        chunks: list[tuple[int, int]] = []
        i = 0
        while i < len(sentences):
            j = i + 1
            while j < len(sentences) and sentences[j][1] - sentences[i][0] <= limit:
                j += 1
            chunks.append((sentences[i][0], sentences[j - 1][1]))
            if j >= len(sentences):
                break
            # Step back for overlap, but always advance so the loop ends.
            i = max(i + 1, j - self.config.overlap_sentences)
        return chunks


def _regions(text: str, layout: tuple[Segment, ...]) -> list[list[Segment]]:
    """Consecutive segments grouped: a run of prose, or the rows of one table.

    Prose is cut where a section starts and at a page break, unless a sentence runs on over the page break:
    a passage then cites one section and one page.
    """
    regions: list[list[Segment]] = []
    for segment in layout:
        last = regions[-1][-1] if regions else None
        new_page = last is not None and last.page != segment.page and text[last.end - 1] in _SENTENCE_END
        new_section = last is not None and last.section != segment.section
        if (last is not None and last.table == segment.table
                and not (segment.table is None and (new_page or new_section))):
            regions[-1].append(segment)
        else:
            regions.append([segment])
    return regions


def _locate(layout: tuple[Segment, ...], start: int, end: int) -> dict[str, Any]:
    """The locator metadata of the chunk [start, end): its pages, the section where it starts, sheet and rows."""
    inside = [s for s in layout if s.start < end and s.end > start] or [s for s in layout if s.start <= start][-1:]
    if not inside:
        return {}
    where: dict[str, Any] = {}
    pages = sorted({s.page for s in inside if s.page is not None})
    if pages:
        where["pages"] = pages
    if inside[0].section:
        where["section_path"] = list(inside[0].section)
        where["section"] = inside[0].section[-1]
    if inside[0].sheet:
        where["sheet"] = inside[0].sheet
    rows = [s.row for s in inside if s.row is not None]
    if rows:
        where["rows"] = [rows[0], rows[-1]] if rows[0] != rows[-1] else [rows[0]]
        where["row"] = rows[0]
    return where


def index_text(passage: Passage, with_title: bool) -> str:
    """What is embedded and BM25-indexed for a chunk: its text, headed by the title and aliases."""
    if not with_title or not passage.title:
        return passage.text
    aliases = passage.metadata.get("aliases") or []
    names = "、".join(str(a) for a in aliases if a) if isinstance(aliases, list) else ""
    if names:
        return f"{passage.title}（{names}）\n{passage.text}"
    if passage.text.startswith(passage.title):
        return passage.text
    return f"{passage.title}\n{passage.text}"
