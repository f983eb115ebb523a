"""Which stores hold an index's vectors and lexical index, and how to reach them (no engine imports here).

``faiss`` (the embedded default) keeps FAISS + bm25s files inside each generation folder; ``milvus`` keeps
them in one Milvus collection shared by every API replica. The manifest records ``describe()``; the
token never leaves the process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

STORE_TYPES = ("faiss", "milvus")
# "tokens": Milvus' BM25 function over the project's own analyzer output (jieba + bigrams + lexicon),
# "jieba": Milvus' BM25 function with its own jieba analyzer over the raw text.
MILVUS_SPARSE = ("tokens", "jieba")
MILVUS_INDEXES = ("FLAT", "HNSW", "IVF_FLAT", "AUTOINDEX")
ENV = "CHIMED_RAG_MILVUS_"


@dataclass(frozen=True)
class MilvusConfig:
    uri: str = "http://127.0.0.1:19530"  # or a local file path (Milvus Lite, one process only)
    token: str = field(default="", repr=False)  # "user:password" or an API key; never written anywhere
    db: str = ""  # "" is Milvus' "default" database
    collection: str = "chimed_rag"
    sparse: str = "tokens"
    index_type: str = "FLAT"  # exact, as the FAISS default; HNSW for tens of millions
    timeout: float = 10.0  # seconds to connect before the URI counts as unreachable

    def __post_init__(self) -> None:
        if self.sparse not in MILVUS_SPARSE:
            raise ValueError(f"unknown Milvus sparse mode {self.sparse!r}; expected one of {', '.join(MILVUS_SPARSE)}")
        if self.index_type not in MILVUS_INDEXES:
            raise ValueError(f"unknown Milvus index type {self.index_type!r}; "
                             f"expected one of {', '.join(MILVUS_INDEXES)}")
        if not self.collection.replace("_", "a").isalnum() or self.collection[0].isdigit():
            raise ValueError(f"bad Milvus collection name {self.collection!r} (letters, digits, '_'; "
                             "not starting with a digit)")

    def describe(self) -> dict[str, Any]:
        return {"type": "milvus", "uri": self.uri, "db": self.db, "collection": self.collection,
                "sparse": self.sparse, "index_type": self.index_type}


@dataclass(frozen=True)
class StoreConfig:
    type: str = "faiss"
    milvus: MilvusConfig = field(default_factory=MilvusConfig)

    def __post_init__(self) -> None:
        if self.type not in STORE_TYPES:
            raise ValueError(f"unknown store {self.type!r}; expected one of {', '.join(STORE_TYPES)}")

    def describe(self) -> dict[str, Any]:
        return self.milvus.describe() if self.type == "milvus" else {"type": "faiss"}

    def recipe(self) -> dict[str, Any]:
        """What decides the index's content: not where the engine is reached (replicas use other URIs)."""
        return {k: v for k, v in self.describe().items() if k != "uri"}

    @classmethod
    def from_env(cls) -> StoreConfig:
        """The same CHIMED_RAG_STORE / CHIMED_RAG_MILVUS_* variables as rag.settings, for callers without it."""
        env = os.environ
        defaults = MilvusConfig()
        milvus = MilvusConfig(uri=env.get(f"{ENV}URI", defaults.uri), token=env.get(f"{ENV}TOKEN", ""),
                              db=env.get(f"{ENV}DB", ""), collection=env.get(f"{ENV}COLLECTION", defaults.collection),
                              sparse=env.get(f"{ENV}SPARSE", defaults.sparse),
                              index_type=env.get(f"{ENV}INDEX_TYPE", defaults.index_type))
        return cls(env.get("CHIMED_RAG_STORE", "faiss"), milvus)


def manifest_store(manifest: dict[str, Any]) -> dict[str, Any]:
    """The store a generation was built on; manifests from before this field are FAISS."""
    store = manifest.get("store") or {"type": "faiss"}
    if store.get("type") not in STORE_TYPES:
        raise ValueError(f"index uses unknown store {store.get('type')!r}; expected one of {', '.join(STORE_TYPES)}")
    return store
