"""``GET /metrics`` after real requests to a real server process."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families


def scrape(base: str) -> dict[str, list[Any]]:
    text = httpx.get(f"{base}/metrics").text
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def value(samples: list[Any], name: str, **labels: str) -> float:
    return sum(s.value for s in samples if s.name == name and labels.items() <= s.labels.items())


def test_metrics_count_requests_stages_answers_index_and_cache(server: str, corpus_index: Any) -> None:
    before = scrape(server)
    for _ in range(2):  # the second is a query-embedding cache hit
        assert httpx.post(f"{server}/v1/ask", json={"question": "感冒怎么处理？"}, timeout=60).status_code == 200
    # A query no other test sends: its vector cannot be cached yet, so this is a cache miss.
    unique = f"头痛 {uuid.uuid4().hex[:8]}"
    assert httpx.post(f"{server}/v1/search", json={"query": unique}, timeout=60).status_code == 200
    assert httpx.post(f"{server}/v1/ask", json={"question": 5}, timeout=60).status_code == 422
    httpx.get(f"{server}/no/such/path")
    after = scrape(server)

    def delta(family: str, name: str, **labels: str) -> float:
        return value(after[family], name, **labels) - value(before.get(family, []), name, **labels)

    requests = "chimed_rag_requests"
    assert delta(requests, "chimed_rag_requests_total", route="/v1/ask", status="200") == 2
    assert delta(requests, "chimed_rag_requests_total", route="/v1/ask", status="422") == 1
    assert delta(requests, "chimed_rag_requests_total", route="/v1/search", status="200") == 1
    assert delta(requests, "chimed_rag_requests_total", route="unmatched", status="404") == 1
    assert delta("chimed_rag_request_seconds", "chimed_rag_request_seconds_count", route="/v1/ask") == 3
    for stage in ("triage", "retrieve", "generate", "support"):
        assert delta("chimed_rag_stage_seconds", "chimed_rag_stage_seconds_count", stage=stage) == 2, stage
    assert delta("chimed_rag_answers", "chimed_rag_answers_total", safety="routine", abstention="answered") == 2
    assert value(after["chimed_rag_in_flight_requests"], "chimed_rag_in_flight_requests") == 1  # this scrape
    assert value(after["chimed_rag_index_documents"], "chimed_rag_index_documents") == 303
    assert value(after["chimed_rag_index_chunks"], "chimed_rag_index_chunks") == len(corpus_index.passages)
    generation = after["chimed_rag_index_generation"][0]
    assert generation.labels == {"index_id": corpus_index.index_id} and generation.value > 1.7e9
    assert delta("chimed_rag_embedder_cache_hits", "chimed_rag_embedder_cache_hits_total") >= 1
    assert delta("chimed_rag_embedder_cache_misses", "chimed_rag_embedder_cache_misses_total") >= 1


def test_abstentions_are_counted_by_reason(server: str) -> None:
    before = scrape(server)
    r = httpx.post(f"{server}/v1/ask", json={"question": "火星探测器的轨道怎么计算？"}, timeout=60)
    body = r.json()
    after = scrape(server)
    reason = body["abstention"]["reason"] if body["abstention"] and body["abstention"]["abstain"] else "answered"
    name = "chimed_rag_answers_total"
    assert value(after["chimed_rag_answers"], name, abstention=reason) - value(
        before["chimed_rag_answers"], name, abstention=reason) == 1
