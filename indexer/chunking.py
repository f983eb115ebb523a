"""Chinese-aware chunking: sentences packed into chunks, with character spans into the source.

Sentences end at 。！？；… (with any closing quotes/brackets), at line breaks and at blank lines.
A chunk is cut only between sentences, except when one sentence alone is longer than the chunk
size; then it is cut at a comma-like mark if one is near, else hard at the size limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from indexer.types import Document, Passage

_SENTENCE = re.compile(r"[^。！？；!?;…\n]*(?:[。！？；!?;]+|…+|\n+|$)[”’」』）)\]]*")
_SOFT_BREAK = "，,、：:"
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
