"""The official ``openai`` client against our /v1/chat/completions and /v1/models (real server process)."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI


@pytest.fixture(scope="module")
def client(server: str) -> OpenAI:
    return OpenAI(base_url=f"{server}/v1", api_key="unused", max_retries=0, timeout=60)


def test_models_lists_the_served_model(client: OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["chimed-rag"]


def test_non_streaming_answer_carries_citations(client: OpenAI, server: str) -> None:
    completion = client.chat.completions.create(
        model="chimed-rag", messages=[{"role": "system", "content": "你是助手"},
                                      {"role": "user", "content": "感冒怎么处理？"}])
    message = completion.choices[0].message
    assert completion.object == "chat.completion" and completion.choices[0].finish_reason == "stop"
    extra: dict[str, Any] = message.model_extra or {}
    ask = httpx.post(f"{server}/v1/ask", json={"question": "感冒怎么处理？"}, timeout=60).json()
    # content is self-contained for plain chat UIs: the answer, its numbered sources, the disclaimer.
    assert message.content is not None and message.content.startswith(ask["answer"] + "\n\n参考资料：\n")
    assert message.content.endswith(ask["disclaimer"])
    for citation in ask["citations"]:
        assert f"[{citation['marker']}] 《{citation['title']}》" in message.content
    assert extra["citations"] == ask["citations"] and extra["citations"]
    assert extra["chimed_rag"]["passages"] == ask["passages"]
    assert completion.usage is not None and completion.usage.prompt_tokens > 0


def test_streaming_sends_text_then_citations_in_the_final_chunk(client: OpenAI) -> None:
    chunks = list(client.chat.completions.create(
        model="chimed-rag", stream=True, messages=[{"role": "user", "content": "感冒怎么处理？"}]))
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    final = chunks[-1]
    assert final.choices[0].finish_reason == "stop"
    extra: dict[str, Any] = final.model_extra or {}
    answer = extra["chimed_rag"]["answer"]
    assert text.startswith(answer + "\n\n参考资料：\n[") and text.endswith(extra["chimed_rag"]["disclaimer"])
    assert extra["citations"] and all(c["chunk_id"] for c in extra["citations"])
    assert len(chunks) >= 4  # role chunk, several text pieces, final chunk


def test_strict_and_trace_pass_through_extra_body(client: OpenAI) -> None:
    completion = client.chat.completions.create(
        model="chimed-rag", messages=[{"role": "user", "content": "感冒怎么处理？"}],
        extra_body={"strict": True, "trace": True})
    body: dict[str, Any] = (completion.choices[0].message.model_extra or {})["chimed_rag"]
    assert body["trace"]["index_id"] == body["index"]["id"] and body["trace"]["candidates"]
    assert body["trace"]["strict"] is True
    assert all(s["support"]["label"] != "unsupported" for s in body["sentences"])
    plain = client.chat.completions.create(model="chimed-rag", messages=[{"role": "user", "content": "头痛"}])
    assert (plain.choices[0].message.model_extra or {})["chimed_rag"]["trace"] is None


def test_conversation_becomes_history_and_a_standalone_query(client: OpenAI) -> None:
    completion = client.chat.completions.create(model="chimed-rag", messages=[
        {"role": "user", "content": "高血压是什么"},
        {"role": "assistant", "content": "高血压是血压持续升高。"},
        {"role": "user", "content": [{"type": "text", "text": "那要吃什么药"}]},
    ])
    extra: dict[str, Any] = completion.choices[0].message.model_extra or {}
    assert extra["chimed_rag"]["standalone_query"] == "高血压要吃什么药"


def test_a_sent_back_answer_loses_its_footer_in_the_history(client: OpenAI) -> None:
    first = client.chat.completions.create(model="chimed-rag", messages=[{"role": "user", "content": "高血压是什么"}])
    said = first.choices[0].message.content or ""
    assert "参考资料：" in said
    second = client.chat.completions.create(model="chimed-rag", messages=[
        {"role": "user", "content": "高血压是什么"}, {"role": "assistant", "content": said},
        {"role": "user", "content": "那要吃什么药"}], extra_body={"trace": True})
    body = (second.choices[0].message.model_extra or {})["chimed_rag"]
    assert body["standalone_query"] == "高血压要吃什么药"


def test_footer_parts_can_be_turned_off(corpus_index: Any, embedder: Any) -> None:
    from api.openai_compat import content
    from rag.pipeline import DISCLAIMER, RAGPipeline, build_generator
    from rag.settings import Settings

    settings = Settings()
    pipeline = RAGPipeline(corpus_index, embedder, build_generator(settings, corpus_index), settings)
    answer = pipeline.ask("感冒怎么处理？")
    assert answer.citations
    full = content(answer, settings)
    assert full.startswith(answer.answer) and "参考资料：\n[1] 《" in full and full.endswith(DISCLAIMER)
    bare = content(answer, Settings(openai_content_sources=False, openai_content_disclaimer=False))
    assert bare == answer.answer
    no_sources = content(answer, Settings(openai_content_sources=False))
    assert "参考资料：" not in no_sources and no_sources.endswith(DISCLAIMER)


def test_errors_reach_the_client_as_api_errors(client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "头痛"}])
    with pytest.raises(openai.BadRequestError, match="must be from the user"):
        client.chat.completions.create(model="chimed-rag", messages=[{"role": "assistant", "content": "好"}])
    with pytest.raises(openai.BadRequestError, match="must not be empty"):
        client.chat.completions.create(model="chimed-rag", messages=[{"role": "user", "content": "  "}])


def test_langchain_chain_gives_the_same_object_as_the_server(server: str, corpus_index: Any, embedder: Any) -> None:
    from rag.langchain import answer_chain
    from rag.pipeline import RAGPipeline, build_generator
    from rag.settings import Settings

    settings = Settings()
    pipeline = RAGPipeline(corpus_index, embedder, build_generator(settings, corpus_index), settings)
    out = answer_chain(pipeline).invoke("高血压吃什么药")
    served = httpx.post(f"{server}/v1/ask", json={"question": "高血压吃什么药"}, timeout=60).json()
    out.pop("timings"), served.pop("timings")
    assert out == served


def test_raw_completions_are_off_unless_enabled(server: str) -> None:
    import httpx

    # A raw-LLM proxy skips triage and the disclaimer: CHIMED_RAG_RAW_COMPLETIONS turns it on
    # (tests/api/test_security.py checks it then still needs a language model).
    r = httpx.post(f"{server}/v1/completions", json={"model": "chimed-rag", "prompt": "[human]:感冒\n[bot]:"})
    assert r.status_code == 404
