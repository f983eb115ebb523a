"""Answer quality on a written question set: key-point coverage, fragments, length, citation.

Each case (tests/data/answer_quality.jsonl) names the document that answers it and 2–5 key points a good answer
must contain. The rule for "an answer states a key point": some answer sentence contains every term of at least
one of the point's ``any_of`` term lists (terms copied from the document's own wording; alternatives where the
document words the idea differently). A sentence is a fragment when it is neither a whole line (list item or
paragraph) nor a whole sentence (ending at 。！？) of the document it cites.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rag.types import Answer

_ENDS = "。！？!?；;，,：: "
_SENTENCE = re.compile(r"[^。！？!?]+(?:[。！？!?]+|$)")


@dataclass(frozen=True)
class CaseResult:
    question: str
    covered: int
    points: int
    sentences: int
    fragments: tuple[str, ...]
    uncited: int
    chars: int
    top_doc: str | None


@dataclass(frozen=True)
class AnswerQuality:
    coverage: float  # primary metric: covered key points / all key points
    fragment_rate: float  # fragment sentences / all answer sentences
    median_chars: float
    uncited_sentences: int
    cases: tuple[CaseResult, ...]

    def to_json(self) -> dict[str, Any]:
        return {"coverage": round(self.coverage, 4), "fragment_rate": round(self.fragment_rate, 4),
                "median_chars": self.median_chars, "uncited_sentences": self.uncited_sentences,
                "cases": len(self.cases)}


def states(sentence: str, point: Mapping[str, Any]) -> bool:
    return any(all(term in sentence for term in terms) for terms in point["any_of"])


def _pieces(document: str) -> set[str]:
    """Every whole line and every whole sentence of a document, end punctuation trimmed."""
    out: set[str] = set()
    for line in document.splitlines():
        line = line.strip()
        if line:
            out.add(line.rstrip(_ENDS))
            out.update(m.group(0).strip().rstrip(_ENDS) for m in _SENTENCE.finditer(line))
    return out


def is_fragment(sentence: str, document: str, pieces: set[str] | None = None) -> bool:
    return sentence.strip().rstrip(_ENDS) not in (pieces if pieces is not None else _pieces(document))


class AnswerQualityEvaluator:
    """sentence-transformers style: configured with the cases and the documents' text, called on an answer
    function, returns the metrics (primary: coverage)."""

    def __init__(self, cases: Sequence[Mapping[str, Any]], documents: Mapping[str, str]) -> None:
        self.cases = list(cases)
        self.documents = dict(documents)
        self._pieces = {doc: _pieces(text) for doc, text in self.documents.items()}

    def __call__(self, answer: Callable[[str], Answer]) -> AnswerQuality:
        results = [self._case(case, answer(case["question"])) for case in self.cases]
        return AnswerQuality(
            coverage=sum(r.covered for r in results) / max(1, sum(r.points for r in results)),
            fragment_rate=sum(len(r.fragments) for r in results) / max(1, sum(r.sentences for r in results)),
            median_chars=statistics.median(r.chars for r in results) if results else 0.0,
            uncited_sentences=sum(r.uncited for r in results), cases=tuple(results))

    def _case(self, case: Mapping[str, Any], answer: Answer) -> CaseResult:
        texts = [s.text for s in answer.sentences]
        covered = sum(any(states(t, point) for t in texts) for point in case["key_points"])
        fragments = []
        for sentence in answer.sentences:
            cited_docs = {c.doc_id for c in sentence.citations}
            if cited_docs and all(is_fragment(sentence.text, self.documents.get(d, ""), self._pieces.get(d))
                                  for d in cited_docs):
                fragments.append(sentence.text)
        return CaseResult(case["question"], covered, len(case["key_points"]), len(texts), tuple(fragments),
                          sum(not s.citations for s in answer.sentences), sum(len(t) for t in texts),
                          answer.passages[0].passage.doc_id if answer.passages else None)
