"""The admin API, closed by default: documents of the live index and reloads, behind a bearer token.

Without ``CHIMED_RAG_ADMIN_TOKEN`` every route answers 403 saying how to enable it; a missing or wrong
token gets 401. Mutations take the same incremental path as ``chimed-rag index add/delete`` and publish
a new calibrated generation, which the server then swaps in.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api.common import ApiError
from api.schemas import DocumentsRequest
from api.uploads import OPENAPI_BODY, uploaded_documents
from indexer.errors import CorpusError, IndexerError
from indexer.loaders import document_from_record
from indexer.types import Document
from rag.live import LiveIndex, ReloadResult
from rag.settings import Settings

TOKEN_ENV = "CHIMED_RAG_ADMIN_TOKEN"


def bearer_check(settings: Settings) -> Callable[[Request], None]:
    def check(request: Request) -> None:
        if not settings.admin_token:
            raise ApiError(403, "admin_disabled", f"the admin API is disabled; set {TOKEN_ENV} on the server to "
                                                  "enable it and send 'Authorization: Bearer <token>'")
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(given.strip().encode(),
                                                                    settings.admin_token.encode()):
            raise ApiError(401, "unauthorized", "missing or wrong admin bearer token")

    return check


def parse_documents(records: list[dict[str, Any]]) -> list[Document]:
    try:
        return [document_from_record(r, f"documents[{i}]") for i, r in enumerate(records)]
    except CorpusError as exc:
        raise ApiError(400, "invalid_document", str(exc)) from exc


async def _json_body(request: Request) -> DocumentsRequest:
    try:
        return DocumentsRequest.model_validate_json(await request.body())
    except ValidationError as exc:  # answered like any other invalid body
        raise RequestValidationError(exc.errors(include_url=False), body=None) from exc


def _published(result: ReloadResult) -> JSONResponse:
    # The new generation is on disk either way; 409 says the server could not swap it in.
    return JSONResponse(status_code=409 if result.status == "refused" else 200, content=result.to_json())


async def _mutate(call: Callable[[], ReloadResult]) -> JSONResponse:
    try:
        return _published(await run_in_threadpool(call))
    except (IndexerError, ValueError) as exc:
        raise ApiError(400, "rejected", str(exc)) from exc


def add_admin_routes(app: FastAPI, settings: Settings, get_live: Callable[[Request], LiveIndex]) -> None:
    admin = [Depends(bearer_check(settings))]

    @app.get("/v1/documents", dependencies=admin)
    async def documents(request: Request) -> dict[str, Any]:
        index = get_live(request).pipeline.index
        docs = [{"id": doc_id, **{k: v for k, v in d.items() if k != "characters"}}
                for doc_id, d in index.manifest["documents"].items()]
        return {"index": index.index_id, "generation": index.generation, "documents": docs}

    @app.post("/v1/documents", dependencies=admin, openapi_extra=OPENAPI_BODY)
    async def add(request: Request) -> JSONResponse:
        """JSON corpus records, or files as multipart/form-data (parsed by the corpus loaders)."""
        if request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
            docs = await uploaded_documents(request, settings)
        else:
            docs = parse_documents((await _json_body(request)).documents)
        live = get_live(request)
        return await _mutate(lambda: live.add_documents(docs))

    @app.delete("/v1/documents/{doc_id}", dependencies=admin)
    async def delete(doc_id: str, request: Request) -> JSONResponse:
        live = get_live(request)
        if doc_id not in live.pipeline.index.manifest["documents"]:
            raise ApiError(404, "no_such_document", f"no document {doc_id!r} in the live index")
        return await _mutate(lambda: live.delete_documents([doc_id]))

    @app.post("/v1/admin/reload", dependencies=admin)
    async def reload(request: Request) -> JSONResponse:
        return _published(await run_in_threadpool(get_live(request).reload))
