"""LangChain integration: a retriever returning ``Document``s and a runnable answer chain.

Both call :class:`~rag.pipeline.RAGPipeline` (one code path): the chain's output is exactly the /v1/ask
body (same condensing, prompt, generator and citation parsing), so a notebook sees what the API serves.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableLambda
from pydantic import ConfigDict

from rag.pipeline import RAGPipeline
from rag.types import Hit, Turn


def hit_to_document(hit: Hit) -> Document:
    p = hit.passage
    metadata: dict[str, Any] = {
        "chunk_id": p.chunk_id, "doc_id": p.doc_id, "title": p.title, "source": p.source, "url": p.url,
        "span": list(p.span), "score": hit.score, "rank": hit.rank, "scores": dict(hit.scores),
        "locator": p.locator().to_json(),
    }
    metadata["where"] = metadata["locator"]["label"]  # flat, for filters that look one level deep
    # Flat copies too, for vector-store style filters that only look one level deep.
    metadata.update({f"{name}_score": value for name, value in hit.scores.items()})
    return Document(page_content=p.text, metadata=metadata, id=p.chunk_id)


class ChiMedRetriever(BaseRetriever):
    """The pipeline's bm25 / dense / hybrid retrieval as a LangChain retriever."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    pipeline: RAGPipeline
    mode: str | None = None  # the pipeline's default mode when None
    top_k: int | None = None

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return [hit_to_document(h) for h in self.pipeline.search(query, self.top_k, self.mode).hits]


def _parse(value: str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(value, str):
        return {"question": value}
    if "question" not in value:
        raise ValueError("the chain's input is a question string or a dict with 'question'")
    return value


def answer_chain(pipeline: RAGPipeline, mode: str | None = None, top_k: int | None = None) -> Runnable[Any, Any]:
    """A runnable: ``"问题"`` or ``{"question", "history"?: [{question, answer}], "mode"?, "top_k"?}`` → the
    /v1/ask answer object."""

    def run(value: str | dict[str, Any]) -> dict[str, Any]:
        body = _parse(value)
        history = [Turn(t["question"], t["answer"]) for t in body.get("history", [])]
        answer = pipeline.ask(body["question"].strip(), history, body.get("top_k", top_k), body.get("mode", mode))
        return pipeline.answer_json(answer)

    return RunnableLambda(run, name="chimed_rag_answer")
