"""File uploads to ``POST /v1/documents``: multipart parts saved to a private folder, parsed by the corpus loaders.

Everything is checked before the index is touched: the file count, each file's size and type, its pages,
and that it parses. Any failure is a 4xx with a message naming the file, and nothing is published.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request

from api.common import ApiError
from api.schemas import DocumentsRequest
from indexer.errors import CorpusError, LimitError, UnsupportedFormatError
from indexer.formats.layout import LoadOptions
from indexer.loaders import load_file
from indexer.types import Document
from rag.settings import Settings

FIELD = "file"
_UNSAFE = re.compile(r"[^\w.\-（）()\u3400-\u9fff]+")
_CHUNK = 1 << 20

# Documented beside the JSON body: the route reads either (FastAPI cannot bind both to one parameter).
OPENAPI_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": DocumentsRequest.model_json_schema()},
            "multipart/form-data": {"schema": {
                "type": "object", "required": [FIELD],
                "properties": {
                    FIELD: {"type": "array", "items": {"type": "string", "format": "binary"},
                            "description": "one or more files: .pdf .docx .html/.htm .xlsx .csv .md .txt .jsonl"},
                    "id": {"type": "string", "description": "document id for a single file (default: file name)"},
                    "title": {"type": "string", "description": "title for a single file (default: from the file)"},
                },
            }},
        },
    },
}


def status_of(exc: CorpusError) -> tuple[int, str]:
    if isinstance(exc, LimitError):
        return 413, "document_too_large"
    if isinstance(exc, UnsupportedFormatError):
        return 415, "unsupported_document_type"
    return 422, "unreadable_document"


async def uploaded_documents(request: Request, settings: Settings) -> list[Document]:
    form = await request.form(max_files=settings.upload_max_files, max_fields=16)
    files = [f for f in form.getlist(FIELD) if isinstance(f, UploadFile)]
    if not files:
        raise ApiError(400, "no_file", f"the multipart body has no file part named {FIELD!r}")
    overrides = {"doc_id": str(form.get("id") or "").strip(), "title": str(form.get("title") or "").strip()}
    if len(files) > 1 and any(overrides.values()):
        raise ApiError(400, "ambiguous_override", "'id' and 'title' can only be given with a single file")
    with tempfile.TemporaryDirectory(prefix="chimed-upload-") as folder:
        saved = [await _save(f, Path(folder), settings.upload_max_bytes) for f in files]
        options = LoadOptions(max_pages=settings.upload_max_pages)
        docs = await run_in_threadpool(_parse, saved, Path(folder), options)
    return [_override(d, **overrides) for d in docs] if len(docs) == 1 else docs


async def _save(upload: UploadFile, folder: Path, limit: int) -> Path:
    name = _UNSAFE.sub("_", Path(upload.filename or "upload").name).strip("._") or "upload"
    target = folder / name
    if target.exists():
        raise ApiError(400, "duplicate_file", f"{name}: the same file name twice in one upload")
    size = 0
    with target.open("wb") as out:
        while chunk := await upload.read(_CHUNK):
            size += len(chunk)
            if size > limit:
                raise ApiError(413, "document_too_large", f"{name}: over the upload limit of {limit} bytes "
                                                          "(setting upload_max_bytes)")
            out.write(chunk)
    return target


def _parse(files: list[Path], root: Path, options: LoadOptions) -> list[Document]:
    docs: list[Document] = []
    for file in files:
        try:
            docs.extend(doc for doc, _ in load_file(file, root, options=options))
        except CorpusError as exc:
            status, code = status_of(exc)
            raise ApiError(status, code, str(exc).replace(str(root) + "/", "")) from exc
    return docs


def _override(doc: Document, doc_id: str, title: str) -> Document:
    return replace(doc, id=doc_id or doc.id, title=title or doc.title)
