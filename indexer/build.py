"""Build and update an index: load → chunk → embed → dense store + sparse index → manifest → publish.

A full build and an incremental update are the same operation: documents to upsert and document ids
to delete, applied to a base generation (empty for a fresh build). Only upserted documents are chunked,
embedded and tokenised; everything else is carried over by chunk id. Each change is published as a new
generation (see ``indexer.index_dir``); input errors are raised before anything is written.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from indexer.analyzer import AnalyzerConfig, ChineseAnalyzer
from indexer.backends import StoreBackend, Stores, Writes, backend, backend_for
from indexer.bm25_index import BM25Config
from indexer.chunking import Chunker, ChunkerConfig, index_text
from indexer.dense_index import FaissConfig
from indexer.embedding import Embedder
from indexer.errors import IndexFormatError
from indexer.index_dir import (
    CHUNKS,
    FORMAT_VERSION,
    LEXICON_DIR,
    MANIFEST,
    SYNONYMS,
    USER_DICT,
    Generation,
    LoadedIndex,
    bm25_config,
    builds_dir,
    check_embedding,
    corpus_fingerprint,
    document_fingerprint,
    link_files,
    open_index,
    write_chunks,
    write_lock,
)
from indexer.lexicon import Lexicon, load_lexicon
from indexer.loaders import load_corpus
from indexer.store_config import StoreConfig
from indexer.stores import BM25Store, FaissStore, chunk_key
from indexer.types import STAGES, Document, Passage

__all__ = ["BuildConfig", "Changes", "Finalize", "add_documents", "build_index", "copy_index", "delete_documents",
           "index_text", "remove_index", "republish"]

log = logging.getLogger(__name__)

# Called with the staged generation folder (manifest written, not yet live) and its manifest, before
# publishing; returns the manifest to publish. rag.calibration uses it to refit abstention.
Finalize = Callable[[Path, dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class BuildConfig:
    chunker: ChunkerConfig = field(default_factory=ChunkerConfig)
    analyzer: AnalyzerConfig = field(default_factory=AnalyzerConfig)
    bm25: BM25Config = field(default_factory=BM25Config)
    faiss: FaissConfig = field(default_factory=FaissConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    user_dict: str | None = None
    synonyms: str | None = None
    # The document title is part of what is embedded and BM25-indexed: a chunk from the middle of
    # a document on 感冒 rarely names 感冒 itself.
    title_in_index: bool = True
    skip_empty: bool = False  # leave out (with a warning) records with empty text instead of failing


@dataclass(frozen=True)
class _Recipe:
    """What decides an index's content besides the corpus; a change to any of it needs a full rebuild."""

    chunker: ChunkerConfig
    analyzer: ChineseAnalyzer
    bm25: BM25Config
    faiss: FaissConfig
    title_in_index: bool
    embedding: dict[str, Any]
    store: dict[str, Any] = field(default_factory=lambda: {"type": "faiss"})  # StoreConfig.describe()

    def key(self) -> str:
        store = {k: v for k, v in self.store.items() if k != "uri"}  # replicas reach one store by other URIs
        parts: list[Any] = [asdict(self.chunker), self.analyzer.describe(), asdict(self.bm25), asdict(self.faiss),
                            self.title_in_index, self.embedding]
        if store != {"type": "faiss"}:  # FAISS indexes keep the ids they had before stores were named
            parts.append(store)
        return json.dumps(parts, sort_keys=True, default=str)

    @classmethod
    def of(cls, index: LoadedIndex) -> _Recipe:
        """The recipe a generation was built with (its own analyzer and lexicon, already loaded)."""
        m = index.manifest
        return cls(ChunkerConfig(**m["chunker"]), index.analyzer, bm25_config(m), FaissConfig(**m["faiss"]),
                   m["title_in_index"], m["embedding"], m.get("store") or {"type": "faiss"})


@dataclass(frozen=True)
class Changes:
    upsert: tuple[Document, ...] = ()
    delete: tuple[str, ...] = ()


def _write_lexicon(lexicon: Lexicon, directory: Path) -> None:
    directory.mkdir()
    (directory / USER_DICT).write_text("".join(f"{w}\n" for w in lexicon.user_words), encoding="utf-8")
    (directory / SYNONYMS).write_text("".join(" ".join(g) + "\n" for g in lexicon.synonym_groups), encoding="utf-8")


def build_index(corpus: Sequence[str | Path], out_dir: str | Path, embedder: Embedder,
                config: BuildConfig | None = None, show_progress: bool = False,
                finalize: Finalize | None = None, documents: Sequence[Document] | None = None) -> dict[str, Any]:
    """Make ``out_dir`` hold exactly ``corpus``; returns the live manifest.

    An existing index built with the same settings is updated in place (only new or changed documents are
    embedded; an unchanged corpus publishes nothing); otherwise the corpus is indexed from scratch.
    ``documents``: the corpus already loaded (the CLI loads it before the model, so bad input fails fast).
    """
    config = config or BuildConfig()
    if documents is None:
        documents = load_corpus(corpus, skip_empty=config.skip_empty, show_progress=show_progress)
    lexicon = load_lexicon(config.user_dict, config.synonyms)
    recipe = _Recipe(config.chunker, ChineseAnalyzer(config.analyzer, lexicon), config.bm25, config.faiss,
                     config.title_in_index, embedder.describe(), config.store.describe())
    with write_lock(Path(out_dir)):
        base = _reusable_base(Path(out_dir), recipe, config.store)
        known = base.manifest["documents"] if base else {}
        wanted = {d.id: d for d in documents}
        changes = Changes(tuple(d for d in documents if known.get(d.id, {}).get("fingerprint")
                                != document_fingerprint(d)),
                          tuple(i for i in known if i not in wanted))
        if base is not None and not changes.upsert and not changes.delete:
            log.info("%s: corpus unchanged, nothing to publish", out_dir)
            return base.manifest
        store = backend_for(base.manifest, config.store) if base else backend(config.store)
        return _commit(Path(out_dir), base, changes, recipe, embedder, [str(p) for p in corpus],
                       show_progress, finalize, store)


def _reusable_base(out_dir: Path, recipe: _Recipe, store: StoreConfig) -> LoadedIndex | None:
    """The live generation when it can be updated incrementally with ``recipe``, else None (full build)."""
    try:
        base = open_index(out_dir, verify="full", store=store, strict=True)
    except IndexFormatError as exc:
        if (out_dir / MANIFEST).exists():
            log.warning("%s: not reusable (%s); indexing from scratch", out_dir, exc)
        return None
    if _Recipe.of(base).key() != recipe.key():
        log.warning("%s: built with other settings; indexing from scratch", out_dir)
        return None
    return base


def add_documents(out_dir: str | Path, documents: Sequence[Document], embedder: Embedder,
                  show_progress: bool = False, finalize: Finalize | None = None,
                  store: StoreConfig | None = None) -> dict[str, Any]:
    """Add new documents and replace changed ones (same id), with the index's own settings."""
    if not documents:
        raise ValueError("no documents to add")
    ids = [d.id for d in documents]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate document ids in the input: {sorted({i for i in ids if ids.count(i) > 1})}")
    with write_lock(Path(out_dir)):
        base, recipe = _base_for_update(Path(out_dir), embedder, store)
        known = base.manifest["documents"]
        upsert = tuple(d for d in documents if known.get(d.id, {}).get("fingerprint") != document_fingerprint(d))
        if not upsert:
            return base.manifest
        return _commit(Path(out_dir), base, Changes(upsert, ()), recipe, embedder,
                       base.manifest["corpus"]["paths"], show_progress, finalize, backend_for(base.manifest, store))


def delete_documents(out_dir: str | Path, doc_ids: Iterable[str], embedder: Embedder,
                     finalize: Finalize | None = None, store: StoreConfig | None = None) -> dict[str, Any]:
    doc_ids = list(dict.fromkeys(doc_ids))
    if not doc_ids:
        raise ValueError("no document ids to delete")
    with write_lock(Path(out_dir)):
        base, recipe = _base_for_update(Path(out_dir), embedder, store)
        unknown = [i for i in doc_ids if i not in base.manifest["documents"]]
        if unknown:
            raise ValueError(f"no such document in {out_dir}: {', '.join(unknown)} (nothing was changed)")
        if len(doc_ids) == len(base.manifest["documents"]):
            raise ValueError("refusing to delete every document; remove the index instead")
        return _commit(Path(out_dir), base, Changes((), tuple(doc_ids)), recipe, embedder,
                       base.manifest["corpus"]["paths"], False, finalize, backend_for(base.manifest, store))


def _base_for_update(out_dir: Path, embedder: Embedder, store: StoreConfig | None) -> tuple[LoadedIndex, _Recipe]:
    # Never build on a damaged generation, nor on a shared store another writer has changed since.
    base = open_index(out_dir, verify="full", store=store, strict=True)
    check_embedding(base.manifest, embedder.describe())
    return base, _Recipe.of(base)


def _commit(out_dir: Path, base: LoadedIndex | None, changes: Changes, recipe: _Recipe, embedder: Embedder,
            corpus_paths: list[str], show_progress: bool, finalize: Finalize | None,
            store: StoreBackend) -> dict[str, Any]:
    timings: dict[str, float] = {}
    start = time.perf_counter()
    by_doc = _passages_by_doc(base.passages if base else [])
    docs = dict(base.manifest["documents"]) if base else {}
    gone = [p.chunk_id for i in (*changes.delete, *(d.id for d in changes.upsert)) for p in by_doc.pop(i, [])]
    for doc_id in changes.delete:
        docs.pop(doc_id, None)

    t = time.perf_counter()
    chunker = Chunker(recipe.chunker)
    fresh = [p for doc in tqdm(changes.upsert, desc=STAGES[1], unit="doc", disable=not show_progress)
             for p in chunker.chunk(doc)]
    texts = [index_text(p, recipe.title_in_index) for p in fresh]
    timings["chunk_s"] = time.perf_counter() - t
    t = time.perf_counter()
    vectors = embedder.embed_passages(texts, show_progress=show_progress) if texts else None
    timings["embed_s"] = time.perf_counter() - t
    t = time.perf_counter()
    # Only now is a shared store touched: input and embedding errors above leave it as it was.
    stores = Stores(base.dense, base.sparse) if base else store.create(
        embedder.dimension, recipe.faiss, recipe.bm25, _chunk_hint(changes), recipe.embedding)
    versions = {d.id: document_fingerprint(d) for d in changes.upsert}
    store.write(stores, Writes(gone, fresh, texts, vectors, [recipe.analyzer.tokenize(x) for x in texts], versions))
    timings["stores_s"] = time.perf_counter() - t
    for doc in changes.upsert:
        by_doc[doc.id] = [p for p in fresh if p.doc_id == doc.id]
        docs[doc.id] = {"fingerprint": document_fingerprint(doc), "title": doc.title, "source": doc.source,
                        "url": doc.url, "chunks": len(by_doc[doc.id]), "characters": len(doc.text)}

    return _publish(out_dir, base, store, stores, recipe, docs, by_doc, corpus_paths, changes, timings, start,
                    finalize, show_progress)


def _publish(out_dir: Path, base: LoadedIndex | None, store: StoreBackend, stores: Stores, recipe: _Recipe,
             docs: dict[str, dict[str, Any]], by_doc: dict[str, list[Passage]], corpus_paths: list[str],
             changes: Changes, timings: dict[str, float], start: float, finalize: Finalize | None,
             show_progress: bool = False) -> dict[str, Any]:
    steps = ["stores", "lexicon", "chunks", "manifest", *(["calibration"] if finalize else []), "publish"]
    with Generation(out_dir) as gen, tqdm(total=len(steps), desc=STAGES[3], unit="step",
                                          disable=not show_progress) as bar:
        def step() -> None:  # one step done; name the next (calibration takes a while)
            bar.update()
            if bar.n < len(steps):
                bar.set_postfix_str(steps[bar.n])

        bar.set_postfix_str(steps[0], refresh=False)
        t = time.perf_counter()
        store.save(stores, gen.path)
        step()
        _write_lexicon(recipe.analyzer.lexicon, gen.path / LEXICON_DIR)
        step()
        passages = [p for chunks in by_doc.values() for p in chunks]
        write_chunks(gen.path / CHUNKS, passages)
        step()
        timings["write_s"] = time.perf_counter() - t
        timings["total_s"] = time.perf_counter() - start
        manifest = _manifest(base, docs, passages, recipe, corpus_paths, changes, timings)
        gen.write_manifest(manifest)
        step()
        if finalize is not None:
            manifest = finalize(gen.path, manifest)
            step()
        published = gen.publish(manifest)
        step()
        return published


def copy_index(source: str | Path, out_dir: str | Path, store: StoreConfig,
               finalize: Finalize | None = None) -> dict[str, Any]:
    """The same index on another store (FAISS → Milvus, say) without re-embedding: the source's stored
    vectors and analyzer tokens are written as they are; the result is a fresh index at ``out_dir``."""
    src = open_index(source, verify="full", strict=True)
    recipe = dataclasses.replace(_Recipe.of(src), store=store.describe())
    ids = [p.chunk_id for p in src.passages]
    with write_lock(Path(out_dir)):
        start = time.perf_counter()
        target = backend(store)
        vectors = stored_vectors(src, ids)
        stores = target.create(vectors.shape[1], recipe.faiss, recipe.bm25, len(ids), recipe.embedding)
        texts = [index_text(p, recipe.title_in_index) for p in src.passages]
        versions = {doc_id: d["fingerprint"] for doc_id, d in src.manifest["documents"].items()}
        target.write(stores, Writes((), src.passages, texts, vectors, stored_tokens(src, ids, texts), versions))
        timings = {"stores_s": time.perf_counter() - start}
        return _publish(Path(out_dir), None, target, stores, recipe, dict(src.manifest["documents"]),
                        _passages_by_doc(src.passages), src.manifest["corpus"]["paths"],
                        Changes((), ()), timings, start, finalize)


def stored_vectors(index: LoadedIndex, ids: Sequence[str]) -> np.ndarray:
    """The stored vectors of ``ids`` (flat and HNSW FAISS keep them whole; IVF-PQ only codes)."""
    if isinstance(index.dense, FaissStore):
        keys, vectors = index.dense.vectors()
        row = {k: r for r, k in enumerate(keys.tolist())}
        return vectors[[row[chunk_key(i)] for i in ids]]
    collection = getattr(index.dense, "collection", None)
    if collection is None:
        raise ValueError(f"cannot read vectors back from a {type(index.dense).__name__}")
    return np.asarray(collection.vectors(list(ids)), dtype=np.float32)


def stored_tokens(index: LoadedIndex, ids: Sequence[str], texts: Sequence[str]) -> list[list[str]]:
    """bm25s keeps every chunk's tokens; other stores are re-analysed with the index's own analyzer."""
    if isinstance(index.sparse, BM25Store):
        tokens = index.sparse.tokens()
        return [tokens[i] for i in ids]
    return [index.analyzer.tokenize(t) for t in texts]


def _chunk_hint(changes: Changes) -> int:
    return sum(max(1, len(d.text) // 300) for d in changes.upsert)


def _passages_by_doc(passages: Sequence[Passage]) -> dict[str, list[Passage]]:
    out: dict[str, list[Passage]] = {}
    for p in passages:
        out.setdefault(p.doc_id, []).append(p)
    return out


def _manifest(base: LoadedIndex | None, docs: dict[str, dict[str, Any]], passages: Sequence[Passage],
              recipe: _Recipe, corpus_paths: list[str], changes: Changes,
              timings: dict[str, float]) -> dict[str, Any]:
    fingerprint = corpus_fingerprint({i: d["fingerprint"] for i, d in docs.items()})
    # Same corpus + same settings => same id, however the index got there (build, add, delete).
    index_id = hashlib.sha256((fingerprint + recipe.key()).encode()).hexdigest()[:12]
    previous = {"index_id": base.index_id, "generation": base.generation} if base else None
    return {
        "format_version": FORMAT_VERSION,
        "index_id": index_id,
        "generation": (base.generation + 1) if base else 1,
        "parent": previous,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "corpus": {"paths": corpus_paths, "fingerprint": fingerprint},
        "counts": {"documents": len(docs), "chunks": len(passages),
                   "characters": sum(int(d["characters"]) for d in docs.values())},
        "update": {"kind": "incremental" if base else "full", "upserted": [d.id for d in changes.upsert][:50],
                   "upserted_count": len(changes.upsert), "deleted": list(changes.delete)},
        "chunker": asdict(recipe.chunker),
        "title_in_index": recipe.title_in_index,
        "embedding": recipe.embedding,
        "faiss": asdict(recipe.faiss),
        "store": recipe.store,
        "bm25": {**asdict(recipe.bm25), "analyzer_config": asdict(recipe.analyzer.config),
                 "analyzer": recipe.analyzer.describe()},
        "documents": docs,
        "timings": {k: round(v, 3) for k, v in timings.items()},
    }


def republish(out_dir: str | Path, files: dict[str, bytes], note: str) -> dict[str, Any]:
    """A new generation with the same content plus ``files`` (e.g. a fresh calibration.json)."""
    with write_lock(Path(out_dir)):
        live = open_index(out_dir, verify="full")
        with Generation(Path(out_dir)) as gen:
            link_files(live.path, gen.path, skip=(MANIFEST, *files))
            for name, data in files.items():
                (gen.path / name).write_bytes(data)
            manifest = {**live.manifest, "generation": live.generation + 1,
                        "parent": {"index_id": live.index_id, "generation": live.generation},
                        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                        "update": {"kind": note}}
            manifest.pop("files", None)
            return gen.publish(manifest)


def remove_index(out_dir: str | Path) -> None:
    """Delete an index link and all its generations."""
    target = Path(out_dir).absolute()
    if target.is_symlink():
        target.unlink()
    elif target.exists():
        shutil.rmtree(target)
    shutil.rmtree(builds_dir(target), ignore_errors=True)
    (target.parent / f".{target.name}.lock").unlink(missing_ok=True)
