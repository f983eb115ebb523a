"""/v1/ask with Server-Sent Events, and multi-turn condensing, through the real server process."""

from __future__ import annotations

import json
from typing import Any

import httpx
from httpx_sse import connect_sse

# Timings differ between two runs of the same question; everything else must be identical.
VOLATILE = ("timings",)


def stream_ask(base: str, body: dict[str, Any]) -> list[tuple[str, Any]]:
    with httpx.Client(timeout=60) as client, connect_sse(client, "POST", f"{base}/v1/ask",
                                                         json={**body, "stream": True}) as source:
        assert source.response.status_code == 200
        assert source.response.headers["content-type"].startswith("text/event-stream")
        return [(e.event, json.loads(e.data)) for e in source.iter_sse()]


def stable(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in VOLATILE}


def test_stream_sends_deltas_then_the_same_answer_as_the_plain_request(server: str) -> None:
    body = {"question": "感冒怎么处理？"}
    events = stream_ask(server, body)
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "answer" and set(kinds[:-1]) == {"delta"} and len(kinds) >= 3
    final = events[-1][1]
    assert "".join(data["text"] for _, data in events[:-1]) == final["answer"]
    plain = httpx.post(f"{server}/v1/ask", json=body, timeout=60).json()
    assert stable(final) == stable(plain)
    assert final["sentences"] and final["citations"] and final["passages"]
    assert {"generate_ms", "total_ms"} <= set(final["timings"])


def test_bad_streaming_request_fails_before_the_stream(server: str) -> None:
    r = httpx.post(f"{server}/v1/ask", json={"question": " ", "stream": True}, timeout=30)
    assert r.status_code == 400 and r.json()["error"]["code"] == "empty_question"


def test_follow_up_is_condensed_for_retrieval_and_shown(server: str) -> None:
    history = [{"question": "高血压是什么", "answer": "高血压是血压持续升高[1]。"}]
    r = httpx.post(f"{server}/v1/ask", json={"question": "那要吃什么药", "history": history}, timeout=60)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["standalone_query"] == "高血压要吃什么药"
    assert "高血压" in body["passages"][0]["title"]
    alone = httpx.post(f"{server}/v1/ask", json={"question": "那要吃什么药"}, timeout=60).json()
    assert alone["standalone_query"] == "那要吃什么药"
    assert all("高血压" not in p["title"] for p in alone["passages"][:1])
