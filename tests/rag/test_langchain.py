"""The LangChain retriever and answer chain over a real index (one code path with the pipeline)."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.documents import Document

from rag.langchain import ChiMedRetriever, answer_chain
from rag.pipeline import RAGPipeline, build_generator
from rag.settings import Settings


@pytest.fixture(scope="module")
def pipeline(tiny_index: Any, embedder: Any) -> RAGPipeline:
    settings = Settings()
    return RAGPipeline(tiny_index, embedder, build_generator(settings, tiny_index), settings)


def test_retriever_returns_documents_with_every_score(pipeline: RAGPipeline) -> None:
    docs = ChiMedRetriever(pipeline=pipeline, top_k=3).invoke("拉肚子怎么办")
    assert len(docs) == 3 and all(isinstance(d, Document) for d in docs)
    top = docs[0]
    assert top.metadata["doc_id"] == "diarrhea" and top.metadata["title"] == "急性腹泻"
    assert set(top.metadata["scores"]) == {"bm25", "dense"}
    assert top.metadata["bm25_score"] == top.metadata["scores"]["bm25"]
    hits = pipeline.search("拉肚子怎么办", 3).hits
    for doc, hit in zip(docs, hits, strict=True):
        assert doc.id == doc.metadata["chunk_id"] == hit.passage.chunk_id
        assert doc.page_content == hit.passage.text and doc.metadata["span"] == list(hit.passage.span)
        assert doc.metadata["source"] == hit.passage.source and doc.metadata["score"] == hit.score
    dense = ChiMedRetriever(pipeline=pipeline, mode="dense", top_k=2).invoke("拉肚子怎么办")
    assert dense[0].metadata["scores"]["bm25"] is None


def test_chain_returns_the_api_answer_object(pipeline: RAGPipeline) -> None:
    chain = answer_chain(pipeline)
    out = chain.invoke("腹泻要注意什么？")
    direct = pipeline.answer_json(pipeline.ask("腹泻要注意什么？"))
    out.pop("timings"), direct.pop("timings")
    assert out == direct and out["citations"]
    follow = chain.invoke({"question": "那要去医院吗", "history": [{"question": "腹泻怎么办", "answer": "补液[1]。"}]})
    assert follow["standalone_query"] == "腹泻要去医院吗"
    with pytest.raises(ValueError, match="question"):
        chain.invoke({"query": "x"})
