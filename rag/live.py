"""The one owner of the live index bundle: a RAGPipeline over one verified generation, swapped in place.

Requests take ``live.pipeline`` once and finish on it, so a swap never disturbs a request in flight.
A new generation (noticed by polling the index link, by ``reload()`` from the admin API, or by
SIGHUP) is opened and fully verified beside the live one; only then is the reference swapped under a
lock. A generation that fails is refused and logged, and the old one keeps serving. The embedder and a
language-model generator are shared across generations, never reloaded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from indexer.build import Finalize, add_documents, delete_documents
from indexer.embedding import Embedder, SentenceTransformerEmbedder
from indexer.errors import IndexerError
from indexer.index_dir import LoadedIndex, check_embedding, open_index
from indexer.types import Document
from rag.calibration import refit
from rag.pipeline import RAGPipeline, build_generator
from rag.protocols import Generator
from rag.settings import Settings

log = logging.getLogger("chimed_rag.live")


@dataclass(frozen=True)
class ReloadResult:
    status: str  # reloaded | unchanged | refused
    index_id: str
    generation: int
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "index_id": self.index_id, "generation": self.generation,
                "error": self.error}


class LiveIndex:
    def __init__(self, pipeline: RAGPipeline, settings: Settings) -> None:
        self.settings = settings
        self.embedder: Embedder = pipeline.embedder
        self._pipeline = pipeline
        self._swap = threading.Lock()  # guards the reference
        self._reloading = threading.Lock()  # one reload at a time
        self._wake = threading.Event()
        self.last_error: str | None = None
        self._refused: Path | None = None

    @classmethod
    def open(cls, settings: Settings) -> LiveIndex:
        index = open_index(settings.index_dir, verify="full", store=settings.store_config(),
                           mmap=settings.index_mmap)
        embedder = SentenceTransformerEmbedder(settings.embedder_config(index.manifest["embedding"]))
        check_embedding(index.manifest, embedder.describe(), embedder.fallback_reason)
        return cls(RAGPipeline(index, embedder, build_generator(settings, index), settings), settings)

    @property
    def pipeline(self) -> RAGPipeline:
        with self._swap:
            return self._pipeline

    def _generator_for(self, index: LoadedIndex) -> Generator:
        current = self.pipeline.generator
        # The extractive generator tokenises with the index's analyzer (cheap to make); an LLM is shared.
        return build_generator(self.settings, index) if current.name == "extractive" else current

    def changed(self) -> bool:
        target = Path(self.settings.index_dir).resolve()
        return target != self.pipeline.index.path and target != self._refused

    def reload(self, force: bool = False) -> ReloadResult:
        with self._reloading:
            current = self.pipeline
            target = Path(self.settings.index_dir).resolve()
            if target == current.index.path and not force:
                return self._result("unchanged", current)
            try:
                index = open_index(self.settings.index_dir, verify="full", store=self.settings.store_config(),
                                   mmap=self.settings.index_mmap)
                check_embedding(index.manifest, self.embedder.describe(),
                                getattr(self.embedder, "fallback_reason", None))
                fresh = RAGPipeline(index, self.embedder, self._generator_for(index), self.settings,
                                    triage=current.triage)
                fresh.audit.listeners.extend(current.audit.listeners)  # e.g. the metrics' answer counter
            except (IndexerError, OSError, ValueError) as exc:
                self._refused, self.last_error = target, f"{target.name}: {exc}"
                log.error("refused index generation %s, still serving %s: %s", target, current.index.index_id, exc)
                return self._result("refused", current, str(exc))
            with self._swap:
                self._pipeline = fresh
            self._refused, self.last_error = None, None
            log.warning("now serving index %s generation %s (was %s generation %s)", index.index_id,
                        index.generation, current.index.index_id, current.index.generation)
            return self._result("reloaded", fresh)

    @staticmethod
    def _result(status: str, p: RAGPipeline, error: str | None = None) -> ReloadResult:
        return ReloadResult(status, p.index.index_id, p.index.generation, error)

    def request_reload(self) -> None:
        """Safe from a signal handler: the watcher thread does the work."""
        self._wake.set()

    def watch(self, stop: threading.Event, interval: float) -> None:
        """Poll the index link every ``interval`` seconds (and on request) until ``stop`` is set."""
        while not stop.is_set():
            woken = self._wake.wait(interval if interval > 0 else None)
            self._wake.clear()
            if stop.is_set():
                return
            try:
                if woken or self.changed():
                    self.reload()
            except Exception:  # the watcher must outlive any one bad generation
                log.exception("index reload failed")
                time.sleep(1)

    # Mutations: the incremental path, a new calibrated generation, then a reload of it.
    def add_documents(self, documents: Sequence[Document]) -> ReloadResult:
        manifest = add_documents(self.settings.index_dir, documents, self.embedder, finalize=self._finalize(),
                                 store=self.settings.store_config())
        return self._swap_in(manifest)

    def delete_documents(self, doc_ids: Sequence[str]) -> ReloadResult:
        manifest = delete_documents(self.settings.index_dir, doc_ids, self.embedder, finalize=self._finalize(),
                                    store=self.settings.store_config())
        return self._swap_in(manifest)

    def _swap_in(self, manifest: dict[str, Any]) -> ReloadResult:
        """Live before the caller hears back (the watcher may have swapped it in first: same outcome)."""
        result = self.reload()
        if result.status == "unchanged" and result.generation == manifest["generation"]:
            return ReloadResult("reloaded", result.index_id, result.generation)  # the watcher was first
        return result

    def _finalize(self) -> Finalize | None:
        return refit(self.embedder, self.settings) if self.settings.abstention else None


def start_watcher(live: LiveIndex, interval: float) -> threading.Event:
    stop = threading.Event()
    threading.Thread(target=live.watch, args=(stop, interval), name="index-watcher", daemon=True).start()
    return stop
