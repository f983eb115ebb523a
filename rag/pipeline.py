"""The grounded QA pipeline: retrieve → fuse → pack the ChiMed prompt → generate → cite."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from indexer.embedding import Embedder, SentenceTransformerEmbedder
from indexer.index_dir import LoadedIndex, check_embedding, open_index
from rag.abstention import Abstainer, Abstention, AbstentionConfig, Calibration
from rag.audit import AuditLog, candidates_json, sha256
from rag.citations import cite
from rag.condense import Condenser, LLMCondenser, NoCondenser, RuleCondenser, TopicFinder
from rag.emergency import EmergencyGuide
from rag.intent import detect
from rag.normalise import TermNormaliser, load_normaliser
from rag.prompt import PackedPrompt, PromptBuilder
from rag.protocols import GenerationRequest, Generator, Guidance, Note, Retriever
from rag.retrievers import MODES, HybridRetriever, Retrieval, make_retrievers
from rag.settings import Settings
from rag.support import SupportChecker, render
from rag.triage import Safety, Triage, mentions_dose
from rag.triage_model import TriageModel, model_encoder
from rag.types import Answer, Hit, Turn

# ChiMed-GPT's own README warns that it is not a doctor; every answer carries that warning.
DISCLAIMER = (
    "本回答由人工智能根据参考资料自动生成，仅供健康科普参考，不能替代执业医生的诊断和治疗建议。"
    "ChiMed-GPT 不是医生；如有身体不适、症状加重或任何疑问，请及时到正规医疗机构就医，紧急情况请拨打 120。"
)

log = logging.getLogger(__name__)


class _Timer:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    def stage(self, name: str, start: float) -> float:
        now = time.perf_counter()
        self.timings[f"{name}_ms"] = round((now - start) * 1000, 2)
        return now


@dataclass(frozen=True)
class _Run:
    """What one ask carries from its eager part (retrieval) to its lazy part (generation)."""

    question: str
    query: str  # the standalone query retrieval used
    mode: str | None
    trace: bool
    timer: _Timer
    start: float


@dataclass(frozen=True)
class SearchResult:
    hits: list[Hit]
    timings: dict[str, float]


class RAGPipeline:
    def __init__(self, index: LoadedIndex, embedder: Embedder, generator: Generator, settings: Settings,
                 triage: Triage | None = None) -> None:
        """``triage``: an existing one to share (it does not depend on the index, and its own encoder is a
        model load a new generation should not repeat); None: built from the settings."""
        check_embedding(index.manifest, embedder.describe())
        self.index = index
        self.embedder = embedder
        self.generator = generator
        self.settings = settings
        self.normaliser = load_normaliser(settings.colloquial)
        self.retrievers: dict[str, Retriever] = make_retrievers(index, embedder, settings.hybrid_config(),  # type: ignore[assignment]
                                                                self.normaliser)
        self.hybrid: HybridRetriever = self.retrievers["hybrid"]  # type: ignore[assignment]
        self.prompts = PromptBuilder(generator.count_tokens, generator.context_window, generator.max_new_tokens)
        self.triage = triage if triage is not None else self._triage()
        self.support = SupportChecker(index.analyzer.tokenize, embedder, settings.support_config())
        self.calibration = "missing"  # settings | fitted | missing | stale: what /healthz and /readyz report
        self.abstainer = Abstainer(index.analyzer.tokenize, frozenset(index.analyzer.lexicon.user_words),
                                   self._abstention_config())
        self.audit = AuditLog.from_settings(settings)
        self.reranker = self._reranker()
        self.condenser = make_condenser(settings, index, generator, self.normaliser)
        self.guide = EmergencyGuide(index.passages, index.analyzer.tokenize)

    def _abstention_config(self) -> AbstentionConfig:
        """Settings win; else the calibration `chimed-rag calibrate` stored next to this index."""
        s = self.settings
        if s.abstention_coef is not None:
            self.calibration = "settings"
            return AbstentionConfig(tuple(s.abstention_coef), s.abstention_intercept, s.abstention_threshold)
        stored = Calibration.load(self.index.path)
        if stored is not None and stored.index_id == self.index.index_id:
            self.calibration = "fitted"
            return stored.config()
        self.calibration = "missing" if stored is None else "stale"
        if s.abstention:
            log.warning("index %s (generation %s) has no valid abstention calibration (%s): the server will not "
                        "abstain; run 'chimed-rag calibrate'", self.index.index_id, self.index.generation,
                        self.calibration)
        return AbstentionConfig()

    def _reranker(self) -> Any:
        if not self.settings.rerank_model:
            return None
        from rag.rerank import CrossEncoderReranker, RerankConfig

        return CrossEncoderReranker(RerankConfig(self.settings.rerank_model, self.settings.rerank_candidates,
                                                 self.settings.device, cache_dir=str(self.settings.cache_dir)))

    @classmethod
    def from_settings(cls, settings: Settings) -> RAGPipeline:
        index = open_index(settings.index_dir, verify="full", store=settings.store_config(),
                           mmap=settings.index_mmap)
        embedder = SentenceTransformerEmbedder(settings.embedder_config(index.manifest["embedding"]))
        check_embedding(index.manifest, embedder.describe(), embedder.fallback_reason)
        return cls(index, embedder, build_generator(settings, index), settings)

    def _triage(self) -> Triage:
        """Rules, plus the learned backstop: its own fine-tuned encoder on this pipeline's encoder backend."""
        model = TriageModel.load(self.settings.triage_model) if self.settings.triage_model else None
        if model is None:
            return Triage()
        encoder = model_encoder(model, self.settings.embedder_config(self.embedder.describe()))
        return Triage(model=model, embed=encoder.embed_queries)

    def index_info(self) -> dict[str, Any]:
        m = self.index.manifest
        return {"id": m["index_id"], "generation": self.index.generation, "built_at": m["created_at"],
                "model": m["embedding"]["model"], "documents": m["counts"]["documents"],
                "chunks": m["counts"]["chunks"], "calibration": self.calibration}

    def answer_json(self, answer: Answer) -> dict[str, Any]:
        """The /v1/ask response body: the one serialisation the API, the OpenAI route and LangChain share."""
        support = list(answer.support) + [None] * (len(answer.sentences) - len(answer.support))
        return {
            "safety": answer.safety.to_json() if answer.safety else None,
            "answer": answer.answer,
            "sentences": [{"text": s.text, "citations": [c.to_json() for c in s.citations],
                           "support": x.to_json() if x else None} for s, x in zip(answer.sentences, support)],
            "citations": [c.to_json() for c in answer.citations],
            "passages": [h.to_json() for h in answer.passages],
            "dropped_markers": list(answer.dropped_markers),
            "generator": answer.generator,
            "standalone_query": answer.standalone_query,
            "index": self.index_info(),
            "disclaimer": DISCLAIMER,
            "timings": answer.timings,
            "abstention": answer.abstention.to_json() if answer.abstention else None,
            "notes": list(answer.notes),
            "trace": answer.trace,
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

    def evidence(self, queries: Sequence[str], top_k: int) -> list[Retrieval]:
        """One retrieval per query by every member retriever: the answer's passages and the abstention
        features both come from it."""
        return self.hybrid.retrieve(queries, top_k)

    def abstention_features(self, questions: Sequence[str]) -> list[dict[str, float]]:
        """What `chimed-rag calibrate` fits on: the same features an ask computes."""
        k = self.abstainer.config.probe_k
        return [self.abstainer.features(q, r.runs) for q, r in zip(questions, self.evidence(questions, k))]

    def retrieve(self, question: str, top_k: int, mode: str | None) -> tuple[SearchResult, Retrieval]:
        """The mode's ranking from one retrieval (reranked when a cross-encoder is configured)."""
        mode = mode or self.settings.default_mode
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
        wanted = max(top_k, self.settings.rerank_candidates) if self.reranker else top_k
        start = time.perf_counter()
        retrieval = self.evidence([question], wanted)[0]
        hits = retrieval.hits if mode == "hybrid" else retrieval.runs[mode][:wanted]
        timings = {"retrieve_ms": round((time.perf_counter() - start) * 1000, 2)}
        if self.reranker is not None:
            start = time.perf_counter()
            hits = self.reranker.rerank(question, hits, top_k)
            timings["rerank_ms"] = round((time.perf_counter() - start) * 1000, 2)
        return SearchResult(hits, timings), retrieval

    def ask(self, question: str, history: Sequence[Turn] = (), top_k: int | None = None,
            mode: str | None = None, options: dict[str, Any] | None = None, strict: bool | None = None,
            trace: bool = False) -> Answer:
        """The answer, produced by draining :meth:`ask_stream` (one code path for both)."""
        final: Answer | None = None
        for item in self.ask_stream(question, history, top_k, mode, options, strict, trace):
            if isinstance(item, Answer):
                final = item
        assert final is not None  # ask_stream always ends with the answer
        return final

    def ask_stream(self, question: str, history: Sequence[Turn] = (), top_k: int | None = None,
                   mode: str | None = None, options: dict[str, Any] | None = None, strict: bool | None = None,
                   trace: bool = False) -> Iterator[str | Answer]:
        """Triage, condense, retrieve and pack the prompt now (errors raise here); the returned iterator then
        yields text pieces as they are generated and ends with the checked, cited Answer."""
        start = time.perf_counter()
        timer = _Timer()
        safety = self.triage.assess(question) if self.settings.triage else Safety("routine")
        t = timer.stage("triage", start)
        query = self.condenser.condense(question, history) if history else question
        t = timer.stage("condense", t)
        k = top_k or self.settings.prompt_passages
        found, retrieval = self.retrieve(query, k, mode)
        timer.timings.update(found.timings)
        t = time.perf_counter()
        abstention = self.abstainer.decide(query, retrieval.runs) if self.settings.abstention else None
        timer.stage("abstain", t)
        run = _Run(question, query, mode, trace, timer, start)
        guidance, hits = self._steer(safety, query, found.hits, k)
        if abstention is not None and abstention.abstain and not guidance.emergency:
            answer = self._abstained(question, found.hits, safety, abstention, timer)
            return iter([answer.answer, self._finish(answer, run)])
        t = time.perf_counter()
        packed = self.prompts.build(question, hits, history, guidance)
        timer.stage("prompt", t)
        request = GenerationRequest(packed.text, question, packed.hits, options or {}, guidance)
        return self._stream(request, packed, safety, abstention, strict, run)

    def _steer(self, safety: Safety, query: str, hits: list[Hit], k: int) -> tuple[Guidance, list[Hit]]:
        """With a red flag, the guide documents for its signals lead the passages (and no abstention: the
        advice to call 120 stands and the first-aid text is there); else the question's intents steer."""
        intents = tuple(i.name for i in detect(query))
        if safety.level == "routine":
            return Guidance(intents), hits
        guide = self.guide.run(safety.signals, query, k)
        if not guide:  # a corpus without the guide documents: search it in the words of the signals' guidance
            words = self.guide.search_text(safety.signals)
            if not words:
                return Guidance(intents), hits
            return Guidance(intents, tuple(safety.signals)), self.retrieve(f"{words} {query}", k, None)[0].hits[:k]
        seen = {h.passage.chunk_id for h in guide}
        rest = [h for h in hits if h.passage.chunk_id not in seen]
        merged = [replace(h, rank=i + 1) for i, h in enumerate([*guide, *rest][:k])]
        return Guidance(intents, tuple(safety.signals)), merged

    def _stream(self, request: GenerationRequest, packed: PackedPrompt, safety: Safety,
                abstention: Abstention | None, strict: bool | None, run: _Run) -> Iterator[str | Answer]:
        if safety.advice:  # emergency advice comes first, before any generated word
            yield _advice(safety) + "\n\n"
        # Text that the checks may withhold (strict mode, dose sentences) must not reach the reader
        # before the checks ran: then the checked body is sent in one piece instead of token by token.
        hold = safety.dose_request or self._strict(strict)
        t = time.perf_counter()
        pieces: list[str] = []
        remarks: list[str] = []
        for piece in self.generator.stream(request):
            if isinstance(piece, Note):  # about the answer, not part of it: reported with the notes
                remarks.append(str(piece))
                continue
            pieces.append(piece)
            if not hold:
                yield piece
        run.timer.stage("generate", t)
        answer = self._checked("".join(pieces).strip(), packed, safety, abstention, strict, run, remarks)
        if hold:
            yield answer.answer.removeprefix(_advice(safety) + "\n\n" if safety.advice else "")
        elif answer.notes:
            yield "\n\n" + "\n\n".join(answer.notes)
        yield self._finish(answer, run)

    def _finish(self, answer: Answer, run: _Run) -> Answer:
        run.timer.stage("total", run.start)
        answer = replace(answer, timings=run.timer.timings, standalone_query=run.query)
        logged = self.audit.record(self._trace(answer, run.mode), run.question)
        return replace(answer, trace=logged if run.trace else None)

    def _abstained(self, question: str, hits: list[Hit], safety: Safety, abstention: Abstention,
                   timer: _Timer) -> Answer:
        # No generator call: with this little evidence a fluent answer would be an unsupported one.
        return Answer(question=question, answer=_with_advice(safety, abstention.message), sentences=(),
                      citations=(), passages=tuple(hits), generator="none", timings=timer.timings,
                      safety=safety, abstention=abstention)

    def _checked(self, text: str, packed: PackedPrompt, safety: Safety, abstention: Abstention | None,
                 strict: bool | None, run: _Run, remarks: Sequence[str] = ()) -> Answer:
        """Cite, withhold individual doses, check each sentence's support (strict mode drops the unsupported)."""
        t = time.perf_counter()
        cited = cite(text, packed.hits)
        t = run.timer.stage("cite", t)
        sentences, notes = list(cited.sentences), list(remarks)
        if safety.dose_request:
            kept = [s for s in sentences if not mentions_dose(s.text)]
            if len(kept) < len(sentences):
                notes.append(f"已省略 {len(sentences) - len(kept)} 句含具体剂量的内容："
                             "个体用药剂量请遵医嘱或咨询药师。")
            sentences = kept
        checked = self.support.check(sentences, packed.hits, strict)
        if checked.dropped:
            notes.append(f"严格模式：已删除 {len(checked.dropped)} 句参考资料不支持的内容。")
        run.timer.stage("support", t)
        changed = checked.sentences != cited.sentences
        body = render(checked.sentences) if changed else cited.answer
        citations = (tuple(dict.fromkeys(c for s in checked.sentences for c in s.citations)) if changed
                     else cited.citations)
        return Answer(
            question=run.question, answer=_with_advice(safety, body, notes), sentences=checked.sentences,
            citations=citations, passages=packed.hits, generator=self.generator.name,
            dropped_markers=cited.dropped_markers, timings=run.timer.timings, prompt_tokens=packed.tokens,
            safety=safety, support=checked.support, abstention=abstention, notes=tuple(notes),
            trace={"prompt_sha256": sha256(packed.text), "prompt_tokens": packed.tokens,
                   "strict": self._strict(strict)},
        )

    def _strict(self, strict: bool | None) -> bool:
        return self.settings.strict if strict is None else strict

    def _trace(self, answer: Answer, mode: str | None) -> dict[str, Any]:
        s = self.settings
        return {
            "index_id": self.index.index_id, "mode": mode or s.default_mode,
            "fusion": {"method": s.fusion, "bm25_weight": s.bm25_weight, "candidates": s.fusion_candidates},
            "rerank": s.rerank_model, "candidates": candidates_json(answer.passages),
            "prompt_sha256": (answer.trace or {}).get("prompt_sha256"), "prompt_tokens": answer.prompt_tokens,
            "strict": (answer.trace or {}).get("strict"),
            "generator": {"name": answer.generator,
                          **(self.generator.describe() if answer.generator != "none" else {})},
            "safety": answer.safety.to_json() if answer.safety else None,
            "abstention": answer.abstention.to_json() if answer.abstention else None,
            "support": [x.label for x in answer.support], "notes": list(answer.notes),
            "timings": dict(answer.timings),
        }


def _advice(safety: Safety) -> str:
    return f"【安全提示】{safety.advice}"


def _with_advice(safety: Safety, body: str, notes: Sequence[str] = ()) -> str:
    """Safety advice goes before the answer, notes on changes after it."""
    parts = [_advice(safety)] if safety.advice else []
    parts.append(body)
    parts.extend(notes)
    return "\n\n".join(p for p in parts if p)


def make_condenser(settings: Settings, index: LoadedIndex, generator: Generator,
                   normaliser: TermNormaliser | None = None) -> Condenser:
    if settings.condense == "off":
        return NoCondenser()
    titles = {p.title for p in index.passages}
    rules = RuleCondenser(TopicFinder(titles, index.analyzer.lexicon, normaliser))
    use_llm = settings.condense == "llm" or (settings.condense == "auto" and generator.name != "extractive")
    if use_llm:
        return LLMCondenser(generator, rules, settings.condense_max_new_tokens)
    return rules


def _openai(settings: Settings, index: LoadedIndex) -> Generator:
    from rag.generators.openai_backend import OpenAIGenerator

    return OpenAIGenerator(settings.openai_config())


def _transformers(settings: Settings, index: LoadedIndex) -> Generator:
    from rag.generators.transformers_llm import TransformersGenerator

    return TransformersGenerator(settings.llm_config())


def _extractive(settings: Settings, index: LoadedIndex) -> Generator:
    from rag.generators.extractive import ExtractiveGenerator, document_texts

    return ExtractiveGenerator(index.analyzer.tokenize, settings.extractive_config(), document_texts(index.passages))


# The one registry of generators (setting `generator`, the CLI's --generator); backends import lazily.
GENERATORS: dict[str, Callable[[Settings, LoadedIndex], Generator]] = {
    "extractive": _extractive, "transformers": _transformers, "openai": _openai}


def build_generator(settings: Settings, index: LoadedIndex) -> Generator:
    return GENERATORS[settings.generator](settings, index)
