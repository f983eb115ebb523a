"""Everyday patient questions (colloquial, typos included) must find a relevant document in the top 3."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rag.retrievers import make_retrievers
from tests.conftest import ROOT

QUESTIONS = [json.loads(line) for f in sorted((ROOT / "tests" / "data" / "coverage").glob("*.jsonl"))
             for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_question_set_is_large_enough_and_points_at_real_documents(corpus_index: Any) -> None:
    assert len(QUESTIONS) >= 60
    doc_ids = {p.doc_id for p in corpus_index.passages}
    for q in QUESTIONS:
        assert q["question"].strip() and set(q["relevant"]) <= doc_ids, q


def test_default_hybrid_finds_a_relevant_document_in_the_top_3(corpus_index: Any, embedder: Any) -> None:
    hybrid = make_retrievers(corpus_index, embedder)["hybrid"]
    results = hybrid.batch_search([q["question"] for q in QUESTIONS], top_k=20)
    top1 = top3 = 0
    misses = []
    for q, hits in zip(QUESTIONS, results):
        docs = list(dict.fromkeys(h.passage.doc_id for h in hits))
        top1 += docs[:1] != [] and docs[0] in q["relevant"]
        hit3 = bool(set(docs[:3]) & set(q["relevant"]))
        top3 += hit3
        if not hit3:
            misses.append((q["question"], q["relevant"], docs[:3]))
    n = len(QUESTIONS)
    print(f"\ncoverage: {n} questions, hit@1={top1 / n:.3f} hit@3={top3 / n:.3f}")
    assert not misses, misses
