"""The ``openai`` generator backend against a real OpenAI-compatible server on loopback.

The server is a second ``chimed-rag serve`` running the transformers backend on a real small LLaMA
(SmolLM2-135M): its /v1/completions takes a raw prompt as vLLM's does (completions mode, the default, used
for ChiMed-GPT) and its /v1/chat/completions serves chat mode. llama-cpp-python has no binary wheel here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from rag.generators.openai_backend import OpenAIConfig, OpenAIGenerator
from rag.pipeline import RAGPipeline
from rag.prompt import render
from rag.protocols import GenerationRequest, Generator
from rag.settings import Settings
from rag.types import Turn
from tests.api.conftest import running_server


@pytest.fixture(scope="module")
def llm_server(tiny_index: Any, tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = {"CHIMED_RAG_GENERATOR": "transformers", "CHIMED_RAG_LLM_MODEL": str(tiny_llama),
           "CHIMED_RAG_LLM_MAX_NEW_TOKENS": "24", "CHIMED_RAG_LLM_DO_SAMPLE": "false",
           "CHIMED_RAG_MAX_QUESTION_CHARS": "8000", "CHIMED_RAG_SERVED_MODEL_NAME": "smollm2",
           "CHIMED_RAG_CONDENSE": "off", "CHIMED_RAG_RAW_COMPLETIONS": "true",  # it stands in for vLLM
           "CHIMED_RAG_AUDIT_SECRET_FILE": str(tmp_path_factory.mktemp("llm-audit") / "audit.key")}
    with running_server(tiny_index.path, tmp_path_factory.mktemp("llm") / "server.log", env) as base:
        yield f"{base}/v1"


@pytest.fixture(scope="module")
def backend(llm_server: str) -> OpenAIGenerator:
    return OpenAIGenerator(OpenAIConfig(base_url=llm_server, model="smollm2", mode="chat", max_new_tokens=16,
                                        do_sample=False, timeout=120))


def request(tiny_index: Any) -> GenerationRequest:
    hits = ()
    return GenerationRequest(render("感冒怎么处理？", hits), "感冒怎么处理？", hits)


def test_generate_and_stream_agree(backend: OpenAIGenerator, tiny_index: Any) -> None:
    assert isinstance(backend, Generator) and backend.name == "openai:smollm2"
    text = backend.generate(request(tiny_index))
    assert isinstance(text, str) and text
    pieces = list(backend.stream(request(tiny_index)))
    assert len(pieces) >= 2 and "".join(pieces).strip() == text


def test_token_count_bounds_from_above_without_a_tokenizer(backend: OpenAIGenerator, tiny_llama: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    text = render("高血压要吃什么药？", ())
    assert backend.count_tokens(text) >= len(tokenizer(text)["input_ids"])
    with_tokenizer = OpenAIGenerator(OpenAIConfig(base_url=backend.config.base_url, tokenizer=str(tiny_llama)))
    assert with_tokenizer.count_tokens(text) == len(tokenizer(text, add_special_tokens=True)["input_ids"])


def test_unknown_model_and_dead_server_are_clear_errors(llm_server: str, tiny_index: Any) -> None:
    wrong = OpenAIGenerator(OpenAIConfig(base_url=llm_server, model="nope", mode="chat"))
    with pytest.raises(openai.NotFoundError):
        wrong.generate(request(tiny_index))
    dead = OpenAIGenerator(OpenAIConfig(base_url="http://127.0.0.1:9/v1", mode="chat", timeout=5))
    with pytest.raises(openai.APIConnectionError):
        dead.generate(request(tiny_index))


def test_pipeline_on_the_openai_backend_rewrites_follow_ups_with_the_llm(llm_server: str, tiny_index: Any,
                                                                        embedder: Any) -> None:
    settings = Settings(generator="openai", llm_api_base=llm_server, llm_api_model="smollm2",
                        llm_api_mode="chat", llm_max_new_tokens=16, llm_do_sample=False)
    pipeline = RAGPipeline(tiny_index, embedder, OpenAIGenerator(settings.openai_config()), settings)
    assert pipeline.condenser.name == "llm"
    history = [Turn("普通感冒了怎么办", "多休息[1]。")]
    answer = pipeline.ask("那要吃什么药", history)
    assert answer.generator == "openai:smollm2" and answer.passages
    assert answer.standalone_query  # whatever the tiny model wrote, or the rules if it wrote nothing usable
    streamed = list(pipeline.ask_stream("那要吃什么药", history))
    assert streamed[-1].answer == answer.answer  # type: ignore[union-attr]


def test_completions_mode_sends_the_chimed_prompt_as_is(llm_server: str, tiny_index: Any, tiny_llama: Path) -> None:
    from rag.generators.transformers_llm import LLMConfig, TransformersGenerator

    backend = OpenAIGenerator(OpenAIConfig(base_url=llm_server, model="smollm2", mode="completions",
                                           max_new_tokens=16, do_sample=False, timeout=120))
    text = backend.generate(request(tiny_index))
    assert isinstance(text, str) and text
    assert "".join(backend.stream(request(tiny_index))).strip() == text
    # The server ran the raw prompt through the same greedy model: the same words come back.
    local = TransformersGenerator(LLMConfig(model=str(tiny_llama), max_new_tokens=16, do_sample=False))
    assert local.generate(request(tiny_index)) == text


def test_completions_endpoint_rejects_bad_requests(llm_server: str) -> None:
    import httpx

    base = llm_server.removesuffix("/v1")
    assert httpx.post(f"{base}/v1/completions", json={"model": "smollm2", "prompt": "  "}).status_code == 400
    assert httpx.post(f"{base}/v1/completions", json={"model": "nope", "prompt": "x"}).status_code == 404
