"""Dense vectors in FAISS: exact inner product by default, HNSW or IVF-PQ for large corpora."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

FAISS_TYPES = ("flat", "hnsw", "ivfpq")


@dataclass(frozen=True)
class FaissConfig:
    type: str = "flat"
    hnsw_m: int = 32
    hnsw_ef_construction: int = 200
    hnsw_ef_search: int = 128
    ivf_nlist: int | None = None  # None: about 4 * sqrt(n)
    pq_m: int = 48  # bytes per vector (8-bit codes); must divide the dimension
    ivf_nprobe: int = 32
    # k-means needs tens of points per list, not millions: training on all of a 1M corpus costs
    # minutes for no recall. None: 64 points per list.
    ivf_train_points: int | None = None

    def __post_init__(self) -> None:
        if self.type not in FAISS_TYPES:
            raise ValueError(f"unknown FAISS index type {self.type!r}; expected one of {', '.join(FAISS_TYPES)}")


def build_faiss(vectors: np.ndarray, config: FaissConfig | None = None) -> faiss.Index:
    config = config or FaissConfig()
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, dim = vectors.shape
    if config.type == "flat":
        index: faiss.Index = faiss.IndexFlatIP(dim)
    elif config.type == "hnsw":
        index = faiss.IndexHNSWFlat(dim, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = config.hnsw_ef_construction
        index.hnsw.efSearch = config.hnsw_ef_search
    else:
        nlist = config.ivf_nlist or max(1, min(n // 39, int(4 * np.sqrt(n))))
        if dim % config.pq_m:
            raise ValueError(f"pq_m={config.pq_m} must divide the embedding dimension {dim}")
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFPQ(quantizer, dim, nlist, config.pq_m, 8, faiss.METRIC_INNER_PRODUCT)
        index.train(_training_sample(vectors, config.ivf_train_points or 64 * nlist))
        index.nprobe = min(config.ivf_nprobe, nlist)
    index.add(vectors)
    return index


def _training_sample(vectors: np.ndarray, size: int) -> np.ndarray:
    if size >= len(vectors):
        return vectors
    rows = np.sort(np.random.default_rng(0).choice(len(vectors), size, replace=False))
    return vectors[rows]


def save_faiss(index: faiss.Index, path: Path) -> None:
    faiss.write_index(index, str(path))


def load_faiss(path: Path, config: FaissConfig | None = None, mmap: bool = False) -> faiss.Index:
    """``mmap``: map the stored vectors / codes read-only from the file instead of copying them, so every
    process serving the same generation shares one copy in the page cache (faiss ``IO_FLAG_MMAP_IFC``:
    flat and HNSW storage, IVF lists). A mapped index cannot be written to (faiss aborts the process):
    :class:`indexer.stores.FaissStore` re-reads it owned before its first write."""
    index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC if mmap else 0)
    config = config or FaissConfig()
    # Search-time knobs are not always persisted; set them from the configuration.
    if isinstance(index, faiss.IndexHNSW):
        index.hnsw.efSearch = config.hnsw_ef_search
    ivf = faiss.try_extract_index_ivf(index) if hasattr(faiss, "try_extract_index_ivf") else None
    if ivf is not None:
        ivf.nprobe = min(config.ivf_nprobe, ivf.nlist)
    return index


def search_faiss(index: faiss.Index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores, row ids) for each query; missing results (fewer than k vectors) have id -1."""
    k = max(1, min(k, index.ntotal))
    scores, ids = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    return scores, ids
