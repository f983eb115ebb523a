"""The on-disk index: a directory with a manifest, the chunk store, the FAISS file and BM25 files.

``DIR`` is a symbolic link to one complete build in ``.DIR.builds/``. A new build is written
beside the old one and the link is swapped with one atomic ``rename``, so a crash at any point
leaves either the previous index or the new one, never a mix.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss

from indexer.analyzer import AnalyzerConfig, ChineseAnalyzer
from indexer.bm25_index import BM25Index
from indexer.dense_index import FaissConfig, load_faiss
from indexer.errors import IndexFormatError, ModelMismatchError
from indexer.lexicon import load_lexicon
from indexer.types import Document, Passage

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CHUNKS = "chunks.jsonl"
FAISS_FILE = "dense.faiss"
BM25_DIR = "bm25"
LEXICON_DIR = "lexicon"
USER_DICT = "user_dict.txt"
SYNONYMS = "synonyms.txt"
KEEP_BUILDS = 2


def corpus_fingerprint(documents: Sequence[Document]) -> str:
    """Content hash of the corpus: ids, titles, texts and metadata (aliases are indexed too)."""
    digest = hashlib.sha256()
    for doc in sorted(documents, key=lambda d: d.id):
        meta = json.dumps(doc.metadata, ensure_ascii=False, sort_keys=True, default=str)
        for part in (doc.id, doc.title, doc.text, meta):
            digest.update(part.encode("utf-8"))
            digest.update(b"\0")
    return digest.hexdigest()


def write_chunks(path: Path, passages: Sequence[Passage]) -> None:
    with path.open("w", encoding="utf-8") as out:
        for passage in passages:
            out.write(json.dumps(passage.to_json(), ensure_ascii=False) + "\n")


def read_chunks(path: Path) -> list[Passage]:
    with path.open(encoding="utf-8") as lines:
        return [Passage.from_json(json.loads(line)) for line in lines if line.strip()]


def read_manifest(directory: Path) -> dict[str, Any]:
    path = Path(directory) / MANIFEST
    if not Path(directory).exists():
        raise IndexFormatError(f"{directory}: no index here (build one with 'chimed-rag index build')")
    if not path.exists():
        raise IndexFormatError(f"{directory}: not an index directory ({MANIFEST} is missing)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise IndexFormatError(f"{path}: unreadable manifest ({exc.msg})") from exc
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexFormatError(
            f"{directory}: index format version {manifest.get('format_version')!r} is not supported "
            f"(this build reads version {FORMAT_VERSION}); rebuild the index"
        )
    return manifest


class BuildSlot:
    """A fresh build directory beside ``target``, published with :meth:`publish` or removed on failure."""

    def __init__(self, target: Path) -> None:
        self.target = Path(target).absolute()
        self.builds = self.target.parent / f".{self.target.name}.builds"
        stamp = time.strftime("%Y%m%dT%H%M%S")
        self.path = self.builds / f"{stamp}-{uuid.uuid4().hex[:8]}"
        self.published = False

    def __enter__(self) -> Path:
        plain = self.target.exists() and not self.target.is_symlink()
        if plain and not (self.target / MANIFEST).exists() and any(self.target.iterdir()):
            raise IndexFormatError(f"{self.target}: exists and is not an index; refusing to replace it")
        self.path.mkdir(parents=True)
        return self.path

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None and not self.published:
            shutil.rmtree(self.path, ignore_errors=True)

    def publish(self) -> None:
        if self.target.exists() and not self.target.is_symlink():
            # A plain directory (older layout or hand-made, possibly empty) becomes one of the builds.
            legacy = self.builds / f"legacy-{uuid.uuid4().hex[:8]}"
            os.replace(self.target, legacy)
        link = self.target.parent / f".{self.target.name}.link-{uuid.uuid4().hex[:8]}"
        os.symlink(os.path.relpath(self.path, self.target.parent), link)
        os.replace(link, self.target)
        self.published = True
        self._prune()

    def _prune(self) -> None:
        """Keep the live build and the one before it (for a manual rollback); best effort."""
        try:
            current = self.path.resolve()
            older = sorted((p for p in self.builds.iterdir() if p.resolve() != current),
                           key=lambda p: p.stat().st_mtime)
        except OSError:
            return
        for stale in older[: max(0, len(older) - (KEEP_BUILDS - 1))]:
            shutil.rmtree(stale, ignore_errors=True)


@dataclass
class LoadedIndex:
    """Everything a retriever needs, loaded once at startup."""

    path: Path
    manifest: dict[str, Any]
    passages: list[Passage]
    faiss_index: faiss.Index
    bm25: BM25Index
    analyzer: ChineseAnalyzer

    @property
    def index_id(self) -> str:
        return str(self.manifest["index_id"])


def check_embedding(manifest: dict[str, Any], embedding: dict[str, Any]) -> None:
    """Refuse an index built with another embedding model, dimension or encoder backend."""
    built = manifest["embedding"]
    for key in ("model", "dimension", "backend", "quantization"):
        if key in embedding and built.get(key) != embedding[key]:
            raise ModelMismatchError(
                f"index was built with embedding {key} {built.get(key)!r} but {embedding[key]!r} is configured; "
                "rebuild the index or configure the same model"
            )


def open_index(directory: str | Path, faiss_config: FaissConfig | None = None) -> LoadedIndex:
    directory = Path(directory)
    manifest = read_manifest(directory)
    root = directory.resolve()
    for name in (CHUNKS, FAISS_FILE, BM25_DIR):
        if not (root / name).exists():
            raise IndexFormatError(f"{directory}: incomplete index ({name} is missing)")
    passages = read_chunks(root / CHUNKS)
    faiss_index = load_faiss(root / FAISS_FILE, faiss_config)
    bm25 = BM25Index.load(root / BM25_DIR)
    if not len(passages) == faiss_index.ntotal == bm25.size == manifest["counts"]["chunks"]:
        raise IndexFormatError(
            f"{directory}: inconsistent index (chunks={len(passages)}, vectors={faiss_index.ntotal}, "
            f"bm25 rows={bm25.size}, manifest={manifest['counts']['chunks']})"
        )
    lexicon_dir = root / LEXICON_DIR
    lexicon = load_lexicon(lexicon_dir / USER_DICT, lexicon_dir / SYNONYMS)
    analyzer = ChineseAnalyzer(AnalyzerConfig(**manifest["bm25"]["analyzer_config"]), lexicon)
    if analyzer.fingerprint() != manifest["bm25"]["analyzer"]["fingerprint"]:
        raise IndexFormatError(f"{directory}: the BM25 analyzer differs from the one the index was built with")
    return LoadedIndex(root, manifest, passages, faiss_index, bm25, analyzer)
