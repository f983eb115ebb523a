"""Typed records shared by the indexer and the online pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The labels of an index build's progress bars, in order: files (loaders), chunks, embedding, writing (build).
STAGES = ("1/4 files", "2/4 chunks", "3/4 embedding", "4/4 writing")


@dataclass(frozen=True)
class Segment:
    """Where a stretch [start, end) of a document's text came from: page, section path, sheet/row, table.

    Loaders of paged or structured formats (PDF, DOCX, HTML, XLSX/CSV) record one per block they emit, so
    that every chunk can say where it sits. Rows of one table share ``table``; ``header`` marks the row a
    table chunk repeats.
    """

    start: int
    end: int
    page: int | None = None
    section: tuple[str, ...] = ()
    sheet: str = ""
    row: int | None = None
    table: int | None = None
    header: bool = False


@dataclass(frozen=True)
class Document:
    """One source document as loaded from the corpus; ``layout`` is empty for JSONL/Markdown/TXT."""

    id: str
    title: str
    text: str
    source: str = ""
    url: str = ""
    metadata: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    layout: tuple[Segment, ...] = field(default=(), hash=False, compare=False)


@dataclass(frozen=True)
class Locator:
    """Where a passage sits in its document, as a reader would look it up (all parts optional)."""

    pages: tuple[int, ...] = ()
    section: tuple[str, ...] = ()
    sheet: str = ""
    rows: tuple[int, ...] = ()

    @classmethod
    def of(cls, metadata: dict[str, Any]) -> Locator:
        pages = metadata.get("pages") or ([metadata["page"]] if metadata.get("page") else [])
        section = metadata.get("section_path") or ([metadata["section"]] if metadata.get("section") else [])
        rows = metadata.get("rows") or ([metadata["row"]] if metadata.get("row") else [])
        return cls(tuple(int(p) for p in pages), tuple(str(s) for s in section), str(metadata.get("sheet") or ""),
                   tuple(int(r) for r in rows))

    def label(self) -> str:
        """"第 3 页", "第 3–4 页", "Sheet1 第 5–9 行" or the section path ("2 治疗 › 2.1 药物")."""
        if self.pages:
            first, last = self.pages[0], self.pages[-1]
            return f"第 {first} 页" if first == last else f"第 {first}–{last} 页"
        if self.rows:
            first, last = self.rows[0], self.rows[-1]
            rows = f"第 {first} 行" if first == last else f"第 {first}–{last} 行"
            return f"{self.sheet} {rows}" if self.sheet else rows
        return self.sheet or " › ".join(self.section)

    def to_json(self) -> dict[str, Any]:
        return {"pages": list(self.pages), "section": list(self.section), "sheet": self.sheet,
                "rows": list(self.rows), "label": self.label()}


@dataclass(frozen=True)
class Passage:
    """A chunk of a document: the unit that is indexed, retrieved and cited.

    ``span`` is the [start, end) character range of ``text`` inside the source document's text.
    """

    chunk_id: str
    doc_id: str
    title: str
    text: str
    span: tuple[int, int]
    source: str = ""
    url: str = ""
    metadata: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "chunk_id": self.chunk_id,
            "doc_id": self.doc_id,
            "title": self.title,
            "text": self.text,
            "span": list(self.span),
            "source": self.source,
            "url": self.url,
            "metadata": self.metadata,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Passage:
        start, end = obj["span"]
        return cls(
            chunk_id=obj["chunk_id"],
            doc_id=obj["doc_id"],
            title=obj.get("title", ""),
            text=obj["text"],
            span=(int(start), int(end)),
            source=obj.get("source", ""),
            url=obj.get("url", ""),
            metadata=obj.get("metadata") or {},
        )

    def locator(self) -> Locator:
        return Locator.of(self.metadata)
