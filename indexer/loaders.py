"""Read a corpus (JSONL files, folders of Markdown/TXT) into validated ``Document`` records.

Every problem is reported with the file and line that caused it, and loading is all-or-nothing:
the caller gets either every document or a ``CorpusError``, so a bad file never yields a
half-written index.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

from indexer.errors import CorpusError
from indexer.types import Document

TEXT_SUFFIXES = (".md", ".markdown", ".txt")
JSONL_SUFFIXES = (".jsonl",)
_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.DOTALL)
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
_KNOWN_KEYS = {"id", "title", "text", "source", "url", "metadata"}
log = logging.getLogger(__name__)


def load_corpus(paths: Iterable[str | Path], skip_empty: bool = False) -> list[Document]:
    """Load every document under ``paths`` (files or folders); ids must be unique across all.

    With ``skip_empty``, records whose text is empty are left out with a warning instead of failing
    the load (real data sets have the odd empty record).
    """
    documents: list[Document] = []
    seen: dict[str, str] = {}
    paths = list(paths)
    for path in paths:
        for doc, where in _load_path(Path(path), skip_empty):
            if doc.id in seen:
                raise CorpusError(f"{where}: duplicate document id {doc.id!r} (first seen at {seen[doc.id]})")
            seen[doc.id] = where
            documents.append(doc)
    if not documents:
        raise CorpusError(f"no documents found in {', '.join(map(str, paths))}")
    return documents


def _load_path(path: Path, skip_empty: bool = False) -> Iterator[tuple[Document, str]]:
    if not path.exists():
        raise CorpusError(f"{path}: no such file or directory")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES + JSONL_SUFFIXES)
        for file in files:
            if any(part.startswith(".") for part in file.relative_to(path).parts):
                continue
            if file.name.upper().startswith(("README", "AUTHORING")):
                continue  # documentation about the corpus, not part of it
            yield from _load_file(file, path, skip_empty)
    else:
        yield from _load_file(path, path.parent, skip_empty)


def _load_file(file: Path, root: Path, skip_empty: bool) -> Iterator[tuple[Document, str]]:
    suffix = file.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        yield from load_jsonl(file, skip_empty)
    elif suffix in TEXT_SUFFIXES:
        yield load_text_file(file, root), f"{file}:1"
    else:
        raise CorpusError(f"{file}: unsupported file type {suffix!r} (expected .jsonl, .md or .txt)")


def load_jsonl(file: Path, skip_empty: bool = False) -> Iterator[tuple[Document, str]]:
    """Yield (document, 'file:line') for each non-blank line of a JSONL file."""
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{file}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{file}:{number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CorpusError(f"{where}: invalid JSON ({exc.msg} at column {exc.colno})") from exc
        if skip_empty and isinstance(obj, dict) and not str(obj.get("text") or "").strip():
            log.warning("%s: skipping document %r with empty text", where, obj.get("id"))
            continue
        yield document_from_record(obj, where), where


def document_from_record(obj: Any, where: str) -> Document:
    if not isinstance(obj, dict):
        raise CorpusError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    doc_id = obj.get("id")
    if isinstance(doc_id, int):
        doc_id = str(doc_id)
    if not isinstance(doc_id, str) or not doc_id.strip():
        raise CorpusError(f"{where}: missing or empty 'id'")
    text = obj.get("text")
    if not isinstance(text, str) or not text.strip():
        raise CorpusError(f"{where}: document {doc_id!r} has missing or empty 'text'")
    metadata = obj.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise CorpusError(f"{where}: 'metadata' of {doc_id!r} must be an object")
    extra = {k: v for k, v in obj.items() if k not in _KNOWN_KEYS}
    return Document(
        id=doc_id.strip(),
        title=str(obj.get("title") or "").strip(),
        text=text,
        source=str(obj.get("source") or ""),
        url=str(obj.get("url") or ""),
        metadata={**extra, **metadata},
    )


def load_text_file(file: Path, root: Path) -> Document:
    """A Markdown/TXT document: optional YAML front matter, title = first heading or file name."""
    try:
        raw = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{file}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from exc
    meta, body = _split_front_matter(raw, file)
    heading = _HEADING.search(body)
    title = str(meta.pop("title", "") or (heading.group(1) if heading else file.stem)).strip()
    doc_id = str(meta.pop("id", "") or file.relative_to(root).with_suffix("").as_posix()).strip()
    text = markdown_to_text(body, drop_title=title) if file.suffix.lower() != ".txt" else body.strip()
    if not text.strip():
        raise CorpusError(f"{file}:1: document {doc_id!r} has no text")
    return Document(
        id=doc_id,
        title=title,
        text=text,
        source=str(meta.pop("source", "") or file.relative_to(root).as_posix()),
        url=str(meta.pop("url", "") or ""),
        metadata=meta,
    )


def _split_front_matter(raw: str, file: Path) -> tuple[dict[str, Any], str]:
    match = _FRONT_MATTER.match(raw)
    if not match:
        return {}, raw
    try:
        meta = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", 0) + 2
        raise CorpusError(f"{file}:{line}: invalid front matter ({exc})") from exc
    if not isinstance(meta, dict):
        raise CorpusError(f"{file}:2: front matter must be a mapping")
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in meta.items()}, raw[match.end():]


def markdown_to_text(body: str, drop_title: str = "") -> str:
    """Plain text for indexing: heading marks and list bullets removed, the H1 title dropped.

    Section headings are kept as their own lines so that chunks carry them as context.
    """
    out: list[str] = []
    for line in body.strip().splitlines():
        heading = _HEADING.match(line)
        if heading:
            text = heading.group(1)
            if text == drop_title and not out:
                continue
            out.append(f"【{text}】")
            continue
        out.append(re.sub(r"^\s*(?:[-*+]|\d+[.)])\s+", "", line).rstrip())
    return "\n".join(out).strip()
