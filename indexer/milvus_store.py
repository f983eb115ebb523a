"""Milvus behind the storage seam: one collection row per chunk (vector, lexical text, display fields).

Every API replica reads the same collection, so a chunk upserted through one is searchable through all
of them at once; the fields a hit needs to be shown (doc_id, title, source, locator, text) come back with
it, so a replica renders chunks its own generation folder has never seen. The lexical side is Milvus'
BM25 function (server-side statistics): over the project's own analyzer tokens (``sparse="tokens"``,
the default, same quality as bm25s) or over the raw text with Milvus' jieba analyzer (``"jieba"``).
The collection's description records the embedding scheme, so a server refuses one built with another
model.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from indexer.errors import IndexFormatError, ModelMismatchError
from indexer.store_config import MilvusConfig
from indexer.stores import ScoredIds, _ranked, ids_fingerprint
from indexer.types import Passage

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
BATCH = 1000  # rows per upsert: well under Milvus' 64 MB gRPC message limit at 768 dims
MAX_TEXT = 65535  # Milvus' VARCHAR ceiling, in bytes
FIELDS = ("chunk_id", "doc_id", "version", "title", "source", "locator", "text")
CACHE_SIZE = 50_000  # passages and versions kept from recent searches and look-ups
VERSION_CHARS = 16


@dataclass(frozen=True)
class ChunkRecord:
    """What one collection row holds besides the vector."""

    passage: Passage
    bm25_text: str  # what Milvus' BM25 function analyses (see MilvusCollection.lexical_text)
    version: str = ""  # the document's fingerprint (prefix): tells a replica whether its own copy is current

    def row(self, vector: Sequence[float]) -> dict[str, Any]:
        p = self.passage
        locator = json.dumps({"span": list(p.span), "url": p.url, "metadata": p.metadata}, ensure_ascii=False,
                             default=str)
        return {"chunk_id": p.chunk_id, "doc_id": p.doc_id, "version": self.version[:VERSION_CHARS],
                "title": _clip(p.title), "source": _clip(p.source),
                "locator": _clip(locator), "text": _clip(p.text), "bm25_text": _clip(self.bm25_text),
                "dense": vector}


def _clip(value: str) -> str:
    data = value.encode("utf-8")
    return value if len(data) <= MAX_TEXT else data[:MAX_TEXT].decode("utf-8", "ignore")


def _passage(row: dict[str, Any]) -> Passage:
    try:
        locator = json.loads(row.get("locator") or "{}")
    except json.JSONDecodeError:
        locator = {}
    start, end = (locator.get("span") or [0, 0])[:2]
    return Passage(chunk_id=row["chunk_id"], doc_id=row.get("doc_id", ""), title=row.get("title", ""),
                   text=row.get("text", ""), span=(int(start), int(end)), source=row.get("source", ""),
                   url=locator.get("url", ""), metadata=locator.get("metadata") or {})


def _remember(cache: OrderedDict[str, Any], key: str, value: Any) -> None:
    cache[key] = value
    cache.move_to_end(key)
    if len(cache) > CACHE_SIZE:
        cache.popitem(last=False)


_WORD = re.compile(r"\w+")


@lru_cache(maxsize=500_000)  # a corpus' vocabulary is small next to its token count
def token_word(token: str) -> str:
    """One analyzer token as one Milvus word: the bigram marker '#' and any other non-word character
    would make Milvus' tokenizer split or drop it (and '#血压' collide with the word '血压')."""
    if _WORD.fullmatch(token):
        return token
    body = token[1:] if token.startswith("#") else token
    body = re.sub(r"\W", lambda m: f"_{ord(m.group()):x}_", body)
    return ("__b" if token.startswith("#") else "__x") + body


_CLIENTS: dict[tuple[str, str, str], Any] = {}
_CLIENTS_LOCK = threading.Lock()


def connect(config: MilvusConfig) -> Any:
    """One MilvusClient per (uri, token, db) and process; an unreachable URI is a one-line error."""
    key = (config.uri, config.token, config.db)
    with _CLIENTS_LOCK:
        if key not in _CLIENTS:
            try:
                from pymilvus import MilvusClient
            except ImportError as exc:
                raise IndexFormatError("CHIMED_RAG_STORE=milvus needs pymilvus: pip install 'chimed-rag[milvus]'") \
                    from exc
            try:
                _CLIENTS[key] = MilvusClient(uri=config.uri, token=config.token, db_name=config.db,
                                             timeout=config.timeout)
            except Exception as exc:  # pymilvus raises MilvusException or a bare gRPC future timeout
                raise IndexFormatError(f"cannot reach Milvus at {config.uri}: {_first_line(exc)}") from exc
        return _CLIENTS[key]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]


class MilvusCollection:
    """The collection of one index: schema, writes, both searches, and the passage fields of hits."""

    def __init__(self, client: Any, config: MilvusConfig, scheme: dict[str, Any]) -> None:
        self.client, self.config, self.scheme = client, config, scheme
        self.name = config.collection
        self.analyzer: dict[str, Any] = scheme.get("milvus_analyzer", {})
        self._cache: OrderedDict[str, tuple[str, Passage]] = OrderedDict()  # chunk id -> (version, fields)
        self._versions: OrderedDict[str, str] = OrderedDict()
        self._cache_lock = threading.Lock()

    # --- lifecycle -----------------------------------------------------------------------------------

    @classmethod
    def create(cls, config: MilvusConfig, dimension: int, embedding: dict[str, Any]) -> MilvusCollection:
        """A fresh, empty collection (a full build replaces what was there, after the model check)."""
        client = connect(config)
        if client.has_collection(config.collection):
            recorded = _description(client, config.collection)
            if recorded is not None:
                _check_model(config.collection, recorded.get("embedding", {}), embedding, "rebuild into")
            client.drop_collection(config.collection)
        analyzer = _create(client, config, dimension)
        scheme = {"chimed_rag": SCHEMA_VERSION, "embedding": embedding, "dimension": dimension,
                  "sparse": config.sparse, "milvus_analyzer": analyzer}
        client.alter_collection_properties(config.collection, {"chimed_rag.scheme": json.dumps(scheme)})
        return cls(client, config, scheme)

    @classmethod
    def open(cls, config: MilvusConfig, embedding: dict[str, Any]) -> MilvusCollection:
        client = connect(config)
        if not client.has_collection(config.collection):
            raise IndexFormatError(f"Milvus at {config.uri} has no collection {config.collection!r} "
                                   "(build it with 'chimed-rag index build' and CHIMED_RAG_STORE=milvus)")
        scheme = _description(client, config.collection)
        if scheme is None:
            raise IndexFormatError(f"Milvus collection {config.collection!r} was not made by chimed-rag "
                                   "(no recorded embedding scheme); refusing to serve it")
        _check_model(config.collection, scheme.get("embedding", {}), embedding, "serve")
        client.load_collection(config.collection)
        return cls(client, config, scheme)

    # --- writes --------------------------------------------------------------------------------------

    def lexical_text(self, tokens: Sequence[str], raw: str) -> str:
        return raw if self.config.sparse == "jieba" else " ".join(token_word(t) for t in tokens if t)

    def upsert(self, records: Sequence[ChunkRecord], vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        for start in range(0, len(records), BATCH):
            rows = [r.row(v) for r, v in zip(records[start:start + BATCH], vectors[start:start + BATCH].tolist())]
            self.client.upsert(self.name, rows)
        with self._cache_lock:
            for record in records:
                self._cache.pop(record.passage.chunk_id, None)
                self._versions.pop(record.passage.chunk_id, None)

    def delete(self, ids: Iterable[str]) -> None:
        ids = list(ids)
        for start in range(0, len(ids), BATCH):
            self.client.delete(self.name, ids=ids[start:start + BATCH])
        with self._cache_lock:
            for chunk_id in ids:
                self._cache.pop(chunk_id, None)

    def flush(self) -> None:
        self.client.flush(self.name)

    # --- reads ---------------------------------------------------------------------------------------

    def search_dense(self, vectors: np.ndarray, k: int) -> list[ScoredIds]:
        data = np.ascontiguousarray(vectors, dtype=np.float32).tolist()
        # Only the id and the version come back: a hit's text is read from the replica's own catalogue
        # when that is current, so the payload stays small (100 hits x 7 text fields cost 5x the time).
        results = self.client.search(self.name, data=data, anns_field="dense", limit=max(1, k),
                                     output_fields=["version"], search_params={"metric_type": "IP"},
                                     consistency_level="Strong")
        return [self._scored(hits, k) for hits in results]

    def search_lexical(self, text: str, k: int) -> ScoredIds:
        if not text.strip() or k <= 0:
            return []
        results = self.client.search(self.name, data=[text], anns_field="sparse", limit=k,
                                     output_fields=["version"], search_params={"metric_type": "BM25"},
                                     consistency_level="Strong")
        # BM25 scores are non-negative; Milvus Lite reports them negated as distances, Milvus as they are.
        return self._scored(results[0], k, transform=abs)

    def _scored(self, hits: Sequence[dict[str, Any]], k: int, transform: Any = float) -> ScoredIds:
        pairs = []
        with self._cache_lock:
            for hit in hits:
                entity = hit.get("entity") or {}
                chunk_id = str(hit.get("chunk_id", hit.get("id", entity.get("chunk_id"))))
                _remember(self._versions, chunk_id, str(entity.get("version", "")))
                pairs.append((chunk_id, float(transform(hit["distance"]))))
        return [(cid, s) for cid, s in _ranked(pairs, k) if s > 0 or transform is float]

    def version(self, chunk_id: str) -> str | None:
        """The stored version of a chunk seen in a recent search (None: not seen)."""
        with self._cache_lock:
            return self._versions.get(chunk_id)

    def passage(self, chunk_id: str) -> Passage | None:
        """A chunk's display fields as stored now (one query, then cached until it is written again)."""
        with self._cache_lock:
            cached = self._cache.get(chunk_id)
            if cached is not None and self._versions.get(chunk_id) == cached[0]:
                return cached[1]
        rows = self.client.query(self.name, ids=[chunk_id], output_fields=list(FIELDS), consistency_level="Strong")
        if not rows:
            return None
        found, version = _passage(rows[0]), str(rows[0].get("version", ""))
        with self._cache_lock:
            _remember(self._cache, chunk_id, (version, found))
            _remember(self._versions, chunk_id, version)
        return found

    def count(self) -> int:
        rows = self.client.query(self.name, filter="", output_fields=["count(*)"], consistency_level="Strong")
        return int(rows[0]["count(*)"])

    def ids(self) -> list[str]:
        iterator = self.client.query_iterator(self.name, batch_size=5000, filter="", output_fields=["chunk_id"])
        out: list[str] = []
        try:
            while batch := iterator.next():
                out.extend(row["chunk_id"] for row in batch)
        finally:
            iterator.close()
        return out

    def vectors(self, ids: Sequence[str]) -> np.ndarray:
        rows: dict[str, Any] = {}
        for start in range(0, len(ids), BATCH):
            for row in self.client.query(self.name, ids=list(ids[start:start + BATCH]), output_fields=["dense"]):
                rows[row["chunk_id"]] = row["dense"]
        return np.asarray([rows[i] for i in ids], dtype=np.float32)


def _create(client: Any, config: MilvusConfig, dimension: int) -> dict[str, Any]:
    """Create the collection; returns the analyzer Milvus' BM25 function got."""
    last: Exception | None = None
    for analyzer in _analyzers(config):
        try:
            with _quiet("pymilvus"):  # a refused tokenizer is expected on some engines; not an error to log
                client.create_collection(config.collection, schema=_schema(client, dimension, analyzer),
                                         index_params=_index_params(client, config))
            return analyzer
        except Exception as exc:  # an engine without this tokenizer refuses the schema: try the next
            if "tokenizer" not in str(exc).lower() and "analyzer" not in str(exc).lower():
                raise IndexFormatError(f"Milvus refused collection {config.collection!r}: {_first_line(exc)}") \
                    from exc
            last = exc
    raise IndexFormatError(f"Milvus at {config.uri} has no usable BM25 analyzer: {_first_line(last or Exception())}")


@contextmanager
def _quiet(name: str) -> Iterator[None]:
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _analyzers(config: MilvusConfig) -> list[dict[str, Any]]:
    if config.sparse == "jieba":
        return [{"tokenizer": "jieba"}]
    # Pre-analysed tokens only need splitting on spaces: Milvus ≥ 2.5 has "whitespace"; Milvus Lite only
    # "standard" (\w+ runs, lower-cased), which token_word's output survives unchanged.
    return [{"tokenizer": "whitespace"}, {"tokenizer": "standard"}]


def _schema(client: Any, dimension: int, analyzer: dict[str, Any]) -> Any:
    from pymilvus import DataType, Function, FunctionType

    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("chunk_id", DataType.VARCHAR, is_primary=True, max_length=512)
    schema.add_field("doc_id", DataType.VARCHAR, max_length=512)
    schema.add_field("version", DataType.VARCHAR, max_length=VERSION_CHARS)
    for name in ("title", "source", "locator", "text"):
        schema.add_field(name, DataType.VARCHAR, max_length=MAX_TEXT)
    schema.add_field("bm25_text", DataType.VARCHAR, max_length=MAX_TEXT, enable_analyzer=True,
                     analyzer_params=analyzer)
    schema.add_field("dense", DataType.FLOAT_VECTOR, dim=dimension)
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["bm25_text"],
                                 output_field_names=["sparse"]))
    return schema


def _index_params(client: Any, config: MilvusConfig) -> Any:
    params = client.prepare_index_params()
    extra = {"M": 32, "efConstruction": 200} if config.index_type == "HNSW" else {}
    if config.index_type == "IVF_FLAT":
        extra = {"nlist": 1024}
    params.add_index("dense", index_type=config.index_type, metric_type="IP", params=extra)
    # bm25s' defaults (k1 1.5, b 0.75), so both backends score alike.
    params.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                     params={"bm25_k1": 1.5, "bm25_b": 0.75})
    params.add_index("doc_id", index_type="INVERTED")
    return params


def _description(client: Any, name: str) -> dict[str, Any] | None:
    properties = client.describe_collection(name).get("properties") or {}
    raw = properties.get("chimed_rag.scheme")
    try:
        return json.loads(raw) if raw else None
    except json.JSONDecodeError:
        return None


def _check_model(name: str, built: dict[str, Any], configured: dict[str, Any], action: str) -> None:
    for key in ("model", "dimension", "backend", "quantization"):
        if key in configured and built.get(key) != configured[key]:
            raise ModelMismatchError(
                f"Milvus collection {name!r} was built with embedding {key} {built.get(key)!r} but "
                f"{configured[key]!r} is configured; refusing to {action} it (use another collection, "
                "CHIMED_RAG_MILVUS_COLLECTION, or configure the same model)")


class MilvusStore:
    """The dense-store protocol over a Milvus collection (ids are the collection's primary key)."""

    shared = True  # other processes change it: a generation folder is a catalogue, not the whole truth

    def __init__(self, collection: MilvusCollection) -> None:
        self.collection = collection

    def add(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        """Vectors without display fields (benchmarks); the indexer writes whole rows with :meth:`upsert`."""
        records = [ChunkRecord(Passage(i, i.split("#")[0], "", "", (0, 0)), "", "") for i in ids]
        self.collection.upsert(records, vectors)

    def upsert(self, records: Sequence[ChunkRecord], vectors: np.ndarray) -> None:
        self.collection.upsert(records, vectors)

    def delete(self, ids: Iterable[str]) -> None:
        self.collection.delete(ids)

    def search(self, vectors: np.ndarray, k: int) -> list[ScoredIds]:
        return self.collection.search_dense(vectors, k)

    def count(self) -> int:
        return self.collection.count()

    def fingerprint(self) -> str:
        return ids_fingerprint(self.collection.ids())

    def version(self, chunk_id: str) -> str | None:
        return self.collection.version(chunk_id)

    def passage(self, chunk_id: str) -> Passage | None:
        return self.collection.passage(chunk_id)


class MilvusSparse:
    """The sparse-index protocol over the same collection's BM25 field (written with the dense rows)."""

    shared = True

    def __init__(self, collection: MilvusCollection) -> None:
        self.collection = collection

    def add(self, ids: Sequence[str], tokens: Sequence[list[str]]) -> None:
        # A Milvus row carries its vector and its lexical text together: MilvusStore.upsert writes both.
        raise NotImplementedError("write Milvus rows through MilvusStore.upsert (vector and text in one row)")

    def delete(self, ids: Iterable[str]) -> None:
        self.collection.delete(ids)

    def search(self, query_tokens: list[str], k: int) -> ScoredIds:
        raw = "".join(t for t in query_tokens if not t.startswith("#"))
        return self.collection.search_lexical(self.collection.lexical_text(query_tokens, raw), k)

    def count(self) -> int:
        return self.collection.count()

    def fingerprint(self) -> str:
        return ids_fingerprint(self.collection.ids())
