"""Typed records shared by the indexer and the online pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Document:
    """One source document as loaded from the corpus."""

    id: str
    title: str
    text: str
    source: str = ""
    url: str = ""
    metadata: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


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
