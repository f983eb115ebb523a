"""The LangChain comparison pipeline: its quality path ranks exactly as its own ``invoke`` does."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.langchain_pipeline import LangChainEnsemble, build_faiss
from indexer.build import index_text
from indexer.chunking import Chunker
from indexer.embedding import SentenceTransformerEmbedder, resolve_model_path
from indexer.loaders import load_corpus


@pytest.fixture(scope="module")
def ensemble(tiny_corpus: Path, embedder: SentenceTransformerEmbedder) -> LangChainEnsemble:
    passages = Chunker().run(load_corpus([tiny_corpus]))
    texts = [index_text(p, True) for p in passages]
    store = build_faiss(texts, resolve_model_path(embedder.config.model, embedder.config.cache_dir))
    return LangChainEnsemble(store, texts, passages, k=5)


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_memoised_batch_search_equals_invoke(ensemble: LangChainEnsemble, mode: str) -> None:
    queries = ["感冒了怎么办", "高血压吃什么药", "孩子发烧", "感冒了怎么办"]
    view = ensemble.view(mode)
    batched = view.batch_search(queries, top_k=5)
    one_by_one = [view.search(q, top_k=5) for q in queries]
    as_ids = [[h.passage.chunk_id for h in hits] for hits in batched]
    assert as_ids == [[h.passage.chunk_id for h in hits] for hits in one_by_one]
    assert all(as_ids) and as_ids[0] == as_ids[3]
    if mode == "hybrid":  # the fusion merges both lists: the union of their passages, each once
        for q in queries:
            rows = [d.metadata["row"] for d in ensemble.documents("hybrid", q)]
            parts = {d.metadata["row"] for m in ("bm25", "dense") for d in ensemble.documents(m, q)}
            assert len(rows) == len(set(rows)) and set(rows) == parts
