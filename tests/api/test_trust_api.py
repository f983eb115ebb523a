"""Trust fields of /v1/ask through the real server: safety first, support labels, strict, trace."""

from __future__ import annotations

import httpx

from rag.pipeline import DISCLAIMER


def ask(base: str, body: dict[str, object]) -> httpx.Response:
    return httpx.post(f"{base}/v1/ask", json=body, timeout=60)


def test_emergency_safety_comes_first_and_leads_the_answer(server: str) -> None:
    r = ask(server, {"question": "我爸突然说不出话，嘴也歪了"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert next(iter(body)) == "safety"
    assert body["safety"]["level"] == "emergency" and "stroke_signs" in body["safety"]["signals"]
    assert body["answer"].startswith("【安全提示】") and "120" in body["safety"]["advice"]
    assert body["disclaimer"] == DISCLAIMER


def test_self_harm_gets_the_crisis_hotline(server: str) -> None:
    safety = ask(server, {"question": "活着没意思，我不想活了"}).json()["safety"]
    assert safety["level"] == "emergency" and "12356" in safety["advice"] and "110" in safety["advice"]


def test_support_labels_and_trace_on_request(server: str) -> None:
    body = ask(server, {"question": "感冒怎么处理？", "trace": True, "strict": True}).json()
    assert body["safety"]["level"] == "routine" and body["sentences"]
    for sentence in body["sentences"]:
        support = sentence["support"]
        assert support["label"] in {"supported", "weak"} and support["evidence"]["chunk_id"]
    trace = body["trace"]
    assert trace["index_id"] == body["index"]["id"] and trace["candidates"] and trace["prompt_sha256"]
    assert "question" not in trace and trace["question_hmac"]
    assert ask(server, {"question": "感冒怎么处理？"}).json()["trace"] is None


def test_bad_trust_options_get_422(server: str) -> None:
    r = ask(server, {"question": "头痛", "strict": "maybe"})
    assert r.status_code == 422 and "strict" in r.json()["error"]["message"]
