"""API keys, trusted hosts, what the index manifest shows, local docs, the raw-LLM route and the audit
file, against real server processes."""

from __future__ import annotations

import hashlib
import hmac
import json
import stat

import httpx
import pytest

from tests.api.conftest import Guarded


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/v1/index"), ("GET", "/v1/models"), ("GET", "/metrics"), ("GET", "/openapi.json"), ("GET", "/docs"),
    ("POST", "/v1/ask"), ("POST", "/v1/search"), ("POST", "/v1/chat/completions"), ("POST", "/v1/completions"),
])
def test_every_route_needs_an_api_key(guarded: Guarded, method: str, path: str) -> None:
    url = f"{guarded.base}{path}"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {guarded.keys[0]}"},
                    {"Authorization": "Bearer"}, {"Authorization": f"Bearer {guarded.keys[0]}x"}):
        r = httpx.request(method, url, headers=headers, json={})
        assert r.status_code == 401, (headers, r.text)
        assert r.headers["WWW-Authenticate"] == "Bearer" and r.json()["error"]["code"] == "unauthorized"
    assert httpx.request(method, url, headers=guarded.headers(1), json={}).status_code != 401


def test_liveness_probe_needs_no_key(guarded: Guarded) -> None:
    assert httpx.get(f"{guarded.base}/healthz").status_code == 200


def test_schema_publishes_the_bearer_scheme(guarded: Guarded) -> None:
    schema = httpx.get(f"{guarded.base}/openapi.json", headers=guarded.headers()).json()
    assert schema["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    assert schema["paths"]["/v1/ask"]["post"]["security"] == [{"bearer": []}]
    assert "401" in schema["paths"]["/v1/ask"]["post"]["responses"]


@pytest.mark.parametrize("host", ["evil.example", "127.0.0.1.evil.example", "localhost"])
def test_untrusted_host_header_gets_400(guarded: Guarded, host: str) -> None:
    r = httpx.get(f"{guarded.base}/healthz", headers={"Host": host})
    assert r.status_code == 400, r.text
    assert httpx.get(f"{guarded.base}/healthz", headers={"Host": "api.example"}).status_code == 200


def test_index_manifest_shows_no_absolute_paths(server: str, corpus_index: object) -> None:
    text = httpx.get(f"{server}/v1/index").text
    manifest = json.loads(text)
    assert manifest["corpus"]["paths"] == ["docs"] and manifest["counts"]["documents"] >= 300
    assert '"/' not in text and "/work" not in text and "/root" not in text


def test_docs_assets_are_served_locally(server: str) -> None:
    for page, asset in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
        html = httpx.get(f"{server}{page}").text
        assert "cdn." not in html and "https://" not in html.split("<body")[-1].split("</body>")[0]
        src = next(part.split('"')[0] for part in html.split('src="')[1:] if asset in part)
        r = httpx.get(f"{server}{src}")
        assert r.status_code == 200 and len(r.content) > 100_000


def test_raw_completions_are_off_by_default(server: str) -> None:
    r = httpx.post(f"{server}/v1/completions", json={"model": "chimed-rag", "prompt": "[human]:感冒\n[bot]:"})
    assert r.status_code == 404


def test_raw_completions_when_enabled_still_need_a_language_model(guarded: Guarded) -> None:
    r = httpx.post(f"{guarded.base}/v1/completions", json={"model": "chimed-rag", "prompt": "[human]:感冒\n[bot]:"},
                   headers=guarded.headers(0))
    assert r.status_code == 400 and r.json()["error"]["code"] == "no_language_model"


def test_audit_file_is_private_and_digests_are_keyed(guarded: Guarded) -> None:
    questions = ("感冒怎么处理？", "活着没意思，我不想活了")
    for question in questions:
        r = httpx.post(f"{guarded.base}/v1/ask", json={"question": question}, headers=guarded.headers(0), timeout=60)
        assert r.status_code == 200, r.text
    assert stat.S_IMODE(guarded.audit.stat().st_mode) == 0o600
    assert stat.S_IMODE(guarded.secret.stat().st_mode) == 0o600
    assert stat.S_IMODE(guarded.secret.parent.stat().st_mode) == 0o700
    text = guarded.audit.read_text("utf-8")
    lines = [json.loads(line) for line in text.splitlines()]
    key = guarded.secret.read_text().strip().encode()
    digests = {line["question_hmac"] for line in lines}
    for question in questions:
        assert question not in text and hashlib.sha256(question.encode()).hexdigest() not in text
        assert hmac.new(key, question.encode(), hashlib.sha256).hexdigest() in digests
    crisis = next(line for line in lines if line["safety"]["level"] == "emergency")
    assert crisis["safety"] == {"level": "emergency"}  # no self-harm signal names in the log
    assert "self_harm" not in text and "12356" not in text


def test_access_log_is_json_without_question_text(guarded: Guarded) -> None:
    httpx.post(f"{guarded.base}/v1/search", json={"query": "糖尿病饮食"}, headers=guarded.headers(0), timeout=30)
    entries = [json.loads(line) for line in guarded.log.read_text("utf-8").splitlines() if line.startswith("{")]
    search = [e for e in entries if e["route"] == "/v1/search"]
    assert search and {"ts", "method", "route", "path", "status", "duration_ms", "client"} <= set(search[-1])
    assert "糖尿病" not in guarded.log.read_text("utf-8") and "感冒" not in guarded.log.read_text("utf-8")
