"""Default (extractive) answers on the written answer-quality set: 90 everyday questions, each with the document
that answers it and 2-5 key points, authored without sight of the composer (rag/answer_eval.py has the rule).

Goals of the answers issue: coverage >= 0.80, fragments 0, median <= 300 characters, every sentence cited.
Measured: coverage 0.746 on the composer's branch (even-numbered cases 0.740, odd 0.751; before the rework 0.580),
0.736 after the merge with term normalisation and the new condenser (retrieval moved a few answers);
0.746 once intent cues stopped reading context as asks ("没啥症状", "打完疫苗", "平时", "吃饭要注意") and lower
documents were penalised more (rank decay 0.30; even cases 0.731, odd 0.761); fragment rate 0 (was 0.015),
median 296 characters, 0 uncited sentences. Coverage is NOT at the goal yet: the
floor below guards the measured figure; the goals that are met (fragments, median, citations) are asserted as
goals."""

from __future__ import annotations

import json
from typing import Any

from indexer.loaders import load_corpus
from rag.answer_eval import AnswerQualityEvaluator, is_fragment, states
from rag.pipeline import RAGPipeline, build_generator
from rag.settings import Settings
from tests.conftest import ROOT

CASES = [json.loads(line) for line in (ROOT / "tests" / "data" / "answer_quality.jsonl").read_text("utf-8").splitlines()
         if line.strip()]


def test_the_set_is_as_written() -> None:
    assert len(CASES) >= 80
    assert all(2 <= len(c["key_points"]) <= 5 for c in CASES)
    assert len({c["intent"] for c in CASES}) == 10


def test_the_matching_rule() -> None:
    point = {"point": "控制盐", "any_of": [["食盐", "5克"], ["低盐"]]}
    assert states("每天食盐不超过5克", point) and states("低盐饮食", point) and not states("每天食盐要少", point)
    document = "【治疗】\n多休息；多喝水。\n发热时可用退热药。"
    assert not is_fragment("多休息；多喝水。", document)
    assert is_fragment("多喝水。", document)  # half of a list item cut at "；"


def test_default_answers_on_the_written_set(corpus_index: Any, embedder: Any) -> None:
    settings = Settings()
    pipeline = RAGPipeline(corpus_index, embedder, build_generator(settings, corpus_index), settings)
    documents = {d.id: d.text for d in load_corpus(settings.corpus)}
    quality = AnswerQualityEvaluator(CASES, documents)(pipeline.ask)
    print("\nanswer quality:", quality.to_json())
    assert quality.uncited_sentences == 0 and quality.median_chars <= 300
    assert quality.fragment_rate == 0
    assert quality.coverage >= 0.745
