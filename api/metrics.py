"""Observability: ``GET /metrics`` (Prometheus text format) and one JSON access-log line per request.

Per-answer figures (stage latencies, safety level, abstention reason) come from the audit record that the
pipeline writes once per answer, so streamed and non-streamed answers are counted the same way. The access
log never holds a body, so no question text reaches it.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from api.hygiene import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("chimed_rag.access")

# Pipeline stages as the answer timings name them ("<stage>_ms").
STAGES = ("triage", "condense", "abstain", "retrieve", "rerank", "prompt", "generate", "cite", "support", "total")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    """One registry per app, so that apps in one process (tests, workers' shared code) stay apart."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("chimed_rag_requests", "HTTP requests by route and status",
                                ["route", "method", "status"], registry=r)
        self.latency = Histogram("chimed_rag_request_seconds", "HTTP request latency by route", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.in_flight = Gauge("chimed_rag_in_flight_requests", "HTTP requests in progress", registry=r)
        self.stages = Histogram("chimed_rag_stage_seconds", "Answer pipeline latency per stage", ["stage"],
                                buckets=LATENCY_BUCKETS, registry=r)
        self.answers = Counter("chimed_rag_answers", "Answers by safety level and abstention reason",
                               ["safety", "abstention"], registry=r)

    def observe_answer(self, trace: dict[str, Any]) -> None:
        """Called with each answer's audit record."""
        for name, ms in (trace.get("timings") or {}).items():
            stage = name.removesuffix("_ms")
            if stage in STAGES:
                self.stages.labels(stage).observe(float(ms) / 1000)
        safety = (trace.get("safety") or {}).get("level", "unassessed")
        abstention = trace.get("abstention") or {}
        reason = (abstention.get("reason") or "abstained") if abstention.get("abstain") else "answered"
        self.answers.labels(safety, reason).inc()

    def watch_pipeline(self, get_pipeline: Callable[[], Any]) -> None:
        """Index and embedder figures, read from the live pipeline at each scrape."""
        self.registry.register(_PipelineCollector(get_pipeline))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _PipelineCollector(Collector):
    def __init__(self, get_pipeline: Callable[[], Any]) -> None:
        self.get_pipeline = get_pipeline

    def collect(self) -> Iterator[Metric]:
        pipeline = self.get_pipeline()
        if pipeline is None:
            return
        info = pipeline.index_info()
        generation = GaugeMetricFamily("chimed_rag_index_generation", "The index served: build time "
                                       "(Unix seconds), labelled with its id", labels=["index_id"])
        generation.add_metric([info["id"]], _timestamp(info["built_at"]))
        yield generation
        yield GaugeMetricFamily("chimed_rag_index_documents", "Documents in the index", value=info["documents"])
        yield GaugeMetricFamily("chimed_rag_index_chunks", "Chunks in the index", value=info["chunks"])
        embedder = pipeline.embedder
        for kind in ("hits", "misses"):
            yield CounterMetricFamily(f"chimed_rag_embedder_cache_{kind}", f"Query-embedding cache {kind}",
                                      value=getattr(embedder, f"cache_{kind}", 0))


def _timestamp(iso: str) -> float:
    try:
        return datetime.fromisoformat(iso).timestamp()
    except (TypeError, ValueError):
        return 0.0


def add_metrics_route(app: FastAPI, metrics: Metrics) -> None:
    @app.get("/metrics", response_class=Response, tags=["operations"],
             responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})
    async def prometheus_metrics(_: Request) -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


class RequestObserver:
    """Counts, times and logs every request, including those that middleware inside it turned away."""

    def __init__(self, app: ASGIApp, metrics: Metrics, log_requests: bool) -> None:
        self.app, self.metrics, self.log_requests = app, metrics, log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), 500

        async def tracked(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, tracked)
        finally:
            self.metrics.in_flight.dec()
            self._record(scope, status, time.perf_counter() - start)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        route = scope.get("route")
        # The route template, never the raw path: scanners' paths must not grow the label set.
        name = getattr(route, "path", None) or "unmatched"
        self.metrics.requests.labels(name, scope["method"], str(status)).inc()
        self.metrics.latency.labels(name).observe(seconds)
        if self.log_requests:
            client = scope.get("client")
            access_log.info(json.dumps({
                "ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), "method": scope["method"],
                "route": name, "path": scope["path"][:200], "status": status,
                "duration_ms": round(seconds * 1000, 2), "client": client[0] if client else None}))


def configure_access_log() -> None:
    """JSON lines on stderr, whatever the root logger's level (it is WARNING by default)."""
    if not access_log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        access_log.addHandler(handler)
    access_log.setLevel(logging.INFO)
    access_log.propagate = False
