"""The storage seam: a dense vector store and a sparse (lexical) index, both keyed by ``chunk_id``.

Retrievers, fusion and abstention only see chunk ids and scores, so another backend (Milvus, a search
engine) plugs in by implementing these two protocols; the embedded defaults are FAISS and bm25s.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import faiss
import numpy as np

from indexer.bm25_index import BM25Config, BM25Index
from indexer.dense_index import FaissConfig, load_faiss
from indexer.errors import IndexFormatError

ScoredIds = list[tuple[str, float]]  # (chunk_id, score), best first

DENSE_FILE = "dense.faiss"
DENSE_IDS = "dense.ids.json"
BM25_TOKENS = "tokens.jsonl"
BM25_IDS = "ids.json"


@runtime_checkable
class DenseStore(Protocol):
    """Vectors by chunk id; inner-product search."""

    def add(self, ids: Sequence[str], vectors: np.ndarray) -> None: ...

    def delete(self, ids: Iterable[str]) -> None: ...

    def search(self, vectors: np.ndarray, k: int) -> list[ScoredIds]: ...

    def count(self) -> int: ...

    def fingerprint(self) -> str: ...


@runtime_checkable
class SparseIndex(Protocol):
    """Token lists by chunk id; lexical scoring of a tokenised query."""

    def add(self, ids: Sequence[str], tokens: Sequence[list[str]]) -> None: ...

    def delete(self, ids: Iterable[str]) -> None: ...

    def search(self, query_tokens: list[str], k: int) -> ScoredIds: ...

    def count(self) -> int: ...

    def fingerprint(self) -> str: ...


def ids_fingerprint(ids: Iterable[str]) -> str:
    """Hash of a set of chunk ids: equal for every store that holds exactly the same chunks."""
    digest = hashlib.sha256()
    for chunk_id in sorted(ids):
        digest.update(chunk_id.encode("utf-8") + b"\0")
    return digest.hexdigest()


def chunk_key(chunk_id: str) -> int:
    """FAISS ids are int64: a 63-bit slice of SHA-256 is stable across builds, processes and machines."""
    return int.from_bytes(hashlib.sha256(chunk_id.encode("utf-8")).digest()[:8], "big") & ((1 << 63) - 1)


def _ranked(pairs: Iterable[tuple[str, float]], k: int) -> ScoredIds:
    # Ties are broken by chunk id, never by storage order, so an incrementally updated index and a full
    # rebuild of the same corpus rank identically.
    return sorted(pairs, key=lambda p: (-p[1], p[0]))[:k]


def _check_new(ids: Sequence[str], present: Iterable[str]) -> None:
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate chunk ids in one add")
    clash = set(ids) & set(present)
    if clash:
        raise ValueError(f"chunk ids already stored: {', '.join(sorted(clash)[:3])}")


class FaissStore:
    """FAISS ``IndexIDMap2`` over flat / HNSW / IVF-PQ, ids from :func:`chunk_key`."""

    def __init__(self, index: faiss.IndexIDMap2, ids: dict[int, str], config: FaissConfig,
                 mapped_from: Path | None = None) -> None:
        self._index, self._ids, self.config = index, ids, config
        self._mapped_from = mapped_from  # the (never rewritten) generation file the vectors are mapped from

    @property
    def mapped(self) -> bool:
        return self._mapped_from is not None

    def _own(self) -> None:
        """Before a write: faiss cannot grow or shrink a mapped index, so read the same file into memory."""
        if self._mapped_from is not None:
            index = load_faiss(self._mapped_from, self.config)
            assert isinstance(index, faiss.IndexIDMap2)
            self._index, self._mapped_from = index, None

    @classmethod
    def empty(cls, dimension: int, config: FaissConfig | None = None, size_hint: int = 0) -> FaissStore:
        """``size_hint``: the vectors a full build will add (IVF sizes its lists from it)."""
        config = config or FaissConfig()
        return cls(faiss.IndexIDMap2(_inner_index(dimension, config, size_hint)), {}, config)

    @property
    def index(self) -> faiss.IndexIDMap2:
        return self._index

    def add(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        if not len(ids):
            return
        _check_new(ids, self._ids.values())
        self._own()
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        keys = np.array([chunk_key(i) for i in ids], dtype=np.int64)
        if len(set(keys.tolist()) | set(self._ids)) != len(keys) + len(self._ids):
            raise ValueError("chunk id hash collision")  # 2^-63 per pair; fail loudly rather than overwrite
        inner = faiss.downcast_index(self._index.index)
        if not inner.is_trained:  # IVF-PQ trains its codebooks on the first batch (a full build's vectors)
            from indexer.dense_index import _training_sample

            inner.train(_training_sample(vectors, self.config.ivf_train_points or 64 * inner.nlist))
        self._index.add_with_ids(vectors, keys)
        self._ids.update(zip(keys.tolist(), ids))

    def delete(self, ids: Iterable[str]) -> None:
        keys = [k for k in (chunk_key(i) for i in ids) if k in self._ids]
        if not keys:
            return
        self._own()
        if isinstance(faiss.downcast_index(self._index.index), faiss.IndexHNSW):
            self._rebuild_without(set(keys))  # HNSW graphs cannot drop nodes: re-add the survivors
        else:
            self._remove(np.array(keys, dtype=np.int64))
        for key in keys:
            del self._ids[key]

    def _remove(self, keys: np.ndarray) -> None:
        """Remove ``keys`` from a flat or IVF index behind the id map.

        ``IndexIDMap2.remove_ids`` compacts its id map as if the inner index renumbered its rows the way a flat
        index does; an IVF index keeps its rows' old numbers, so without renumbering every later hit of an IVF-PQ
        index would carry another chunk's id."""
        positions = faiss.vector_to_array(self._index.id_map)
        survivors = ~np.isin(positions, keys)
        self._index.remove_ids(faiss.IDSelectorBatch(keys))
        inner = faiss.downcast_index(self._index.index)
        if not isinstance(inner, faiss.IndexIVF):
            return
        renumbered = (np.cumsum(survivors) - 1).astype(np.int64)  # old row number -> row number among survivors
        lists = inner.invlists
        for number in range(inner.nlist):
            size = lists.list_size(number)
            if size:
                rows = faiss.rev_swig_ptr(lists.get_ids(number), size)  # a writable view of the list's row ids
                rows[:] = renumbered[rows]
        if inner.direct_map.type != faiss.DirectMap.NoMap:
            inner.make_direct_map(True)

    def _rebuild_without(self, gone: set[int]) -> None:
        keys, vectors = self.vectors()
        keep = np.array([k not in gone for k in keys.tolist()], dtype=bool)
        fresh = faiss.IndexIDMap2(_inner_index(vectors.shape[1], self.config, len(keys)))
        fresh.add_with_ids(vectors[keep], keys[keep])
        self._index = fresh

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(int64 keys, stored vectors) in storage order (flat and HNSW keep full vectors)."""
        keys = faiss.vector_to_array(self._index.id_map).astype(np.int64)
        return keys, self._index.index.reconstruct_n(0, self._index.ntotal)

    def search(self, vectors: np.ndarray, k: int) -> list[ScoredIds]:
        if self._index.ntotal == 0:
            return [[] for _ in range(len(vectors))]
        k = max(1, min(k, self._index.ntotal))
        scores, keys = self._index.search(np.ascontiguousarray(vectors, dtype=np.float32), k)
        return [_ranked(((self._ids[int(key)], float(s)) for key, s in zip(row_keys, row) if key >= 0), k)
                for row, row_keys in zip(scores, keys)]

    def count(self) -> int:
        return int(self._index.ntotal)

    def fingerprint(self) -> str:
        return ids_fingerprint(self._ids.values())

    def save(self, directory: Path) -> None:
        faiss.write_index(self._index, str(directory / DENSE_FILE))
        keys = faiss.vector_to_array(self._index.id_map).tolist()
        (directory / DENSE_IDS).write_text(json.dumps([self._ids[k] for k in keys], ensure_ascii=False), "utf-8")

    @classmethod
    def load(cls, directory: Path, config: FaissConfig | None = None, mmap: bool = False) -> FaissStore:
        """``mmap``: vectors stay in the file (shared page cache across worker processes); see ``load_faiss``."""
        path, ids_path = directory / DENSE_FILE, directory / DENSE_IDS
        try:
            index = load_faiss(path, config, mmap=mmap)
        except RuntimeError as exc:  # faiss reports truncation/garbage as a C++ exception text
            raise IndexFormatError(f"{path}: unreadable FAISS file ({str(exc).splitlines()[0][:120]})") from exc
        if not isinstance(index, faiss.IndexIDMap2):
            raise IndexFormatError(f"{path}: not an id-mapped FAISS index (rebuild the index)")
        try:
            ids = json.loads(ids_path.read_text("utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise IndexFormatError(f"{ids_path}: unreadable chunk id list ({exc})") from exc
        keys = faiss.vector_to_array(index.id_map).tolist()
        if len(ids) != len(keys) or any(chunk_key(i) != k for i, k in zip(ids, keys)):
            raise IndexFormatError(f"{ids_path}: chunk ids do not match the vectors in {path.name}")
        return cls(index, dict(zip(keys, ids)), config or FaissConfig(), path if mmap else None)


def _inner_index(dimension: int, config: FaissConfig, size_hint: int) -> faiss.Index:
    if config.type == "flat":
        return faiss.IndexFlatIP(dimension)
    if config.type == "hnsw":
        index = faiss.IndexHNSWFlat(dimension, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = config.hnsw_ef_construction
        index.hnsw.efSearch = config.hnsw_ef_search
        return index
    if dimension % config.pq_m:
        raise ValueError(f"pq_m={config.pq_m} must divide the embedding dimension {dimension}")
    nlist = config.ivf_nlist or max(1, min(size_hint // 39, int(4 * np.sqrt(size_hint))))
    index = faiss.IndexIVFPQ(faiss.IndexFlatIP(dimension), dimension, nlist, config.pq_m, 8,
                             faiss.METRIC_INNER_PRODUCT)
    index.nprobe = min(config.ivf_nprobe, nlist)
    return index


class BM25Store:
    """bm25s over stored token lists.

    bm25s bakes the IDF of every term into its score matrix, so any add or delete changes every column of
    it. The store therefore keeps each chunk's tokens (``tokens.jsonl``) and re-derives the matrix from
    them when the set changes: only new chunks are tokenised (jieba is the slow part); re-indexing the
    token lists takes milliseconds, and the scores equal those of a full rebuild exactly. Serving needs
    only the matrix and the row order (``ids.json``): the token lists are read on the first change.
    """

    def __init__(self, tokens: dict[str, list[str]] | None, config: BM25Config | None = None,
                 model: BM25Index | None = None, order: list[str] | None = None,
                 tokens_path: Path | None = None) -> None:
        self._tokens, self.config = tokens, config or BM25Config()
        self._model = model
        self._order = order if order is not None else list(tokens or {})
        self._tokens_path = tokens_path

    def _all_tokens(self) -> dict[str, list[str]]:
        if self._tokens is None:
            assert self._tokens_path is not None
            self._tokens = _read_tokens(self._tokens_path)
            if list(self._tokens) != self._order:
                raise IndexFormatError(f"{self._tokens_path}: rows differ from {BM25_IDS}")
        return self._tokens

    def add(self, ids: Sequence[str], tokens: Sequence[list[str]]) -> None:
        stored = self._all_tokens()
        _check_new(ids, stored)
        stored.update(zip(ids, (list(t) for t in tokens)))
        self._model = None

    def tokens(self) -> dict[str, list[str]]:
        """Every chunk's analyzer tokens, by chunk id (read from disk on first use)."""
        return dict(self._all_tokens())

    def delete(self, ids: Iterable[str]) -> None:
        stored = self._all_tokens()
        for chunk_id in ids:
            if stored.pop(chunk_id, None) is not None:
                self._model = None

    def _ready(self) -> BM25Index:
        if self._model is None:
            stored = self._all_tokens()
            self._order = list(stored)
            self._model = BM25Index.build([stored[i] for i in self._order], self.config)
        return self._model

    def search(self, query_tokens: list[str], k: int) -> ScoredIds:
        if not self._order or k <= 0:
            return []
        scores = self._ready().scores(query_tokens)
        k = min(k, len(scores))
        # Everything tied with the k-th score is a candidate; _ranked then breaks ties by chunk id.
        kth = np.partition(scores, len(scores) - k)[len(scores) - k]
        rows = np.flatnonzero((scores >= kth) & (scores > 0))
        return _ranked(((self._order[r], float(scores[r])) for r in rows), k)

    def count(self) -> int:
        return len(self._order) if self._model is not None else len(self._all_tokens())

    def fingerprint(self) -> str:
        return ids_fingerprint(self._order if self._model is not None else self._all_tokens())

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        model, stored = self._ready(), self._all_tokens()
        with (directory / BM25_TOKENS).open("w", encoding="utf-8") as out:
            for chunk_id in self._order:
                out.write(json.dumps({"id": chunk_id, "tokens": stored[chunk_id]}, ensure_ascii=False) + "\n")
        (directory / BM25_IDS).write_text(json.dumps(self._order, ensure_ascii=False), "utf-8")
        model.save(directory)

    @classmethod
    def load(cls, directory: Path, config: BM25Config | None = None, mmap: bool = False) -> BM25Store:
        path = directory / BM25_IDS
        try:
            order = json.loads(path.read_text("utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise IndexFormatError(f"{path}: missing or unreadable ({exc})") from exc
        if not isinstance(order, list) or len(set(order)) != len(order):
            raise IndexFormatError(f"{path}: not a list of distinct chunk ids")
        try:
            model = BM25Index.load(directory, mmap=mmap)
        except (OSError, ValueError, KeyError) as exc:
            raise IndexFormatError(f"{directory}: unreadable bm25s files ({exc})") from exc
        if model.size != len(order):
            raise IndexFormatError(f"{directory}: bm25s holds {model.size} rows but {path.name} {len(order)}")
        return cls(None, config, model, order, directory / BM25_TOKENS)


def _read_tokens(path: Path) -> dict[str, list[str]]:
    tokens: dict[str, list[str]] = {}
    try:
        lines = path.read_text("utf-8").splitlines()
    except OSError as exc:
        raise IndexFormatError(f"{path}: missing or unreadable ({exc.strerror})") from exc
    for number, line in enumerate(lines, start=1):
        try:
            row = json.loads(line)
            if not isinstance(row["tokens"], list):
                raise TypeError("tokens")
            tokens[str(row["id"])] = row["tokens"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise IndexFormatError(f"{path}:{number}: not a {{id, tokens}} line") from exc
    return tokens
