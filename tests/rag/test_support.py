"""Sentence-level citation checking with the real analyzer and embedder over the tiny index."""

from __future__ import annotations

from typing import Any

import pytest

from rag.citations import cite
from rag.evaluation import support_cases
from rag.retrievers import make_retrievers
from rag.support import SupportChecker, SupportConfig, render
from rag.types import Hit
from tests.conftest import shared_data


@pytest.fixture(scope="module")
def hits(tiny_index: Any, embedder: Any) -> list[Hit]:
    return make_retrievers(tiny_index, embedder)["bm25"].search("感冒 发热 抗生素", 3)


@pytest.fixture(scope="module")
def checker(tiny_index: Any, embedder: Any) -> SupportChecker:
    return SupportChecker(tiny_index.analyzer.tokenize, embedder, SupportConfig())


def test_labels_evidence_inferred_and_bad_markers(hits: list[Hit], checker: SupportChecker) -> None:
    assert hits[0].passage.doc_id == "cold"
    answer = ("普通感冒不需要使用抗生素[1]。"  # verbatim from passage 1
              "空腹血糖≥7.0mmol/L可作为糖尿病诊断依据之一[1]。"  # true elsewhere, not in passage 1
              "普通感冒多由鼻病毒引起，常见鼻塞、流涕。")  # unmarked, passage 1 supports it
    cited = cite(answer, hits)
    result = checker.check(cited.sentences, hits)
    first, second, third = result.support
    assert first.label == "supported" and first.evidence is not None and first.evidence.marker == 1
    assert first.evidence.text == hits[0].passage.text[slice(*first.evidence.span)]
    assert "抗生素" in first.evidence.text
    assert second.label == "unsupported" and second.unsupported_markers == (1,)
    assert third.inferred == (1,) and result.sentences[2].citations[0].marker == 1
    assert third.label == "supported"


def test_strict_mode_drops_unsupported_sentences(hits: list[Hit], checker: SupportChecker) -> None:
    cited = cite("普通感冒不需要使用抗生素[1]。长期血压控制不好会损害心、脑、肾[1]。", hits)
    relaxed = checker.check(cited.sentences, hits)
    strict = checker.check(cited.sentences, hits, strict=True)
    assert len(relaxed.sentences) == 2 and len(strict.sentences) == 1
    assert strict.dropped == ("长期血压控制不好会损害心、脑、肾。",)
    assert render(strict.sentences) == "普通感冒不需要使用抗生素。[1]"


def test_unsupported_precision_and_recall_on_cmeie_dev(checker: SupportChecker) -> None:
    """Answers built from cmeie-qa dev: sentences of the relevant passage (supported) mixed with
    sentences of other passages on the same topic (unsupported), all citing the relevant passage."""
    root = shared_data() / "cmeie-qa"
    cases = support_cases(root / "corpus.jsonl", root / "dev" / "queries.jsonl", root / "dev" / "qrels.tsv", 40)
    flagged = truth_unsupported = hits_ = 0
    scores = checker.score_pairs([(sentence, passage) for passage, sentence, _ in cases])
    for (_, _, supported), score in zip(cases, scores):
        label = checker.label(score)
        flagged += label == "unsupported"
        truth_unsupported += not supported
        hits_ += label == "unsupported" and not supported
    precision, recall = hits_ / max(1, flagged), hits_ / max(1, truth_unsupported)
    print(f"\nunsupported on {len(cases)} cmeie-qa dev sentences: precision={precision:.3f} recall={recall:.3f}")
    assert len(cases) >= 60 and precision >= 0.8 and recall >= 0.6


def test_a_spliced_half_true_sentence_is_unsupported(hits: list[Hit], checker: SupportChecker) -> None:
    # The first clause is the passage's, the second invented: as a whole it shares many tokens.
    spliced = cite("普通感冒多由鼻病毒引起，长期服用维生素C可以根治慢性肾炎[1]。", hits)
    paraphrase = cite("普通感冒多数由鼻病毒引起，一般一周左右能自己好[1]。", hits)
    bad, = checker.check(spliced.sentences, hits).support
    good, = checker.check(paraphrase.sentences, hits).support
    assert bad.label == "unsupported" and bad.evidence is not None and bad.evidence.weakest_clause < 0.3
    assert good.label != "unsupported" and good.evidence is not None and good.evidence.weakest_clause >= 0.3
    no_clause_check = SupportChecker(checker.tokenize, checker.embedder, SupportConfig(clause_floor=0.0))
    assert no_clause_check.check(spliced.sentences, hits).support[0].label != "unsupported"
