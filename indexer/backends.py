"""The store registry: how each store type is created, opened, written and saved with a generation.

``indexer.build`` and ``indexer.index_dir`` only talk to a :class:`StoreBackend`; adding an engine means
one class here and one entry in :data:`BACKENDS`, nothing in the retrievers or the pipeline.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from indexer.bm25_index import BM25Config
from indexer.dense_index import FaissConfig
from indexer.errors import IndexFormatError
from indexer.store_config import MilvusConfig, StoreConfig, manifest_store
from indexer.stores import BM25Store, DenseStore, FaissStore, SparseIndex
from indexer.types import Passage

BM25_DIR = "bm25"


@dataclass(frozen=True)
class Stores:
    dense: DenseStore
    sparse: SparseIndex


@dataclass(frozen=True)
class Writes:
    """One update's effect on the stores: chunks that go, and fresh chunks with their vectors and tokens."""

    gone: Sequence[str]
    passages: Sequence[Passage]
    texts: Sequence[str]
    vectors: np.ndarray | None
    tokens: Sequence[list[str]]
    versions: Mapping[str, str] = field(default_factory=dict)  # doc_id -> document fingerprint


class StoreBackend(Protocol):
    def create(self, dimension: int, faiss: FaissConfig, bm25: BM25Config, size_hint: int,
               embedding: dict[str, Any]) -> Stores: ...

    def open(self, root: Path, manifest: dict[str, Any], faiss: FaissConfig, bm25: BM25Config,
             mmap: bool = False) -> Stores: ...

    def write(self, stores: Stores, writes: Writes) -> None: ...

    def save(self, stores: Stores, directory: Path) -> None: ...


class FaissBackend:
    """FAISS + bm25s files inside the generation folder (the embedded default)."""

    def create(self, dimension: int, faiss: FaissConfig, bm25: BM25Config, size_hint: int,
               embedding: dict[str, Any]) -> Stores:
        return Stores(FaissStore.empty(dimension, faiss, size_hint), BM25Store({}, bm25))

    def open(self, root: Path, manifest: dict[str, Any], faiss: FaissConfig, bm25: BM25Config,
             mmap: bool = False) -> Stores:
        # Generation files are never rewritten (a new generation is a new folder), so mapping them is safe.
        return Stores(FaissStore.load(root, faiss, mmap=mmap), BM25Store.load(root / BM25_DIR, bm25, mmap=mmap))

    def write(self, stores: Stores, writes: Writes) -> None:
        stores.dense.delete(writes.gone)
        stores.sparse.delete(writes.gone)
        ids = [p.chunk_id for p in writes.passages]
        if writes.vectors is not None:
            stores.dense.add(ids, writes.vectors)
        stores.sparse.add(ids, list(writes.tokens))

    def save(self, stores: Stores, directory: Path) -> None:
        assert isinstance(stores.dense, FaissStore) and isinstance(stores.sparse, BM25Store)
        stores.dense.save(directory)
        stores.sparse.save(directory / BM25_DIR)


class MilvusBackend:
    """One Milvus collection shared by every replica; the generation folder keeps the catalogue."""

    def __init__(self, config: MilvusConfig) -> None:
        self.config = config

    def create(self, dimension: int, faiss: FaissConfig, bm25: BM25Config, size_hint: int,
               embedding: dict[str, Any]) -> Stores:
        from indexer.milvus_store import MilvusCollection

        return self._stores(MilvusCollection.create(self.config, dimension, embedding))

    def open(self, root: Path, manifest: dict[str, Any], faiss: FaissConfig, bm25: BM25Config,
             mmap: bool = False) -> Stores:
        from indexer.milvus_store import MilvusCollection

        built = manifest_store(manifest)
        if built.get("collection") != self.config.collection or built.get("db", "") != self.config.db:
            raise IndexFormatError(
                f"{root}: built on Milvus collection {built.get('collection')!r} (db {built.get('db')!r}) but "
                f"{self.config.collection!r} (db {self.config.db!r}) is configured (CHIMED_RAG_MILVUS_COLLECTION)")
        return self._stores(MilvusCollection.open(self.config, manifest["embedding"]))

    @staticmethod
    def _stores(collection: Any) -> Stores:
        from indexer.milvus_store import MilvusSparse, MilvusStore

        return Stores(MilvusStore(collection), MilvusSparse(collection))

    def write(self, stores: Stores, writes: Writes) -> None:
        from indexer.milvus_store import ChunkRecord, MilvusStore

        assert isinstance(stores.dense, MilvusStore)
        collection = stores.dense.collection
        fresh = {p.chunk_id for p in writes.passages}
        if writes.vectors is not None and len(writes.passages):
            # Upsert first, then drop what is gone: a crash in between leaves extra rows, never missing ones,
            # and a changed document's chunks (same ids) are replaced in place, never absent.
            records = [ChunkRecord(p, collection.lexical_text(tokens, text), writes.versions.get(p.doc_id, ""))
                       for p, text, tokens in zip(writes.passages, writes.texts, writes.tokens)]
            stores.dense.upsert(records, writes.vectors)
        stores.dense.delete([i for i in writes.gone if i not in fresh])

    def save(self, stores: Stores, directory: Path) -> None:
        from indexer.milvus_store import MilvusStore

        assert isinstance(stores.dense, MilvusStore)
        stores.dense.collection.flush()  # durable before the generation that describes it goes live


def backend(config: StoreConfig) -> StoreBackend:
    """The backend of a configured store type (an unknown one is refused by StoreConfig itself)."""
    return BACKENDS[config.type](config)


def backend_for(manifest: dict[str, Any], config: StoreConfig | None) -> StoreBackend:
    """The backend a generation was built on, reached with this process' connection settings."""
    built = manifest_store(manifest)
    config = config or StoreConfig.from_env()
    if built["type"] == "milvus":
        # The URI may differ per host (a replica reaches Milvus by its service name); the collection may not.
        uri = config.milvus.uri if config.type == "milvus" else built.get("uri", config.milvus.uri)
        milvus = MilvusConfig(uri=uri, token=config.milvus.token, db=built.get("db", ""),
                              collection=config.milvus.collection if config.type == "milvus" else built["collection"],
                              sparse=built.get("sparse", "tokens"), index_type=built.get("index_type", "FLAT"))
        return MilvusBackend(milvus)
    return FaissBackend()


BACKENDS: dict[str, Callable[[StoreConfig], StoreBackend]] = {
    "faiss": lambda config: FaissBackend(),
    "milvus": lambda config: MilvusBackend(config.milvus),
}
