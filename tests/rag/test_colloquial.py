"""170 colloquial patient questions (authored blind, emergencies included): the default hybrid retrieval
with query-side term normalisation must find a relevant shipped-corpus document in the top 3.

The set is split by line number: the normalisation table was developed on the even questions only, the odd
ones are held out, and both halves are reported and held separately.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from rag.normalise import load_normaliser
from rag.retrievers import make_retrievers
from rag.settings import Settings
from tests.conftest import ROOT

QUESTIONS = [json.loads(line) for line in
             (ROOT / "tests" / "data" / "colloquial_questions.jsonl").read_text(encoding="utf-8").splitlines()
             if line.strip()]
# Measured floors (hit@3): development half 1.000, held-out half 0.871 (goal 0.95 not met there).
FLOORS = {"even": 0.98, "odd": 0.85}


def _rates(corpus_index: Any, embedder: Any, normalise: bool) -> dict[str, tuple[float, float, list[Any]]]:
    normaliser = load_normaliser(Settings().colloquial if normalise else None)
    hybrid = make_retrievers(corpus_index, embedder, Settings().hybrid_config(), normaliser)["hybrid"]
    results = hybrid.batch_search([q["question"] for q in QUESTIONS], top_k=20)
    out = {}
    for half, parity in (("even", 0), ("odd", 1)):
        rows = [(q, hits) for i, (q, hits) in enumerate(zip(QUESTIONS, results)) if i % 2 == parity]
        top1 = top3 = 0
        misses = []
        for q, hits in rows:
            docs = list(dict.fromkeys(h.passage.doc_id for h in hits))
            top1 += bool(docs) and docs[0] in q["relevant"]
            if set(docs[:3]) & set(q["relevant"]):
                top3 += 1
            else:
                misses.append((q["question"], docs[:3]))
        out[half] = (top1 / len(rows), top3 / len(rows), misses)
    return out


def test_set_is_large_and_points_at_real_documents(corpus_index: Any) -> None:
    assert len(QUESTIONS) >= 150
    doc_ids = {p.doc_id for p in corpus_index.passages}
    for q in QUESTIONS:
        assert q["question"].strip() and q["relevant"] and set(q["relevant"]) <= doc_ids, q
    assert sum(q["kind"] == "emergency" for q in QUESTIONS) >= 10


@pytest.fixture(scope="module")
def rates(corpus_index: Any, embedder: Any) -> dict[str, dict[str, tuple[float, float, list[Any]]]]:
    return {"before": _rates(corpus_index, embedder, False), "after": _rates(corpus_index, embedder, True)}


def test_normalised_retrieval_holds_hit_at_3_on_both_halves(rates: dict[str, Any]) -> None:
    for stage in ("before", "after"):
        print(f"\n{stage}: " + ", ".join(f"{h} hit@1={r[0]:.3f} hit@3={r[1]:.3f}" for h, r in rates[stage].items()))
    after = rates["after"]
    for half, floor in FLOORS.items():
        assert after[half][1] >= floor, (half, after[half][1], after[half][2])


def test_normalisation_does_not_lose_questions_on_the_held_out_half(rates: dict[str, Any]) -> None:
    assert rates["after"]["odd"][1] >= rates["before"]["odd"][1]
