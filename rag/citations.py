"""Parse ``[n]``, ``[n,m]`` and ``[n][m]`` markers and tie each answer sentence to the passages it cites."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.types import Citation, Hit, Sentence

MARKER = re.compile(r"[\[［]\s*(\d+(?:\s*[,，、]\s*\d+)*)\s*[\]］]")
# A sentence runs to its end mark; markers right after the end mark still belong to it.
_SENTENCE = re.compile(
    r"[^。！？!?；;\n]+(?:[。！？!?；;]+|\n|$)(?:\s*[\[［]\s*\d+(?:\s*[,，、]\s*\d+)*\s*[\]］])*"
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
    for raw in split_sentences(cleaned):
        numbers = list(dict.fromkeys(marker_numbers(raw)))
        text = MARKER.sub("", raw).strip()
        if not text:
            continue
        citations = tuple(used.setdefault(n, Citation.from_hit(n, hits[n - 1])) for n in numbers)
        sentences.append(Sentence(text=text, citations=citations))
    return CitedAnswer(cleaned, tuple(sentences), tuple(used.values()), tuple(dict.fromkeys(dropped)))
