"""The on-disk index: generations of (manifest, chunk store, dense store, sparse index, lexicon).

``DIR`` is a symbolic link to one complete generation in ``.DIR.builds/``. A new generation is written
in a staging folder there, sealed (the manifest records the SHA-256 and size of every file), renamed to
its final name and published by swapping the link with one atomic ``rename``: a crash at any point
leaves the previous generation live, and a staging folder never counts as a generation. Writers on one
index take ``.DIR.lock`` (filelock), so a staging folder found while holding it belongs to a dead writer.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from filelock import FileLock

from indexer.analyzer import AnalyzerConfig, ChineseAnalyzer
from indexer.backends import BM25_DIR, backend_for
from indexer.bm25_index import BM25Config
from indexer.dense_index import FaissConfig
from indexer.errors import IndexFormatError, IntegrityError, ModelMismatchError
from indexer.lexicon import load_lexicon
from indexer.store_config import StoreConfig
from indexer.stores import DENSE_FILE, DENSE_IDS, DenseStore, SparseIndex, ids_fingerprint
from indexer.types import Document, Passage

log = logging.getLogger(__name__)

FORMAT_VERSION = 2
MANIFEST = "manifest.json"
CHUNKS = "chunks.jsonl"
FAISS_FILE = DENSE_FILE
LEXICON_DIR = "lexicon"
USER_DICT = "user_dict.txt"
SYNONYMS = "synonyms.txt"
CALIBRATION_FILE = "calibration.json"  # written by rag.calibration; part of the generation like any file
KEEP_BUILDS = 2
STAGING = ".staging-"

Verify = Literal["none", "size", "full"]


def document_fingerprint(doc: Document) -> str:
    """Content hash of one document: what decides whether it must be re-chunked and re-embedded."""
    meta = json.dumps(doc.metadata, ensure_ascii=False, sort_keys=True, default=str)
    digest = hashlib.sha256()
    for part in (doc.id, doc.title, doc.text, doc.source, doc.url, meta):
        digest.update(part.encode("utf-8") + b"\0")
    if doc.layout:  # where each block sits decides the chunks' locators (absent: earlier fingerprints hold)
        digest.update(repr(doc.layout).encode("utf-8"))
    return digest.hexdigest()


def corpus_fingerprint(fingerprints: dict[str, str]) -> str:
    """Hash of the per-document fingerprints: equal for equal corpora however they were assembled."""
    digest = hashlib.sha256()
    for doc_id in sorted(fingerprints):
        digest.update(f"{doc_id}\0{fingerprints[doc_id]}\0".encode())
    return digest.hexdigest()


def write_chunks(path: Path, passages: Sequence[Passage]) -> None:
    with path.open("w", encoding="utf-8") as out:
        for passage in passages:
            out.write(json.dumps(passage.to_json(), ensure_ascii=False) + "\n")


def read_chunks(path: Path) -> list[Passage]:
    passages = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise IndexFormatError(f"{path}: unreadable chunk store ({exc})") from exc
    for number, line in enumerate(lines, start=1):
        if line.strip():
            try:
                passages.append(Passage.from_json(json.loads(line)))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise IndexFormatError(f"{path}:{number}: not a chunk record") from exc
    return passages


def read_manifest(directory: Path) -> dict[str, Any]:
    path = Path(directory) / MANIFEST
    if not Path(directory).exists():
        raise IndexFormatError(f"{directory}: no index here (build one with 'chimed-rag index build')")
    if not path.exists():
        raise IndexFormatError(f"{directory}: not an index directory ({MANIFEST} is missing)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IndexFormatError(f"{path}: unreadable manifest ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        version = manifest.get("format_version") if isinstance(manifest, dict) else None
        raise IndexFormatError(
            f"{directory}: index format version {version!r} is not supported "
            f"(this build reads version {FORMAT_VERSION}); rebuild the index"
        )
    return manifest


# --- integrity -------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as data:
        for block in iter(lambda: data.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_digests(directory: Path) -> dict[str, dict[str, Any]]:
    """SHA-256 and size of every file of a generation (the manifest itself excepted), by relative path."""
    return {str(p.relative_to(directory)): {"sha256": _sha256(p), "size": p.stat().st_size}
            for p in sorted(directory.rglob("*")) if p.is_file() and p.name != MANIFEST}


def verify_files(directory: Path, manifest: dict[str, Any], full: bool) -> None:
    """Sizes always, hashes when ``full``; the first bad file is named in the error."""
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise IntegrityError(f"{directory}/{MANIFEST}: records no file hashes; rebuild the index")
    for name, expected in files.items():
        path = directory / name
        if not path.is_file():
            raise IntegrityError(f"{path}: missing (the manifest lists it)")
        size = path.stat().st_size
        if size != expected["size"]:
            raise IntegrityError(f"{path}: size {size} bytes, the manifest says {expected['size']}")
        if full and _sha256(path) != expected["sha256"]:
            raise IntegrityError(f"{path}: SHA-256 differs from the manifest (the file was changed or damaged)")
    present = {str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST}
    extra = sorted(present - set(files))
    if extra:  # e.g. a calibration.json dropped in by hand: it would be served unverified
        raise IntegrityError(f"{directory / extra[0]}: not part of this generation (the manifest lacks it)")


# --- generations -----------------------------------------------------------------------------------


def builds_dir(target: Path) -> Path:
    target = Path(target).absolute()
    return target.parent / f".{target.name}.builds"


@contextmanager
def write_lock(target: Path, timeout: float = 600) -> Iterator[None]:
    """One writer per index at a time (CLI, admin API, another host process)."""
    target = Path(target).absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target.parent / f".{target.name}.lock"), timeout=timeout):
        yield


class Generation:
    """A staging folder for the next generation of ``target``; :meth:`publish` seals and swaps it in."""

    def __init__(self, target: Path) -> None:
        self.target = Path(target).absolute()
        self.builds = builds_dir(self.target)
        self.path = self.builds / f"{STAGING}{uuid.uuid4().hex[:8]}"
        self.published: Path | None = None

    def __enter__(self) -> Generation:
        plain = self.target.exists() and not self.target.is_symlink()
        if plain and not (self.target / MANIFEST).exists() and any(self.target.iterdir()):
            raise IndexFormatError(f"{self.target}: exists and is not an index; refusing to replace it")
        self._remove_stale_staging()
        self.path.mkdir(parents=True)
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self.published is None:
            shutil.rmtree(self.path, ignore_errors=True)

    def _remove_stale_staging(self) -> None:
        # Callers hold the write lock: any staging folder here was left by a killed or failed writer.
        if self.builds.is_dir():
            for stale in self.builds.glob(f"{STAGING}*"):
                shutil.rmtree(stale, ignore_errors=True)

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        (self.path / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")

    def publish(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Record every file's hash in the manifest, name the folder, swap the link, prune old ones."""
        manifest = {**manifest, "files": file_digests(self.path)}
        self.write_manifest(manifest)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        final = self.builds / f"g{int(manifest['generation']):06d}-{stamp}-{uuid.uuid4().hex[:6]}"
        os.replace(self.path, final)
        if self.target.exists() and not self.target.is_symlink():
            # A plain directory (hand-made, possibly empty) becomes one of the builds.
            os.replace(self.target, self.builds / f"legacy-{uuid.uuid4().hex[:8]}")
        link = self.target.parent / f".{self.target.name}.link-{uuid.uuid4().hex[:8]}"
        os.symlink(os.path.relpath(final, self.target.parent), link)
        os.replace(link, self.target)
        self.published = final
        prune(self.target)
        return manifest


def complete_generations(target: Path) -> list[Path]:
    """Sealed generations (a manifest with file hashes), oldest first; staging folders never count."""
    builds = builds_dir(target)
    if not builds.is_dir():
        return []
    out = []
    for path in builds.iterdir():
        if path.name.startswith(STAGING) or not (path / MANIFEST).is_file():
            continue
        try:
            if "files" in json.loads((path / MANIFEST).read_text("utf-8")):
                out.append(path)
        except (OSError, json.JSONDecodeError):
            continue
    return sorted(out, key=lambda p: p.stat().st_mtime)


def prune(target: Path) -> None:
    """Keep the live generation and the newest complete one before it (for a manual rollback)."""
    try:
        live = Path(target).resolve()
        builds = builds_dir(target)
        older = [p for p in complete_generations(target) if p.resolve() != live]
        keep = set(older[-(KEEP_BUILDS - 1):]) if KEEP_BUILDS > 1 else set()
        for path in builds.iterdir():
            if path.resolve() != live and path not in keep and not path.name.startswith(STAGING):
                shutil.rmtree(path, ignore_errors=True)
    except OSError:
        return


def link_files(source: Path, dest: Path, skip: Sequence[str] = (MANIFEST,)) -> None:
    """Copy a generation's files into a staging folder as hard links (generations are never edited)."""
    for path in source.rglob("*"):
        rel = path.relative_to(source)
        if path.is_dir() or str(rel) in skip:
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, dest / rel)
        except OSError:
            shutil.copy2(path, dest / rel)


# --- opening ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadedIndex:
    """Everything a retriever needs, loaded once per generation."""

    path: Path
    manifest: dict[str, Any]
    passages: list[Passage]
    dense: DenseStore
    sparse: SparseIndex
    analyzer: ChineseAnalyzer
    # Set when a shared store (Milvus) holds other chunks than this generation's catalogue: another
    # replica changed it since. Searches see the store's current content either way.
    drift: str | None = None
    chunks: dict[str, Passage] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "chunks", {p.chunk_id: p for p in self.passages})

    @property
    def index_id(self) -> str:
        return str(self.manifest["index_id"])

    @property
    def generation(self) -> int:
        return int(self.manifest.get("generation", 0))

    @property
    def shared(self) -> bool:
        return bool(getattr(self.dense, "shared", False))

    def passage(self, chunk_id: str) -> Passage:
        """This generation's copy of a chunk, unless a shared store holds another version of its document
        (another replica added or changed it since): then the store's own fields."""
        local = self.chunks.get(chunk_id)
        if self.shared:
            stored = self.dense.version(chunk_id)  # type: ignore[attr-defined]
            doc = self.manifest["documents"].get(local.doc_id, {}) if local else {}
            if local is None or (stored and not str(doc.get("fingerprint", "")).startswith(stored)):
                found = self.dense.passage(chunk_id)  # type: ignore[attr-defined]
                if found is not None:
                    return found
        if local is None:
            raise KeyError(chunk_id)
        return local


def check_embedding(manifest: dict[str, Any], embedding: dict[str, Any], fallback: str | None = None) -> None:
    """Refuse an index built with another embedding model, dimension or encoder backend.

    ``fallback``: why the encoder fell back from the index's backend to torch (the "auto" setting): then a
    backend or quantisation difference only warns. Same model and weights, so int8 passages and fp32 queries
    still match (cosine 0.999 between the two encoders' vectors), but the index should be rebuilt or the
    runtime installed."""
    built = manifest["embedding"]
    for key in ("model", "dimension", "backend", "quantization"):
        if fallback and key in ("backend", "quantization"):
            if built.get(key) != embedding.get(key):
                log.warning("index was built with embedding %s %r but queries are encoded with %r (%s)", key,
                            built.get(key), embedding.get(key), fallback)
            continue
        if key in embedding and built.get(key) != embedding[key]:
            raise ModelMismatchError(
                f"index was built with embedding {key} {built.get(key)!r} but {embedding[key]!r} is configured; "
                "rebuild the index or configure the same model"
            )


def load_analyzer(root: Path, manifest: dict[str, Any]) -> ChineseAnalyzer:
    lexicon_dir = root / LEXICON_DIR
    for name in (USER_DICT, SYNONYMS):
        if not (lexicon_dir / name).is_file():
            raise IndexFormatError(f"{lexicon_dir / name}: missing (the index's lexicon)")
    lexicon = load_lexicon(lexicon_dir / USER_DICT, lexicon_dir / SYNONYMS)
    analyzer = ChineseAnalyzer(AnalyzerConfig(**manifest["bm25"]["analyzer_config"]), lexicon)
    if analyzer.fingerprint() != manifest["bm25"]["analyzer"]["fingerprint"]:
        raise IndexFormatError(f"{lexicon_dir}: the BM25 analyzer differs from the one the index was built with")
    return analyzer


def bm25_config(manifest: dict[str, Any]) -> BM25Config:
    bm25 = manifest["bm25"]
    return BM25Config(k1=bm25["k1"], b=bm25["b"], method=bm25["method"])


def open_index(directory: str | Path, faiss_config: FaissConfig | None = None,
               verify: Verify = "size", store: StoreConfig | None = None, strict: bool = False,
               mmap: bool = False) -> LoadedIndex:
    """Open the live generation; ``verify``: file sizes (cheap, default), ``full`` hashes, or ``none``.

    ``mmap``: FAISS vectors and the bm25s matrix are mapped read-only from the generation's files (the
    server's choice: N workers share one copy). Verification reads the same files first, so what is mapped
    is what was hashed; files of a generation are never rewritten in place, only new generations written.

    ``store``: how this process reaches a shared store (default: the CHIMED_RAG_MILVUS_* environment).
    ``strict``: a shared store must hold exactly this generation's chunks (writers and ``index verify``);
    otherwise a difference is only reported in ``drift`` (a replica whose catalogue is behind still serves).
    """
    directory = Path(directory)
    manifest = read_manifest(directory)
    root = directory.resolve()
    if verify != "none":
        verify_files(root, manifest, full=verify == "full")
    passages = read_chunks(root / CHUNKS)
    try:
        stores = backend_for(manifest, store).open(root, manifest, faiss_config or FaissConfig(**manifest["faiss"]),
                                                   bm25_config(manifest), mmap=mmap)
    except ValueError as exc:  # an unknown store type or bad connection settings
        raise IndexFormatError(f"{root}: {exc}") from exc
    analyzer = load_analyzer(root, manifest)
    index = LoadedIndex(root, manifest, passages, stores.dense, stores.sparse, analyzer)
    drift = check_consistency(index, strict or not index.shared)
    if drift:
        log.warning("%s", drift)
        object.__setattr__(index, "drift", drift)
    return index


def check_consistency(index: LoadedIndex, strict: bool = True) -> str | None:
    """Chunk store, dense store, sparse index and manifest hold exactly the same chunk ids.

    A shared store that differs returns the difference (``strict=False``) instead of raising.
    """
    try:
        _check_stores(index)
    except IndexFormatError as exc:
        if strict:
            raise
        return f"{exc} (another writer changed the shared store since this generation; searches see its content)"
    return None


def _check_stores(index: LoadedIndex) -> None:
    vectors = index.dense.count()
    # A shared store's lexical side lives in the same rows as its vectors: one count for both.
    rows = vectors if index.shared else index.sparse.count()
    counts = {"chunks": len(index.chunks), "vectors": vectors, "bm25 rows": rows,
              "manifest": index.manifest["counts"]["chunks"]}
    where = f"{index.path}/{CHUNKS}"
    if len(index.chunks) != len(index.passages):
        raise IndexFormatError(f"{where}: duplicate chunk ids")
    if len(set(counts.values())) != 1:
        detail = ", ".join(f"{k}={v}" for k, v in counts.items())
        raise IndexFormatError(f"{index.path}: inconsistent index ({detail})")
    expected = ids_fingerprint(index.chunks)
    stores = (("dense store " + DENSE_IDS, index.dense), ("BM25 " + BM25_DIR, index.sparse))
    if index.shared:
        stores = (("Milvus collection", index.dense),)
    for name, store in stores:
        if store.fingerprint() != expected:
            raise IndexFormatError(f"{index.path}: the {name} holds other chunk ids than {CHUNKS}")
