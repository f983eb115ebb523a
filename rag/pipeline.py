"""The grounded QA pipeline: retrieve → fuse → pack the ChiMed prompt → generate → cite."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from indexer.embedding import Embedder, SentenceTransformerEmbedder
from indexer.index_dir import LoadedIndex, check_embedding, open_index
from rag.abstention import Abstainer, Abstention, AbstentionConfig, Calibration
from rag.audit import AuditLog, candidates_json, sha256
from rag.citations import cite
from rag.prompt import PromptBuilder
from rag.protocols import GenerationRequest, Generator, Retriever
from rag.retrievers import MODES, make_retrievers
from rag.settings import Settings
from rag.support import SupportChecker, render
from rag.triage import Safety, Triage, mentions_dose
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
        self.triage = Triage()
        self.support = SupportChecker(index.analyzer.tokenize, embedder, settings.support_config())
        self.abstainer = Abstainer(self.retrievers["bm25"], self.retrievers["dense"], index.analyzer.tokenize,
                                   frozenset(index.analyzer.lexicon.user_words), self._abstention_config())
        self.audit = AuditLog(settings.audit_log, settings.audit_log_questions)
        self.reranker = self._reranker()

    def _abstention_config(self) -> AbstentionConfig:
        """Settings win; else the calibration `chimed-rag calibrate` stored next to this index."""
        s = self.settings
        if s.abstention_coef is not None:
            return AbstentionConfig(tuple(s.abstention_coef), s.abstention_intercept, s.abstention_threshold)
        stored = Calibration.load(self.index.path)
        if stored is not None and stored.index_id == self.index.index_id:
            return stored.config()
        return AbstentionConfig()

    def _reranker(self) -> Any:
        if not self.settings.rerank_model:
            return None
        from rag.rerank import CrossEncoderReranker, RerankConfig

        return CrossEncoderReranker(RerankConfig(self.settings.rerank_model, self.settings.rerank_candidates,
                                                 self.settings.device))

    @classmethod
    def from_settings(cls, settings: Settings) -> RAGPipeline:
        index = open_index(settings.index_dir)
        embedder = SentenceTransformerEmbedder(settings.embedder_config())
        check_embedding(index.manifest, embedder.describe())
        return cls(index, embedder, build_generator(settings, index), settings)

    def index_info(self) -> dict[str, Any]:
        m = self.index.manifest
        return {"id": m["index_id"], "built_at": m["created_at"], "model": m["embedding"]["model"],
                "documents": m["counts"]["documents"], "chunks": m["counts"]["chunks"]}

    def search(self, query: str, top_k: int | None = None, mode: str | None = None) -> SearchResult:
        mode = mode or self.settings.default_mode
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
        timer = _Timer()
        start = time.perf_counter()
        hits = self.retrievers[mode].search(query, top_k or self.settings.default_top_k)
        timer.stage("retrieve", start)
        return SearchResult(hits, timer.timings)

    def retrieve(self, question: str, top_k: int, mode: str | None) -> SearchResult:
        """Search, then rerank when a cross-encoder is configured."""
        if self.reranker is None:
            return self.search(question, top_k, mode)
        found = self.search(question, max(top_k, self.settings.rerank_candidates), mode)
        start = time.perf_counter()
        hits = self.reranker.rerank(question, found.hits, top_k)
        return SearchResult(hits, {**found.timings, "rerank_ms": round((time.perf_counter() - start) * 1000, 2)})

    def ask(self, question: str, history: Sequence[Turn] = (), top_k: int | None = None,
            mode: str | None = None, options: dict[str, Any] | None = None, strict: bool | None = None,
            trace: bool = False) -> Answer:
        start = time.perf_counter()
        timer = _Timer()
        safety = self.triage.assess(question) if self.settings.triage else Safety("routine")
        t = timer.stage("triage", start)
        abstention = self.abstainer.decide(question) if self.settings.abstention else None
        t = timer.stage("abstain", t)
        found = self.retrieve(question, top_k or self.settings.prompt_passages, mode)
        timer.timings.update(found.timings)
        if abstention is not None and abstention.abstain:
            answer = self._abstained(question, found.hits, safety, abstention, timer)
        else:
            answer = self._generated(question, history, found.hits, safety, abstention, options, strict, timer)
        timer.stage("total", start)
        logged = self.audit.record(self._trace(answer, mode), question)
        return replace(answer, timings=timer.timings, trace=logged if trace else None)

    def _abstained(self, question: str, hits: list[Hit], safety: Safety, abstention: Abstention,
                   timer: _Timer) -> Answer:
        # No generator call: with this little evidence a fluent answer would be an unsupported one.
        return Answer(question=question, answer=_with_advice(safety, abstention.message), sentences=(),
                      citations=(), passages=tuple(hits), generator="none", timings=timer.timings,
                      safety=safety, abstention=abstention)

    def _generated(self, question: str, history: Sequence[Turn], hits: list[Hit], safety: Safety,
                   abstention: Abstention | None, options: dict[str, Any] | None, strict: bool | None,
                   timer: _Timer) -> Answer:
        t = time.perf_counter()
        packed = self.prompts.build(question, hits, history)
        t = timer.stage("prompt", t)
        request = GenerationRequest(packed.text, question, packed.hits, options or {})
        text = self.generator.generate(request)
        t = timer.stage("generate", t)
        cited = cite(text, packed.hits)
        t = timer.stage("cite", t)
        sentences, notes = list(cited.sentences), []
        if safety.dose_request:
            kept = [s for s in sentences if not mentions_dose(s.text)]
            if len(kept) < len(sentences):
                notes.append(f"已省略 {len(sentences) - len(kept)} 句含具体剂量的内容："
                             "个体用药剂量请遵医嘱或咨询药师。")
            sentences = kept
        checked = self.support.check(sentences, packed.hits, strict)
        if checked.dropped:
            notes.append(f"严格模式：已删除 {len(checked.dropped)} 句参考资料不支持的内容。")
        timer.stage("support", t)
        changed = checked.sentences != cited.sentences
        body = render(checked.sentences) if changed else cited.answer
        citations = tuple(dict.fromkeys(c for s in checked.sentences for c in s.citations)) if changed \
            else cited.citations
        return Answer(
            question=question, answer=_with_advice(safety, body, notes), sentences=checked.sentences,
            citations=citations,
            passages=packed.hits, generator=self.generator.name, dropped_markers=cited.dropped_markers,
            timings=timer.timings, prompt_tokens=packed.tokens, safety=safety, support=checked.support,
            abstention=abstention, notes=tuple(notes),
            trace={"prompt_sha256": sha256(packed.text), "prompt_tokens": packed.tokens},
        )

    def _trace(self, answer: Answer, mode: str | None) -> dict[str, Any]:
        s = self.settings
        return {
            "index_id": self.index.index_id, "mode": mode or s.default_mode,
            "fusion": {"method": s.fusion, "bm25_weight": s.bm25_weight, "candidates": s.fusion_candidates},
            "rerank": s.rerank_model, "candidates": candidates_json(answer.passages),
            "prompt_sha256": (answer.trace or {}).get("prompt_sha256"), "prompt_tokens": answer.prompt_tokens,
            "generator": {"name": answer.generator,
                          **(self.generator.describe() if answer.generator != "none" else {})},
            "safety": answer.safety.to_json() if answer.safety else None,
            "abstention": answer.abstention.to_json() if answer.abstention else None,
            "support": [x.label for x in answer.support], "notes": list(answer.notes),
            "timings": dict(answer.timings),
        }


def _with_advice(safety: Safety, body: str, notes: Sequence[str] = ()) -> str:
    """Safety advice goes before the answer, notes on changes after it."""
    parts = [f"【安全提示】{safety.advice}"] if safety.advice else []
    parts.append(body)
    parts.extend(notes)
    return "\n\n".join(p for p in parts if p)


def build_generator(settings: Settings, index: LoadedIndex) -> Generator:
    if settings.generator == "transformers":
        from rag.generators.transformers_llm import TransformersGenerator

        return TransformersGenerator(settings.llm_config())
    from rag.generators.extractive import ExtractiveGenerator

    return ExtractiveGenerator(index.analyzer.tokenize, settings.extractive_config())
