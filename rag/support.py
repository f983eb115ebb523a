"""Sentence-level citation checking: how well does each answer sentence's cited passage support it?

For a sentence and a passage, every passage sentence is compared with the answer sentence in two cheap
ways: lexical coverage (share of the answer sentence's analyzer tokens — jieba words and character
bigrams — found in the passage sentence) and embedding cosine with the pipeline's own embedder. The
support score is their weighted sum at the best-matching passage sentence, whose span is reported as the
evidence. A sentence that splices a true half onto an invented one can still score well as a whole, so
each clause is also checked: when a clause's tokens are mostly absent from the passage, the sentence's
score drops to that clause's coverage (unsupported). Unmarked sentences that a retrieved passage clearly
supports get an inferred citation; markers that point at a passage that does not support the sentence are
reported.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from indexer.chunking import split_sentences
from indexer.embedding import Embedder
from rag.citations import MARKER
from rag.types import Citation, Hit, Sentence

Label = Literal["supported", "weak", "unsupported"]


@dataclass(frozen=True)
class SupportConfig:
    # Thresholds measured with bench/support_eval.py on cmeie-qa dev (see README, "Citation checking").
    lexical_weight: float = 0.5
    supported: float = 0.75
    weak: float = 0.6
    infer: float = 0.8  # an unmarked sentence gets an inferred citation from this score on
    strict: bool = False
    clause_floor: float = 0.3  # a clause with less of its tokens in the passage makes the sentence unsupported
    clause_min_tokens: int = 3  # shorter clauses ("因此", "同时") are not judged on their own


@dataclass(frozen=True)
class Evidence:
    """The passage sentence that best supports an answer sentence."""

    marker: int
    chunk_id: str
    span: tuple[int, int]  # within the passage text
    text: str
    score: float
    lexical: float
    semantic: float
    weakest_clause: float = 1.0  # lexical coverage of the sentence's least covered clause by the passage

    def to_json(self) -> dict[str, Any]:
        return {"marker": self.marker, "chunk_id": self.chunk_id, "span": list(self.span), "text": self.text,
                "score": round(self.score, 4), "lexical": round(self.lexical, 4), "semantic": round(self.semantic, 4),
                "weakest_clause": round(self.weakest_clause, 4)}


@dataclass(frozen=True)
class SentenceSupport:
    text: str
    label: Label
    score: float
    evidence: Evidence | None
    inferred: tuple[int, ...] = ()  # markers added because a retrieved passage supports the sentence
    unsupported_markers: tuple[int, ...] = ()  # markers whose passage does not support the sentence

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "score": round(self.score, 4),
                "evidence": self.evidence.to_json() if self.evidence else None,
                "inferred_citations": list(self.inferred), "unsupported_markers": list(self.unsupported_markers)}


@dataclass(frozen=True)
class CheckedAnswer:
    sentences: tuple[Sentence, ...]  # with inferred citations added
    support: tuple[SentenceSupport, ...]
    dropped: tuple[str, ...] = ()  # sentences removed in strict mode


VERBATIM_MIN_CHARS = 8
_CLAUSE = re.compile(r"[，；：、,;:]")


class SupportChecker:
    def __init__(self, tokenize: Callable[[str], list[str]], embedder: Embedder,
                 config: SupportConfig | None = None) -> None:
        self.tokenize = tokenize
        self.embedder = embedder
        self.config = config or SupportConfig()

    def _passage_sentences(self, hit: Hit) -> list[tuple[int, int]]:
        return split_sentences(hit.passage.text) or [(0, len(hit.passage.text))]

    def _lexical(self, sentence_tokens: set[str], text: str) -> float:
        if not sentence_tokens:
            return 0.0
        return len(sentence_tokens & set(self.tokenize(text))) / len(sentence_tokens)

    def weakest_clause(self, sentence: str, passage_tokens: set[str]) -> float:
        """Coverage, by the passage's tokens, of the sentence's least covered clause (1.0 without clauses)."""
        coverages = []
        for clause in _CLAUSE.split(sentence):
            tokens = set(self.tokenize(clause))
            if len(tokens) >= self.config.clause_min_tokens:
                coverages.append(len(tokens & passage_tokens) / len(tokens))
        return min(coverages, default=1.0)

    def _combine(self, lex: float, sem: float, clause: float) -> float:
        score = self.config.lexical_weight * lex + (1 - self.config.lexical_weight) * sem
        return min(score, clause) if clause < self.config.clause_floor else score

    def score_against(self, sentences: Sequence[str], hits: Sequence[Hit],
                      needed: Sequence[set[int]] | None = None) -> np.ndarray:
        """[sentence, hit] → (score, lexical, semantic, best passage sentence, weakest clause) as an object array.

        Only the pairs in ``needed`` (hit indices per sentence; None: all) are scored. A sentence found word
        for word in a passage is fully supported there without embedding anything (extractive answers are
        all such), so the encoder only runs for paraphrased sentences — it dominated answer latency.
        """
        out = np.empty((len(sentences), len(hits)), dtype=object)
        wanted = [set(range(len(hits))) if needed is None else needed[i] for i in range(len(sentences))]
        spans = [self._passage_sentences(h) for h in hits]
        todo: list[tuple[int, int]] = []
        for i, sentence in enumerate(sentences):
            core = sentence.rstrip("。！？；;!?.")
            for j in sorted(wanted[i]):
                # Very short sentences match anywhere by chance: they take the embedded path.
                where = hits[j].passage.text.find(core) if len(core) >= VERBATIM_MIN_CHARS else -1
                if where >= 0:
                    span = next(((s, e) for s, e in spans[j] if s <= where < e), (where, where + len(core)))
                    out[i, j] = (1.0, 1.0, 1.0, span, 1.0)
                else:
                    todo.append((i, j))
        if todo:
            self._score_embedded(sentences, hits, spans, todo, out)
        return out

    def _score_embedded(self, sentences: Sequence[str], hits: Sequence[Hit], spans: list[list[tuple[int, int]]],
                        todo: list[tuple[int, int]], out: np.ndarray) -> None:
        rows = sorted({i for i, _ in todo})
        cols = sorted({j for _, j in todo})
        parts = {j: [hits[j].passage.text[s:e] for s, e in spans[j]] for j in cols}
        texts = list(dict.fromkeys([*(sentences[i] for i in rows), *(x for j in cols for x in parts[j])]))
        vectors = self.embedder.embed_passages(texts)
        row = {t: k for k, t in enumerate(texts)}
        tokens = {i: set(self.tokenize(sentences[i])) for i in rows}
        passage_tokens = {j: set(self.tokenize(hits[j].passage.text)) for j in cols}
        for i, j in todo:
            clause = self.weakest_clause(sentences[i], passage_tokens[j])
            best: tuple[float, float, float, tuple[int, int], float] | None = None
            for (s, e), part in zip(spans[j], parts[j]):
                lex = self._lexical(tokens[i], part)
                sem = float(vectors[row[sentences[i]]] @ vectors[row[part]])
                candidate = (self._combine(lex, sem, clause), lex, sem, (s, e), clause)
                if best is None or candidate[0] > best[0]:
                    best = candidate
            out[i, j] = best

    def score_pairs(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """Support score of each (sentence, passage text) pair, embedding every distinct text once."""
        split = [[text[s:e] for s, e in split_sentences(text)] or [text] for _, text in pairs]
        texts = list(dict.fromkeys([*(s for s, _ in pairs), *(x for parts in split for x in parts)]))
        vectors = self.embedder.embed_passages(texts)
        row = {t: i for i, t in enumerate(texts)}
        scores = []
        for (sentence, passage), parts in zip(pairs, split):
            tokens = set(self.tokenize(sentence))
            clause = self.weakest_clause(sentence, set(self.tokenize(passage)))
            scores.append(max(self._combine(self._lexical(tokens, part), float(vectors[row[sentence]] @
                              vectors[row[part]]), clause) for part in parts))
        return scores

    def label(self, score: float) -> Label:
        if score >= self.config.supported:
            return "supported"
        return "weak" if score >= self.config.weak else "unsupported"

    def check(self, sentences: Sequence[Sentence], hits: Sequence[Hit], strict: bool | None = None) -> CheckedAnswer:
        strict = self.config.strict if strict is None else strict
        texts = [MARKER.sub("", s.text).strip() for s in sentences]
        # Cited sentences are checked against what they cite; unmarked ones against every passage (inference).
        needed = [{c.marker - 1 for c in s.citations} or set(range(len(hits))) for s in sentences]
        table = self.score_against(texts, hits, needed)
        kept: list[Sentence] = []
        support: list[SentenceSupport] = []
        dropped: list[str] = []
        for i, sentence in enumerate(sentences):
            checked, result = self._check_one(sentence, table[i] if hits else [], hits)
            if strict and result.label == "unsupported":
                dropped.append(sentence.text)
                continue
            kept.append(checked)
            support.append(result)
        return CheckedAnswer(tuple(kept), tuple(support), tuple(dropped))

    def _check_one(self, sentence: Sentence, row: Any, hits: Sequence[Hit]) -> tuple[Sentence, SentenceSupport]:
        cited = [c.marker for c in sentence.citations]

        def evidence(marker: int) -> Evidence:
            score, lex, sem, (s, e), clause = row[marker - 1]
            p = hits[marker - 1].passage
            return Evidence(marker, p.chunk_id, (s, e), p.text[s:e], score, lex, sem, clause)

        scored = [evidence(m) for m in cited]
        bad = tuple(ev.marker for ev in scored if ev.score < self.config.weak)
        inferred: tuple[int, ...] = ()
        citations = sentence.citations
        if not cited and len(row):
            best = max((evidence(m) for m in range(1, len(hits) + 1)), key=lambda ev: ev.score)
            if best.score >= self.config.infer:
                inferred = (best.marker,)
                citations = (Citation.from_hit(best.marker, hits[best.marker - 1]),)
                scored = [best]
        top = max(scored, key=lambda ev: ev.score, default=None)
        score = top.score if top else 0.0
        result = SentenceSupport(sentence.text, self.label(score), score, top, inferred, bad)
        return Sentence(sentence.text, citations, sentence.line_break), result


def render(sentences: Sequence[Sentence]) -> str:
    """The answer text again from (possibly filtered) sentences, each followed by its markers."""
    return "".join(s.text + "".join(f"[{c.marker}]" for c in s.citations) + ("\n" if s.line_break else "")
                   for s in sentences).strip()
