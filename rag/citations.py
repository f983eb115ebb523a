"""Parse ``[n]``, ``[n,m]`` and ``[n][m]`` markers and tie each answer sentence to the passages it cites."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.types import Citation, Hit, Passage, Sentence

MARKER = re.compile(r"[\[［]\s*(\d+(?:\s*[,，、]\s*\d+)*)\s*[\]］]")
# A sentence runs to its end mark; markers right after the end mark still belong to it.
# "；" joins the halves of one list item or one sentence: it ends no sentence, or citing would tear them apart.
_SENTENCE = re.compile(
    r"[^。！？!?\n]+(?:[。！？!?]+|\n|$)(?:\s*[\[［]\s*\d+(?:\s*[,，、]\s*\d+)*\s*[\]］])*\n?"
)


@dataclass(frozen=True)
class CitedAnswer:
    answer: str  # the answer with markers that point at no passage removed
    sentences: tuple[Sentence, ...]
    citations: tuple[Citation, ...]  # each cited passage once, in order of first citation
    dropped_markers: tuple[int, ...]


def marker_numbers(text: str) -> list[int]:
    return [int(n) for group in MARKER.findall(text) for n in re.split(r"[,，、\s]+", group) if n]


def split_sentences(text: str) -> list[str]:
    return [m.group(0).strip() for m in _SENTENCE.finditer(text) if m.group(0).strip()]


def _sentences_with_breaks(text: str) -> list[tuple[str, bool]]:
    return [(m.group(0).strip(), m.group(0).endswith("\n")) for m in _SENTENCE.finditer(text) if m.group(0).strip()]


def cite(answer: str, hits: Sequence[Hit]) -> CitedAnswer:
    """Resolve markers against ``hits`` (marker n = hits[n-1]); invalid markers are dropped and reported."""
    dropped: list[int] = []

    def keep_valid(match: re.Match[str]) -> str:
        numbers = marker_numbers(match.group(0))
        valid = [n for n in numbers if 1 <= n <= len(hits)]
        dropped.extend(n for n in numbers if n not in valid)
        return "".join(f"[{n}]" for n in dict.fromkeys(valid))

    cleaned = MARKER.sub(keep_valid, answer).strip()
    sentences: list[Sentence] = []
    used: dict[int, Citation] = {}
    for raw, line_break in _sentences_with_breaks(cleaned):
        numbers = list(dict.fromkeys(marker_numbers(raw)))
        text = MARKER.sub("", raw).strip()
        if not text:
            continue
        citations = tuple(used.setdefault(n, Citation.from_hit(n, hits[n - 1])) for n in numbers)
        sentences.append(Sentence(text=text, citations=citations, line_break=line_break))
    return CitedAnswer(cleaned, tuple(sentences), tuple(used.values()), tuple(dict.fromkeys(dropped)))


SOURCES_HEADING = "参考资料："


def locator(passage: Passage) -> str:
    """Where in its document a passage sits, as a reader would look it up: page(s), sheet/row or section."""
    return passage.locator().label()


def source_lines(citations: Sequence[Citation], hits: Sequence[Hit]) -> list[str]:
    """``[n] 《标题》locator`` for each cited passage, in marker order (marker n = hits[n-1])."""
    lines = []
    for citation in sorted(citations, key=lambda c: c.marker):
        passage = hits[citation.marker - 1].passage
        title = f"《{passage.title}》" if passage.title else passage.doc_id
        where = locator(passage)
        lines.append(f"[{citation.marker}] {title}{where}")  # "[1] 《标题》第 3 页", as a reader cites it
    return lines


def with_footer(answer: str, sources: Sequence[str], disclaimer: str | None) -> str:
    """The answer text made self-contained for clients that show nothing but the text."""
    parts = [answer]
    if sources:
        parts.append(SOURCES_HEADING + "\n" + "\n".join(sources))
    if disclaimer:
        parts.append(disclaimer)
    return "\n\n".join(p for p in parts if p)


def strip_footer(text: str, disclaimer: str) -> str:
    """An earlier assistant message sent back by a chat client, without the footer we appended to it."""
    for mark in ("\n\n" + SOURCES_HEADING + "\n", "\n\n" + disclaimer):
        cut = text.find(mark)
        if cut >= 0:
            text = text[:cut]
    return text.removesuffix(disclaimer).rstrip()
