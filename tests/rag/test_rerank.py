"""The optional cross-encoder rerank stage with a tiny randomly initialised BERT built by the test."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from rag.pipeline import RAGPipeline, build_generator
from rag.rerank import CrossEncoderReranker, RerankConfig
from rag.retrievers import make_retrievers
from rag.settings import Settings
from tests.conftest import TINY_DOCS


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    folder = tmp_path_factory.mktemp("cross-encoder")
    chars = sorted({ch for d in TINY_DOCS for ch in d["title"] + d["text"]} | set("感冒怎么办心梗"))
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars]) + "\n",
                                      encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512, num_labels=1)
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_reranker_orders_hits_by_cross_encoder_score(tiny_index: Any, embedder: Any,
                                                     tiny_cross_encoder: Path) -> None:
    hits = make_retrievers(tiny_index, embedder)["hybrid"].search("感冒怎么办", 5)
    reranker = CrossEncoderReranker(RerankConfig(str(tiny_cross_encoder)))
    reranked = reranker.rerank("感冒怎么办", hits, 3)
    assert len(reranked) == 3 and [h.rank for h in reranked] == [1, 2, 3]
    scores = [h.scores["rerank"] for h in reranked]
    assert scores == sorted(scores, reverse=True) and all(h.score == h.scores["rerank"] for h in reranked)
    expected = reranker.model.predict([("感冒怎么办", h.passage.text) for h in hits])
    best = max(range(len(hits)), key=lambda i: float(expected[i]))
    assert reranked[0].passage.chunk_id == hits[best].passage.chunk_id
    assert {h.passage.chunk_id for h in reranked} <= {h.passage.chunk_id for h in hits}
    assert reranked[0].scores["fused"] is not None and "bm25" in reranked[0].scores


def test_pipeline_uses_the_reranker_when_configured(tiny_index: Any, embedder: Any, tiny_cross_encoder: Path) -> None:
    settings = Settings(rerank_model=str(tiny_cross_encoder), rerank_candidates=5)
    p = RAGPipeline(tiny_index, embedder, build_generator(settings, tiny_index), settings)
    answer = p.ask("感冒怎么办", top_k=3, trace=True)
    assert "rerank_ms" in answer.timings and len(answer.passages) <= 3
    assert all("rerank" in h.scores for h in answer.passages)
    assert answer.trace["rerank"] == str(tiny_cross_encoder)
    off = Settings()
    assert RAGPipeline(tiny_index, embedder, build_generator(off, tiny_index), off).reranker is None


def test_reranking_retriever_rescores_the_head_and_keeps_the_tail(tiny_index: Any, embedder: Any,
                                                                   tiny_cross_encoder: Path) -> None:
    from rag.rerank import RerankingRetriever

    base = make_retrievers(tiny_index, embedder)["hybrid"]
    fused = base.search("感冒怎么办", 6)
    reranker = CrossEncoderReranker(RerankConfig(str(tiny_cross_encoder)))
    wrapped = RerankingRetriever(base, reranker, candidates=3)
    got = wrapped.batch_search(["感冒怎么办"], top_k=6)[0]
    assert wrapped.name == "hybrid+rerank" and len(got) == len(fused)
    # The first three are the fused top three in cross-encoder order; the rest keep their fused order below.
    assert {h.passage.chunk_id for h in got[:3]} == {h.passage.chunk_id for h in fused[:3]}
    assert [h.passage.chunk_id for h in got[3:]] == [h.passage.chunk_id for h in fused[3:]]
    assert [h.rank for h in got] == list(range(1, len(got) + 1))
    assert all(a.score > b.score for a, b in itertools.pairwise(got))
