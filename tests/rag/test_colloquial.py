"""170 colloquial patient questions (authored blind, emergencies included): the default hybrid retrieval
with query-side term normalisation must find a relevant shipped-corpus document in the top 3.

The set is split by line number: the normalisation table was developed on the even questions only, the odd
ones are held out, and both halves are reported and held separately. A second development set
(``colloquial_dev2.jsonl``) is held to its own floor.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from rag.normalise import load_normaliser
from rag.retrievers import make_retrievers
from rag.settings import Settings
from tests.conftest import ROOT


def _load(name: str) -> list[dict[str, Any]]:
    path = ROOT / "tests" / "data" / name
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


QUESTIONS = _load("colloquial_questions.jsonl")
# A second development set (278 questions written later from how patients describe the corpus's conditions:
# dialect, body parts, folk names, brand drugs), so the lexicon can grow without looking at the held-out half.
DEV2 = _load("colloquial_dev2.jsonl")
# Measured hit@3 on DEV2: 0.759 without normalisation, 0.781 with the round-1 lexicon, 0.989 with round 2.
# Two batches were written late and scored blind before the lexicon saw them (lines 199-248: 0.780, lines
# 249-278: 0.733), an estimate of how the lexicon does on wording it was not written for.
DEV2_FLOOR = 0.98
# Measured hit@3 with the round-2 lexicon: development half 1.000, held-out half 0.894 (0.871 with round 1; the
# goal 0.95 is not met there). The held-out floor is what was measured, the development one leaves one question.
FLOORS = {"even": 0.98, "odd": 0.89}


def _score(questions: list[dict[str, Any]], results: list[Any]) -> tuple[float, float, list[Any]]:
    """hit@1, hit@3 and the misses (question, top-3 documents) of one set of questions."""
    top1 = top3 = 0
    misses = []
    for q, hits in zip(questions, results):
        docs = list(dict.fromkeys(h.passage.doc_id for h in hits))
        top1 += bool(docs) and docs[0] in q["relevant"]
        if set(docs[:3]) & set(q["relevant"]):
            top3 += 1
        else:
            misses.append((q["question"], docs[:3]))
    return top1 / len(questions), top3 / len(questions), misses


def _rates(corpus_index: Any, embedder: Any, normalise: bool) -> dict[str, tuple[float, float, list[Any]]]:
    normaliser = load_normaliser(Settings().colloquial if normalise else None)
    hybrid = make_retrievers(corpus_index, embedder, Settings().hybrid_config(), normaliser)["hybrid"]
    results = hybrid.batch_search([q["question"] for q in QUESTIONS + DEV2], top_k=20)
    first, dev2 = results[:len(QUESTIONS)], results[len(QUESTIONS):]
    out = {}
    for half, parity in (("even", 0), ("odd", 1)):
        rows = [(q, hits) for i, (q, hits) in enumerate(zip(QUESTIONS, first)) if i % 2 == parity]
        out[half] = _score([q for q, _ in rows], [hits for _, hits in rows])
    out["dev2"] = _score(DEV2, dev2)
    return out


def test_set_is_large_and_points_at_real_documents(corpus_index: Any) -> None:
    assert len(QUESTIONS) >= 150
    doc_ids = {p.doc_id for p in corpus_index.passages}
    for q in QUESTIONS:
        assert q["question"].strip() and q["relevant"] and set(q["relevant"]) <= doc_ids, q
    assert sum(q["kind"] == "emergency" for q in QUESTIONS) >= 10


def test_second_development_set_is_new_and_points_at_real_documents(corpus_index: Any) -> None:
    assert len(DEV2) >= 120
    doc_ids = {p.doc_id for p in corpus_index.passages}
    for q in DEV2:
        assert q["question"].strip() and q["relevant"] and set(q["relevant"]) <= doc_ids, q
    assert not {q["question"] for q in DEV2} & {q["question"] for q in QUESTIONS}
    assert len({q["question"] for q in DEV2}) == len(DEV2)
    assert sum(q["kind"] == "emergency" for q in DEV2) >= 10


@pytest.fixture(scope="module")
def rates(corpus_index: Any, embedder: Any) -> dict[str, dict[str, tuple[float, float, list[Any]]]]:
    return {"before": _rates(corpus_index, embedder, False), "after": _rates(corpus_index, embedder, True)}


def test_normalised_retrieval_holds_hit_at_3_on_both_halves(rates: dict[str, Any]) -> None:
    for stage in ("before", "after"):
        print(f"\n{stage}: " + ", ".join(f"{h} hit@1={r[0]:.3f} hit@3={r[1]:.3f}" for h, r in rates[stage].items()))
    after = rates["after"]
    for half, floor in FLOORS.items():
        # The held-out half reports only its rate: its misses stay unseen, so the lexicon cannot be fitted to them.
        assert after[half][1] >= floor, (half, after[half][1], after[half][2] if half == "even" else "held out")


def test_normalised_retrieval_holds_hit_at_3_on_the_second_development_set(rates: dict[str, Any]) -> None:
    before, after = rates["before"]["dev2"], rates["after"]["dev2"]
    assert after[1] >= DEV2_FLOOR and after[1] >= before[1], (after[1], after[2])


def test_normalisation_does_not_lose_questions_on_the_held_out_half(rates: dict[str, Any]) -> None:
    assert rates["after"]["odd"][1] >= rates["before"]["odd"][1]
