"""Read a corpus (JSONL, Markdown/TXT, PDF, DOCX, HTML, XLSX/CSV files or folders of them) into ``Document``s.

Every problem is reported with the file and line that caused it, and loading is all-or-nothing:
the caller gets either every document or a ``CorpusError``, so a bad file never yields a
half-written index. The loader of a file is chosen from the one registry ``LOADERS`` by its extension
and confirmed by its first bytes (a ``.pdf`` that is no PDF is an error, not garbage text). Files of
the slow formats are parsed in a pool of worker processes.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import yaml
from tqdm import tqdm

from indexer.errors import CorpusError, CorruptDocumentError, UnsupportedFormatError, corpus_error
from indexer.formats.docx import DocxLoader
from indexer.formats.html import HtmlLoader
from indexer.formats.layout import FormatLoader, LoadOptions
from indexer.formats.pdf import PdfLoader
from indexer.formats.sheets import CsvLoader, XlsxLoader
from indexer.types import STAGES, Document

TEXT_SUFFIXES = (".md", ".markdown", ".txt")
JSONL_SUFFIXES = (".jsonl",)
_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.DOTALL)
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
_KNOWN_KEYS = {"id", "title", "text", "source", "url", "metadata"}
log = logging.getLogger(__name__)


def load_corpus(paths: Iterable[str | Path], skip_empty: bool = False, show_progress: bool = False,
                workers: int | None = None) -> list[Document]:
    """Load every document under ``paths`` (files or folders); ids must be unique across all.

    With ``skip_empty``, records whose text is empty are left out with a warning instead of failing
    the load (real data sets have the odd empty record).
    """
    paths = list(paths)
    files = [(file, root) for path in paths for file, root in _files(Path(path))]
    documents: list[Document] = []
    seen: dict[str, str] = {}
    problems: list[CorpusError] = []  # every problem, not just the first: one run shows the user all of them
    for doc, where in _parse_all(files, skip_empty, show_progress, workers, problems):
        if doc.id in seen:
            problems.append(CorpusError(f"{where}: duplicate document id {doc.id!r} (first seen at {seen[doc.id]})"))
            continue
        seen[doc.id] = where
        documents.append(doc)
    if problems:
        raise corpus_error(problems)
    if not documents:
        raise CorpusError(f"no documents found in {', '.join(map(str, paths))}")
    return documents


def _files(path: Path) -> Iterator[tuple[Path, Path]]:
    """(file, corpus root) for a file, or for every file of a known type under a folder."""
    if not path.exists():
        raise CorpusError(f"{path}: no such file or directory")
    if not path.is_dir():
        yield path, path.parent
        return
    for file in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in _BY_SUFFIX):
        if any(part.startswith(".") for part in file.relative_to(path).parts):
            continue
        if file.name.upper().startswith(("README", "AUTHORING")):
            continue  # documentation about the corpus, not part of it
        yield file, path


def _parse_all(files: Sequence[tuple[Path, Path]], skip_empty: bool, show_progress: bool,
               workers: int | None, problems: list[CorpusError]) -> Iterator[tuple[Document, str]]:
    """Each file's documents in file order; PDF/DOCX/HTML/XLSX files in worker processes when there are several.

    A file that fails adds its error(s) to ``problems`` and parsing goes on with the next file.
    """
    slow = [i for i, (file, _) in enumerate(files) if loader_for(file).name not in ("jsonl", "text")]
    workers = min(workers or os.cpu_count() or 1, len(slow))
    bar = tqdm(total=len(files), unit="file", desc=STAGES[0], disable=not show_progress)
    parsed: dict[int, list[tuple[Document, str]]] = {}
    pages = 0
    with _pool(workers) as pool:
        futures = {i: pool.submit(load_file, *files[i], skip_empty) for i in slow}
        for i in range(len(files)):
            try:
                parsed[i] = (_result(futures[i], files[i], skip_empty) if i in futures
                             else load_file(*files[i], skip_empty))
            except CorpusError as exc:
                problems.append(exc)
                parsed[i] = []
            pages += sum(int(d.metadata.get("page_count", 0)) for d, _ in parsed[i])
            bar.set_postfix_str(f"{files[i][0].name} · {pages} pages", refresh=False)
            bar.update()
            yield from parsed.pop(i)
    bar.close()


def _pool(workers: int) -> ProcessPoolExecutor | _Inline:
    # spawn, not fork: the parent may hold torch and tokenizer threads, which a forked child must not inherit.
    return ProcessPoolExecutor(workers, mp_context=get_context("spawn")) if workers > 1 else _Inline()


def _result(future: Any, file: tuple[Path, Path], skip_empty: bool) -> list[tuple[Document, str]]:
    try:
        return future.result()
    except BrokenProcessPool:
        # A script without an ``if __name__ == "__main__"`` guard cannot spawn workers: parse here instead.
        log.warning("%s: worker processes unavailable, parsing in this process", file[0])
        return load_file(*file, skip_empty)


class _Inline:
    """A pool of none: runs each call at once (one slow file is not worth starting a process)."""

    def __enter__(self) -> _Inline:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def submit(self, fn: Any, *args: Any) -> _Done:
        return _Done(fn(*args))


class _Done:
    def __init__(self, value: Any) -> None:
        self.value = value

    def result(self) -> Any:
        return self.value


def loader_for(file: Path) -> FormatLoader:
    loader = _BY_SUFFIX.get(file.suffix.lower())
    if loader is None:
        known = ", ".join(sorted(_BY_SUFFIX))
        raise UnsupportedFormatError(f"{file.name}: unsupported file type {file.suffix.lower() or '(none)'!r} "
                                     f"(supported: {known})")
    return loader


def load_file(file: Path, root: Path, skip_empty: bool = False,
              options: LoadOptions | None = None) -> list[tuple[Document, str]]:
    """The documents of one file, by the loader its extension names once its first bytes agree."""
    loader = loader_for(file)
    try:
        with file.open("rb") as handle:
            head = handle.read(4096)
    except OSError as exc:
        raise CorpusError(f"{file}: cannot be read ({exc.strerror})") from exc
    if not head:
        raise CorruptDocumentError(f"{file.name}: the file is empty (0 bytes)")
    if not loader.sniff(head):
        raise UnsupportedFormatError(f"{file.name}: the content is not {loader.name.upper()} although the name "
                                     f"ends in {file.suffix.lower()!r}")
    return loader.load(file, root, replace(options or LoadOptions(), skip_empty=skip_empty))


class JsonlLoader:
    name = "jsonl"
    suffixes = JSONL_SUFFIXES

    def sniff(self, head: bytes) -> bool:
        return b"\0" not in head

    def load(self, file: Path, root: Path, options: LoadOptions) -> list[tuple[Document, str]]:
        return list(load_jsonl(file, options.skip_empty))


class TextLoader:
    name = "text"
    suffixes = TEXT_SUFFIXES

    def sniff(self, head: bytes) -> bool:
        return b"\0" not in head

    def load(self, file: Path, root: Path, options: LoadOptions) -> list[tuple[Document, str]]:
        return [(load_text_file(file, root), f"{file}:1")]


# The one registry of formats: a new format is a loader here and nothing else.
LOADERS: dict[str, FormatLoader] = {loader.name: loader for loader in (
    JsonlLoader(), TextLoader(), PdfLoader(), DocxLoader(), HtmlLoader(), XlsxLoader(), CsvLoader())}
_BY_SUFFIX: dict[str, FormatLoader] = {suffix: loader for loader in LOADERS.values() for suffix in loader.suffixes}


def load_jsonl(file: Path, skip_empty: bool = False) -> Iterator[tuple[Document, str]]:
    """Yield (document, 'file:line') for each non-blank line of a JSONL file."""
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{file}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from exc
    problems: list[CorpusError] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{file}:{number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(CorpusError(f"{where}: invalid JSON ({exc.msg} at column {exc.colno})"))
            continue
        if skip_empty and isinstance(obj, dict) and not str(obj.get("text") or "").strip():
            log.warning("%s: skipping document %r with empty text", where, obj.get("id"))
            continue
        try:
            doc = document_from_record(obj, where)
        except CorpusError as exc:  # every bad record of the file, not just the first
            problems.append(exc)
            continue
        yield doc, where
    if problems:
        raise corpus_error(problems)


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
