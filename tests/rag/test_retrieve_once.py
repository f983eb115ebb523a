"""Each ask searches every store once; abstention reads the same retrieval's runs."""

from __future__ import annotations

import dataclasses
from typing import Any

from indexer.stores import DenseStore, SparseIndex
from rag.pipeline import RAGPipeline, build_generator
from rag.retrievers import make_retrievers
from rag.settings import Settings


class Counted:
    """Any store behind the protocol, counting searches (a second backend would plug in the same way)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.searches = inner, 0

    def search(self, *args: Any) -> Any:
        self.searches += 1
        return self.inner.search(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_one_search_per_store_per_ask(tiny_index: Any, embedder: Any) -> None:
    dense, sparse = Counted(tiny_index.dense), Counted(tiny_index.sparse)
    assert isinstance(dense, DenseStore) and isinstance(sparse, SparseIndex)
    index = dataclasses.replace(tiny_index, dense=dense, sparse=sparse)
    settings = Settings()
    p = RAGPipeline(index, embedder, build_generator(settings, index), settings)
    answer = p.ask("血压高要少吃盐吗")
    assert (dense.searches, sparse.searches) == (1, 1)
    assert answer.passages[0].passage.doc_id == "htn"

    # The features equal those computed from each retriever's own top-5 search (with the pipeline's query-side
    # term normalisation, which adds medical terms to the BM25 query).
    own = make_retrievers(tiny_index, embedder, normaliser=p.normaliser)
    runs = {name: own[name].search("血压高要少吃盐吗", 5) for name in ("bm25", "dense")}
    assert answer.abstention.features == p.abstainer.features("血压高要少吃盐吗", runs)
    for mode in ("bm25", "dense"):
        hits = p.ask("血压高要少吃盐吗", mode=mode, top_k=3).passages
        expected = own[mode].search("血压高要少吃盐吗", 3)
        assert [h.passage.chunk_id for h in hits] == [h.passage.chunk_id for h in expected]
