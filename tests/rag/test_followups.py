"""90 written conversations (2–4 turns: pronouns, "那X呢", topic switches, aspects, a changed patient): the
condensed standalone query of every follow-up turn must retrieve a relevant document in the top 3, and no
follow-up of a covered topic may be refused as out of scope.

The pipeline is the default one on the shipped corpus (rule condenser, term normalisation), with abstention
calibrated as `chimed-rag calibrate` does. The rules were developed on the even conversations; the odd ones
are held out, and both halves are held separately.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from rag.calibration import QuestionSets, fit
from rag.pipeline import RAGPipeline, build_generator
from rag.settings import Settings
from rag.types import Turn
from tests.conftest import ROOT

CONVERSATIONS = [json.loads(line) for line in
                 (ROOT / "tests" / "data" / "followup_conversations.jsonl").read_text(encoding="utf-8").splitlines()
                 if line.strip()]
TOP3_GOAL = 0.90
# Measured with the round-2 lexicon and condenser: development half 1.000, held-out half 0.910 (0.977 and 0.888
# before). The held-out floor is what was measured, the development one leaves one follow-up.
FLOORS = {"even": 0.98, "odd": 0.91}


@pytest.fixture(scope="module")
def pipeline(corpus_index: Any, embedder: Any) -> RAGPipeline:
    settings = Settings(generator="extractive")
    calibration = fit(corpus_index, embedder, settings, QuestionSets())
    settings = settings.model_copy(update={"abstention_coef": list(calibration.coef),
                                           "abstention_intercept": calibration.intercept,
                                           "abstention_threshold": calibration.threshold})
    return RAGPipeline(corpus_index, embedder, build_generator(settings, corpus_index), settings)


def _follow_ups(pipeline: RAGPipeline) -> list[dict[str, Any]]:
    """Every follow-up turn: its standalone query, top-3 documents and abstention (as ask computes them)."""
    rows = []
    for number, conversation in enumerate(CONVERSATIONS):
        history: list[Turn] = []
        for turn in conversation["turns"]:
            if history:
                rows.append({"half": "even" if number % 2 == 0 else "odd", "question": turn["question"],
                             "query": pipeline.condenser.condense(turn["question"], history),
                             "relevant": set(turn["relevant"])})
            history.append(Turn(turn["question"], ""))
    retrievals = pipeline.evidence([r["query"] for r in rows], 20)
    for row, retrieval in zip(rows, retrievals):
        row["top3"] = list(dict.fromkeys(h.passage.doc_id for h in retrieval.hits))[:3]
        row["abstention"] = pipeline.abstainer.decide(row["query"], retrieval.runs)
    return rows


def test_conversations_are_written_and_point_at_real_documents(corpus_index: Any) -> None:
    assert len(CONVERSATIONS) >= 80
    doc_ids = {p.doc_id for p in corpus_index.passages}
    for c in CONVERSATIONS:
        assert 2 <= len(c["turns"]) <= 4
        for turn in c["turns"]:
            assert turn["question"].strip() and turn["relevant"] and set(turn["relevant"]) <= doc_ids, turn


def test_follow_ups_keep_the_topic_and_are_never_out_of_scope(pipeline: RAGPipeline) -> None:
    rows = _follow_ups(pipeline)
    report = {}
    for half in ("even", "odd"):
        mine = [r for r in rows if r["half"] == half]
        hit = sum(bool(set(r["top3"]) & r["relevant"]) for r in mine) / len(mine)
        refused = [r for r in mine if r["abstention"].abstain]
        out_of_scope = [(r["question"], r["query"]) for r in refused if r["abstention"].reason == "out_of_scope"]
        report[half] = (hit, len(mine), len(refused), out_of_scope)
        print(f"\n{half}: {len(mine)} follow-ups, top-3 {hit:.3f}, abstained {len(refused)}, "
              f"out_of_scope {len(out_of_scope)}")
    for half, (hit, *_) in report.items():
        assert hit >= FLOORS[half], (half, hit)
    # Held-out follow-ups are reported by count only, so the rules cannot be fitted to them.
    assert not report["even"][3] and not report["odd"][3], (report["even"][3], len(report["odd"][3]))


@pytest.mark.parametrize(("history", "question", "must", "must_not"), [
    (["我血压高，平时吃东西要注意啥"], "那糖尿病呢", "糖尿病", "高血压"),  # a new topic replaces the old
    (["我血压高，平时吃东西要注意啥", "那糖尿病呢"], "那运动方面呢？", "糖尿病", None),  # an aspect keeps it
    (["我有2型糖尿病，平时要注意什么"], "它会遗传吗", "糖尿病", "它"),  # pronoun resolved
    (["孩子烧到39度，精神还行，在家该怎么弄"], "退烧药可以用布洛芬吗？", "孩子", None),  # the patient carries
])
def test_issue_examples_through_ask(pipeline: RAGPipeline, history: list[str], question: str, must: str,
                                    must_not: str | None) -> None:
    answer = pipeline.ask(question, [Turn(q, "") for q in history])
    query = answer.standalone_query or ""
    assert must in query and (must_not is None or must_not not in query), query
    assert answer.abstention is None or answer.abstention.reason != "out_of_scope", answer.abstention
