"""The grounded QA pipeline: retrieve → fuse → pack the ChiMed prompt → generate → cite."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from indexer.embedding import Embedder, SentenceTransformerEmbedder
from indexer.index_dir import LoadedIndex, check_embedding, open_index
from rag.citations import cite
from rag.condense import Condenser, LLMCondenser, NoCondenser, RuleCondenser, TopicFinder
from rag.prompt import PromptBuilder
from rag.protocols import GenerationRequest, Generator, Retriever
from rag.retrievers import MODES, make_retrievers
from rag.settings import Settings
from rag.types import Answer, Hit, Turn

# ChiMed-GPT's own README warns that it is not a doctor; every answer carries that warning.
DISCLAIMER = (
    "本回答由人工智能根据参考资料自动生成，仅供健康科普参考，不能替代执业医生的诊断和治疗建议。"
    "ChiMed-GPT 不是医生；如有身体不适、症状加重或任何疑问，请及时到正规医疗机构就医，紧急情况请拨打 120。"
)


class _Timer:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    def stage(self, name: str, start: float) -> float:
        now = time.perf_counter()
        self.timings[f"{name}_ms"] = round((now - start) * 1000, 2)
        return now


@dataclass(frozen=True)
class SearchResult:
    hits: list[Hit]
    timings: dict[str, float]


class RAGPipeline:
    def __init__(self, index: LoadedIndex, embedder: Embedder, generator: Generator, settings: Settings) -> None:
        check_embedding(index.manifest, embedder.describe())
        self.index = index
        self.embedder = embedder
        self.generator = generator
        self.settings = settings
        self.retrievers: dict[str, Retriever] = make_retrievers(index, embedder, settings.hybrid_config())  # type: ignore[assignment]
        self.prompts = PromptBuilder(generator.count_tokens, generator.context_window, generator.max_new_tokens)
        self.condenser = make_condenser(settings, index, generator)

    @classmethod
    def from_settings(cls, settings: Settings) -> RAGPipeline:
        index = open_index(settings.index_dir)
        embedder = SentenceTransformerEmbedder(settings.embedder_config())
        return cls(index, embedder, build_generator(settings, index), settings)

    def index_info(self) -> dict[str, Any]:
        m = self.index.manifest
        return {"id": m["index_id"], "built_at": m["created_at"], "model": m["embedding"]["model"],
                "documents": m["counts"]["documents"], "chunks": m["counts"]["chunks"]}

    def answer_json(self, answer: Answer) -> dict[str, Any]:
        """The /v1/ask response body: the one serialisation the API, the OpenAI route and LangChain share."""
        return {
            "answer": answer.answer,
            "sentences": [{"text": s.text, "citations": [c.to_json() for c in s.citations]}
                          for s in answer.sentences],
            "citations": [c.to_json() for c in answer.citations],
            "passages": [h.to_json() for h in answer.passages],
            "dropped_markers": list(answer.dropped_markers),
            "generator": answer.generator,
            "standalone_query": answer.standalone_query,
            "index": self.index_info(),
            "disclaimer": DISCLAIMER,
            "timings": answer.timings,
        }

    def search(self, query: str, top_k: int | None = None, mode: str | None = None) -> SearchResult:
        mode = mode or self.settings.default_mode
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
        timer = _Timer()
        start = time.perf_counter()
        hits = self.retrievers[mode].search(query, top_k or self.settings.default_top_k)
        timer.stage("retrieve", start)
        return SearchResult(hits, timer.timings)

    def ask(self, question: str, history: Sequence[Turn] = (), top_k: int | None = None,
            mode: str | None = None, options: dict[str, Any] | None = None) -> Answer:
        """The answer, produced by draining :meth:`ask_stream` (one code path for both)."""
        final: Answer | None = None
        for item in self.ask_stream(question, history, top_k, mode, options):
            if isinstance(item, Answer):
                final = item
        assert final is not None  # ask_stream always ends with the answer
        return final

    def ask_stream(self, question: str, history: Sequence[Turn] = (), top_k: int | None = None,
                   mode: str | None = None, options: dict[str, Any] | None = None) -> Iterator[str | Answer]:
        """Retrieve and pack the prompt now (errors raise here), then yield text pieces, then the Answer."""
        start = time.perf_counter()
        timer = _Timer()
        t = time.perf_counter()
        query = self.condenser.condense(question, history) if history else question
        t = timer.stage("condense", t)
        found = self.search(query, top_k or self.settings.prompt_passages, mode)
        timer.timings.update(found.timings)
        t = time.perf_counter()
        packed = self.prompts.build(question, found.hits, history)
        timer.stage("prompt", t)
        request = GenerationRequest(packed.text, question, packed.hits, options or {})
        return self._generate(request, question, query, packed.tokens, timer, start)

    def _generate(self, request: GenerationRequest, question: str, query: str, prompt_tokens: int,
                  timer: _Timer, start: float) -> Iterator[str | Answer]:
        t = time.perf_counter()
        pieces: list[str] = []
        for piece in self.generator.stream(request):
            pieces.append(piece)
            yield piece
        t = timer.stage("generate", t)
        cited = cite("".join(pieces).strip(), request.passages)
        timer.stage("cite", t)
        timer.stage("total", start)
        yield Answer(
            question=question, answer=cited.answer, sentences=cited.sentences, citations=cited.citations,
            passages=request.passages, generator=self.generator.name, dropped_markers=cited.dropped_markers,
            timings=timer.timings, prompt_tokens=prompt_tokens, standalone_query=query,
        )


def make_condenser(settings: Settings, index: LoadedIndex, generator: Generator) -> Condenser:
    if settings.condense == "off":
        return NoCondenser()
    titles = {p.title for p in index.passages}
    rules = RuleCondenser(TopicFinder(titles, index.analyzer.lexicon))
    use_llm = settings.condense == "llm" or (settings.condense == "auto" and generator.name != "extractive")
    if use_llm:
        return LLMCondenser(generator, rules, settings.condense_max_new_tokens)
    return rules


def build_generator(settings: Settings, index: LoadedIndex) -> Generator:
    if settings.generator == "openai":
        from rag.generators.openai_backend import OpenAIGenerator

        return OpenAIGenerator(settings.openai_config())
    if settings.generator == "transformers":
        from rag.generators.transformers_llm import TransformersGenerator

        return TransformersGenerator(settings.llm_config())
    from rag.generators.extractive import ExtractiveGenerator

    return ExtractiveGenerator(index.analyzer.tokenize, settings.extractive_config())
