"""The service's edge, wired around the routes of api/app.py: middleware order, docs, metrics, contract.

Middleware, outermost first (each sees what the ones after it turn away):
ErrorGuard > RequestObserver (metrics, access log) > TrustedHost > BodyLimit > ApiKeyAuth > RateLimit
> AnswerLimits (concurrency, deadline) > the app.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.middleware.trustedhost import TrustedHostMiddleware

from api.hygiene import BodyLimit, ErrorGuard, document
from api.limits import AnswerLimits, RateLimit
from api.metrics import Metrics, RequestObserver, add_metrics_route, configure_access_log
from api.security import ApiKeyAuth, document_auth
from rag.settings import Settings

# The routes that do retrieval or generation: bounded, timed and rate limited.
WORK_PATHS = frozenset({"/v1/ask", "/v1/search", "/v1/chat/completions", "/v1/completions"})
STREAM_PATHS = frozenset({"/v1/ask", "/v1/chat/completions", "/v1/completions"})


def new_app(settings: Settings, **kwargs: Any) -> FastAPI:
    """The FastAPI app, with Swagger UI and ReDoc served from packaged assets (no CDN), or no docs at all."""
    if settings.torch_threads:  # here, since each `serve --workers` process builds its own app
        import torch

        torch.set_num_threads(settings.torch_threads)
    if settings.docs:
        return FastAPIOffline(**kwargs)
    return FastAPI(docs_url=None, redoc_url=None, openapi_url=None, **kwargs)


def install(app: FastAPI, settings: Settings) -> None:
    """Call once all routes are added."""
    metrics = Metrics()
    app.state.metrics = metrics
    if settings.metrics:
        add_metrics_route(app, metrics)
        metrics.watch_pipeline(lambda: getattr(getattr(app.state, "live", None), "pipeline", None))
    document(app, settings, WORK_PATHS, STREAM_PATHS)
    if settings.api_keys:
        document_auth(app, settings.auth_exempt_paths)
    if settings.access_log:
        configure_access_log()
    # add_middleware wraps what is there, so the innermost goes first.
    app.add_middleware(AnswerLimits, paths=WORK_PATHS, max_concurrent=settings.max_concurrent,
                       timeout=settings.request_timeout)
    if settings.rate_limit:
        app.add_middleware(RateLimit, paths=WORK_PATHS, rate=settings.rate_limit)
    if settings.api_keys:
        app.add_middleware(ApiKeyAuth, keys=settings.api_keys, exempt=settings.auth_exempt_paths)
    # An upload may hold upload_max_files files of upload_max_bytes each, plus the multipart framing.
    uploads = settings.upload_max_bytes * settings.upload_max_files + 65_536
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes,
                       paths={"/v1/documents": max(uploads, settings.max_body_bytes)})
    if "*" not in settings.allowed_hosts:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.allowed_hosts, www_redirect=False)
    app.add_middleware(RequestObserver, metrics=metrics, log_requests=settings.access_log)
    app.add_middleware(ErrorGuard)


def on_startup(app: FastAPI) -> None:
    """Once the pipeline is loaded: count its answers."""
    # Later generations inherit the listener (rag.live copies it at each swap).
    app.state.live.pipeline.audit.listeners.append(app.state.metrics.observe_answer)
