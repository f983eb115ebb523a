"""The shipped medical dictionary and synonym list, and their effect on retrieval."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from indexer.analyzer import AnalyzerConfig, ChineseAnalyzer
from indexer.bm25_index import BM25Index
from indexer.build import index_text
from indexer.lexicon import Lexicon, load_lexicon
from rag.settings import Settings

SETTINGS = Settings()
LEXICON = load_lexicon(SETTINGS.user_dict, SETTINGS.synonyms)


def test_lexicon_files_are_well_formed() -> None:
    assert len(LEXICON.user_words) >= 300 and len(LEXICON.synonym_groups) >= 200
    seen: dict[str, tuple[str, ...]] = {}
    for group in LEXICON.synonym_groups:
        for word in group:
            assert word not in seen, (word, group, seen.get(word))
            seen[word] = group


@pytest.mark.parametrize("term", ["高尿酸血症", "糖化血红蛋白", "幽门螺杆菌", "腰椎间盘突出症"])
def test_dictionary_keeps_medical_terms_whole(term: str) -> None:
    text = f"医生说要查{term}"
    assert term in ChineseAnalyzer(AnalyzerConfig(mode="jieba"), LEXICON).tokenize(text)
    assert term not in ChineseAnalyzer(AnalyzerConfig(mode="jieba")).tokenize(text)


def doc_rank(index: BM25Index, analyzer: ChineseAnalyzer, passages: list[Any], query: str, doc: str) -> int:
    scores = index.scores(analyzer.tokenize_query(query))
    ranked = [passages[i].doc_id for i in np.argsort(-scores, kind="stable")]
    return list(dict.fromkeys(ranked)).index(doc) + 1


# Colloquial words that no document (text, title or alias) uses; the synonym list maps them to the
# standard term that is a document's title.
SYNONYM_CASES = [
    ("老胃病又犯了", "digestive-chronic-gastritis"),
    ("尿结石疼得厉害", "kidney-urinary-urolithiasis"),
    ("胸口痛是怎么回事", "symptoms-chest-pain"),
    ("抗高血压药有哪些", "medicines-antihypertensives"),
]


def test_synonyms_change_bm25_retrieval_as_intended(corpus_index: Any) -> None:
    passages = corpus_index.passages
    texts = [index_text(p, True) for p in passages]
    with_lexicon = ChineseAnalyzer(AnalyzerConfig(), LEXICON)
    without = ChineseAnalyzer(AnalyzerConfig(), Lexicon())
    index_with = BM25Index.build([with_lexicon.tokenize(t) for t in texts])
    index_without = BM25Index.build([without.tokenize(t) for t in texts])
    for query, doc in SYNONYM_CASES:
        expansions = with_lexicon.expansions(query)
        assert expansions, query
        rank_with = doc_rank(index_with, with_lexicon, passages, query, doc)
        rank_without = doc_rank(index_without, without, passages, query, doc)
        assert rank_with <= 3 and rank_with <= rank_without, (query, rank_with, rank_without)
    assert any(doc_rank(index_with, with_lexicon, passages, q, d) < doc_rank(index_without, without, passages, q, d)
               for q, d in SYNONYM_CASES)
