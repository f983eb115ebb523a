"""Build an index directory: load → chunk → embed → FAISS + BM25 → manifest, published atomically."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from indexer.analyzer import AnalyzerConfig, ChineseAnalyzer
from indexer.bm25_index import BM25Config, BM25Index
from indexer.chunking import Chunker, ChunkerConfig
from indexer.dense_index import FaissConfig, build_faiss, save_faiss
from indexer.embedding import Embedder
from indexer.index_dir import (
    BM25_DIR,
    CHUNKS,
    FAISS_FILE,
    FORMAT_VERSION,
    LEXICON_DIR,
    MANIFEST,
    SYNONYMS,
    USER_DICT,
    BuildSlot,
    corpus_fingerprint,
    write_chunks,
)
from indexer.lexicon import Lexicon, load_lexicon
from indexer.loaders import load_corpus
from indexer.types import Passage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildConfig:
    chunker: ChunkerConfig = field(default_factory=ChunkerConfig)
    analyzer: AnalyzerConfig = field(default_factory=AnalyzerConfig)
    bm25: BM25Config = field(default_factory=BM25Config)
    faiss: FaissConfig = field(default_factory=FaissConfig)
    user_dict: str | None = None
    synonyms: str | None = None
    # The document title is part of what is embedded and BM25-indexed: a chunk from the middle of
    # a document on 感冒 rarely names 感冒 itself.
    title_in_index: bool = True
    skip_empty: bool = False  # leave out (with a warning) records with empty text instead of failing


def index_text(passage: Passage, with_title: bool) -> str:
    """What is embedded and BM25-indexed for a chunk: its text, headed by the title and aliases."""
    if not with_title or not passage.title:
        return passage.text
    aliases = passage.metadata.get("aliases") or []
    names = "、".join(str(a) for a in aliases if a) if isinstance(aliases, list) else ""
    if names:
        return f"{passage.title}（{names}）\n{passage.text}"
    if passage.text.startswith(passage.title):
        return passage.text
    return f"{passage.title}\n{passage.text}"


def _write_lexicon(lexicon: Lexicon, directory: Path) -> None:
    directory.mkdir()
    (directory / USER_DICT).write_text("".join(f"{w}\n" for w in lexicon.user_words), encoding="utf-8")
    (directory / SYNONYMS).write_text("".join(" ".join(g) + "\n" for g in lexicon.synonym_groups), encoding="utf-8")


def build_index(
    corpus: Sequence[str | Path],
    out_dir: str | Path,
    embedder: Embedder,
    config: BuildConfig | None = None,
    show_progress: bool = False,
) -> dict[str, Any]:
    """Build and atomically publish an index at ``out_dir``; returns its manifest.

    Input errors are raised before anything is written; any failure later removes the partial build
    and leaves a previous index at ``out_dir`` untouched.
    """
    config = config or BuildConfig()
    timings: dict[str, float] = {}
    start = time.perf_counter()
    documents = load_corpus(corpus, skip_empty=config.skip_empty)
    lexicon = load_lexicon(config.user_dict, config.synonyms)
    timings["load_s"] = time.perf_counter() - start

    t = time.perf_counter()
    passages = Chunker(config.chunker).run(documents)
    timings["chunk_s"] = time.perf_counter() - t
    texts = [index_text(p, config.title_in_index) for p in passages]

    slot = BuildSlot(Path(out_dir))
    with slot as work:
        t = time.perf_counter()
        vectors = embedder.embed_passages(texts, show_progress=show_progress)
        timings["embed_s"] = time.perf_counter() - t

        t = time.perf_counter()
        save_faiss(build_faiss(vectors, config.faiss), work / FAISS_FILE)
        timings["faiss_s"] = time.perf_counter() - t

        t = time.perf_counter()
        analyzer = ChineseAnalyzer(config.analyzer, lexicon)
        BM25Index.build([analyzer.tokenize(x) for x in texts], config.bm25).save(work / BM25_DIR)
        _write_lexicon(lexicon, work / LEXICON_DIR)
        timings["bm25_s"] = time.perf_counter() - t

        write_chunks(work / CHUNKS, passages)
        timings["total_s"] = time.perf_counter() - start
        manifest = _manifest(documents, passages, embedder, analyzer, config, corpus, timings)
        (work / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
        slot.publish()
    return manifest


def _manifest(documents: Sequence[Any], passages: Sequence[Passage], embedder: Embedder,
              analyzer: ChineseAnalyzer, config: BuildConfig, corpus: Sequence[str | Path],
              timings: dict[str, float]) -> dict[str, Any]:
    fingerprint = corpus_fingerprint(documents)
    embedding = embedder.describe()
    settings_key = json.dumps([asdict(config), embedding], sort_keys=True, default=str)
    index_id = hashlib.sha256((fingerprint + settings_key).encode()).hexdigest()[:12]
    return {
        "format_version": FORMAT_VERSION,
        "index_id": index_id,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "corpus": {"paths": [str(p) for p in corpus], "fingerprint": fingerprint},
        "counts": {"documents": len(documents), "chunks": len(passages),
                   "characters": sum(len(d.text) for d in documents)},
        "chunker": asdict(config.chunker),
        "title_in_index": config.title_in_index,
        "embedding": embedding,
        "faiss": asdict(config.faiss),
        "bm25": {**asdict(config.bm25), "analyzer_config": asdict(config.analyzer),
                 "analyzer": analyzer.describe()},
        "timings": {k: round(v, 3) for k, v in timings.items()},
    }


def remove_index(out_dir: str | Path) -> None:
    """Delete an index link and all its builds."""
    target = Path(out_dir).absolute()
    builds = target.parent / f".{target.name}.builds"
    if target.is_symlink():
        target.unlink()
    elif target.exists():
        shutil.rmtree(target)
    shutil.rmtree(builds, ignore_errors=True)
