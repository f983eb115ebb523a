"""Input hygiene against a real ``chimed-rag serve``: malformed text gets a 4xx naming the field, and no
request, however odd (surrogates, NULs, zero-width runs, huge or deeply nested bodies), gets a 5xx or
costs the client its keep-alive connection."""

from __future__ import annotations

import http.client
import json
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

MAX_BODY = 1_000_000  # the default CHIMED_RAG_MAX_BODY_BYTES


def post(base: str, path: str, body: Any) -> httpx.Response:
    # json.dumps escapes lone surrogates (\\ud800), which is valid JSON; httpx's json= cannot encode them.
    return httpx.post(f"{base}{path}", content=json.dumps(body).encode(), timeout=60,
                      headers={"Content-Type": "application/json"})


def chat(content: Any) -> dict[str, Any]:
    return {"model": "chimed-rag", "messages": [{"role": "user", "content": content}]}


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/v1/ask", {"question": "感冒\ud800怎么办"}, "question"),
    ("/v1/ask", {"question": "感冒\x00"}, "question"),
    ("/v1/ask", {"question": "感冒\uffff"}, "question"),
    ("/v1/ask", {"question": "感冒", "history": [{"question": "头痛", "answer": "休息\udc00"}]}, "history.0.answer"),
    ("/v1/search", {"query": "\udbff头痛"}, "query"),
    ("/v1/chat/completions", chat("咳嗽\ud83d"), "messages.0.content"),
    ("/v1/chat/completions", chat([{"type": "text", "text": "咳嗽\x07"}]), "messages.0.content"),
    ("/v1/chat/completions", {**chat("咳嗽"), "model": "chimed\x00rag"}, "model"),
])
def test_non_text_characters_get_422_naming_the_field(server: str, path: str, body: Any, field: str) -> None:
    r = post(server, path, body)
    assert r.status_code == 422, r.text
    message = r.json()["error"]["message"]
    assert message.startswith(field) and ("U+" in message or "unicode" in message), message


@pytest.mark.parametrize("blank", ["\u200b\u200b\u200b", " \u200d\ufeff\t", "\u2060\u3000"])
def test_zero_width_only_text_counts_as_empty(server: str, blank: str) -> None:
    for path, body in (("/v1/ask", {"question": blank}), ("/v1/search", {"query": blank}),
                       ("/v1/chat/completions", chat(blank))):
        r = post(server, path, body)
        assert r.status_code == 400 and "must not be empty" in r.json()["error"]["message"], (path, r.text)


def test_text_is_nfc_normalised(server: str) -> None:
    r = post(server, "/v1/ask", {"question": "Cafe\u0301 感冒怎么处理？"})
    assert r.status_code == 200, r.text
    assert r.json()["standalone_query"] == "Caf\u00e9 感冒怎么处理？"


@pytest.mark.parametrize(("body", "status", "needle"), [
    ({**chat("感冒"), "max_tokens": -5}, 422, "max_tokens"),
    ({**chat("感冒"), "max_tokens": 10**9}, 422, "max_tokens"),
    ({**chat("感冒"), "temperature": 3}, 422, "temperature"),
    ({**chat("感冒"), "top_p": 0}, 422, "top_p"),
    ({**chat("感冒"), "n": 2}, 422, "n"),
    ({**chat("感冒"), "top_k": 10_000}, 400, "top_k"),
    ({**chat("感冒"), "stream": 1}, 422, "stream"),
    ({"model": "chimed-rag", "messages": [{"role": "user", "content": "x"}] * 42}, 400, "at most 41 messages"),
    ({"model": "chimed-rag", "messages": [{"role": "user", "content": "x"}] * 202}, 422, "messages"),
])
def test_numeric_and_list_bounds(server: str, body: Any, status: int, needle: str) -> None:
    r = post(server, "/v1/chat/completions", body)
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]["message"]


def test_history_answers_have_a_limit(server: str) -> None:
    turn = {"question": "头痛", "answer": "多休息。" * 1250}  # 5,000 characters; the limit is 4,000
    r = post(server, "/v1/ask", {"question": "要吃药吗", "history": [turn]})
    assert r.status_code == 413 and "limit is 4000" in r.json()["error"]["message"], r.text
    r = post(server, "/v1/ask", {"question": "要吃药吗", "history": [{"question": "头痛", "answer": "x" * 20_000}]})
    assert r.status_code == 422 and "history.0.answer" in r.json()["error"]["message"]
    r = post(server, "/v1/ask", {"question": "要吃药吗", "history": [{"question": "头痛", "answer": "休息"}] * 11})
    assert r.status_code == 400 and "at most 10 history turns" in r.json()["error"]["message"], r.text


# -- the fuzz: every route, odd input, no 5xx, no dropped connection -------------------------------------

ROUTES = [("POST", "/v1/ask"), ("POST", "/v1/search"), ("POST", "/v1/chat/completions"),
          ("POST", "/v1/completions"), ("GET", "/v1/index"), ("GET", "/healthz"), ("GET", "/v1/models"),
          ("GET", "/metrics")]
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff\u00ad \t\n\u3000"

# Hypothesis never draws lone surrogates from st.characters, so they are made from code points.
odd_char = st.one_of(st.integers(0xD800, 0xDFFF).map(chr), st.characters(categories=["Cc", "Cf", "Co", "Cn", "Zs"]),
                     st.sampled_from(["\x00", "\ufffe", "\uffff", "\ufdd0", "感", "冒", "a"]))
odd_text = st.one_of(
    st.lists(odd_char, max_size=40).map("".join),  # surrogates, NULs, controls, non-characters
    st.text(ZERO_WIDTH, min_size=1, max_size=300),
    st.integers(0, 4000).map(lambda n: "\x00" * n),
    st.sampled_from([10_000, 200_000, 400_000]).map(lambda n: "头" * n),  # long; the largest is over 1 MB
    st.text(max_size=40),
    st.sampled_from(["感冒怎么处理？", "胸口疼，出冷汗", "Cafe\u0301"]),
)
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False),
                      st.lists(odd_char, max_size=10).map("".join))
json_value = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=12)


@st.composite
def shaped_body(draw: st.DrawFn, path: str) -> Any:
    """A body of the route's shape with odd text (or odd values) where text belongs."""
    text = draw(odd_text)
    turn = {"question": draw(st.sampled_from([text, "头痛"])), "answer": draw(st.sampled_from([text, "休息"]))}
    if path == "/v1/ask":
        return draw(st.sampled_from([{"question": text}, {"question": "感冒", "history": [turn]},
                                     {"question": text, "stream": True}, {"question": "感冒", "top_k": text}]))
    if path == "/v1/search":
        return draw(st.sampled_from([{"query": text}, {"query": text, "mode": "bm25", "top_k": 3}]))
    content = draw(st.sampled_from([text, [{"type": "text", "text": text}], [{"type": "image", "x": text}]]))
    messages = [{"role": "user", "content": content}]
    if draw(st.booleans()):
        messages = [{"role": "user", "content": "头痛"}, {"role": "assistant", "content": text}, *messages]
    body = {"model": draw(st.sampled_from(["chimed-rag", text])), "messages": messages,
            "stream": draw(st.booleans())}
    return body if path == "/v1/chat/completions" else {"model": "chimed-rag", "prompt": text}


def deep(depth: int, kind: str) -> bytes:
    inner = "[" * depth + "]" * depth if kind == "list" else '{"a":' * depth + "1" + "}" * depth
    head = '{"question": "感冒", "model": "chimed-rag", "messages": [{"role": "user", "content": '
    return (head + inner + "}]}").encode()


@st.composite
def raw_body(draw: st.DrawFn, path: str) -> bytes:
    kind = draw(st.sampled_from(["shaped", "shaped", "shaped", "ascii", "any-json", "deep", "bytes"]))
    if kind == "deep":
        return deep(draw(st.sampled_from([10, 900, 5_000, 200_000])), draw(st.sampled_from(["list", "dict"])))
    if kind == "bytes":
        return draw(st.binary(max_size=200)) + draw(st.sampled_from([b"", b'{"question": "\xff\xfe"}']))
    value = draw(shaped_body(path)) if kind != "any-json" else draw(json_value)
    # ensure_ascii writes lone surrogates as \ud800 escapes (valid JSON); the other way makes raw bytes
    # that are not UTF-8 at all.
    if kind == "ascii" or draw(st.booleans()):
        return json.dumps(value).encode()
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


class Probe:
    """One keep-alive connection, as a client library holds it, plus tallies of what happened."""

    def __init__(self, base: str) -> None:
        url = urlsplit(base)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 80
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
        self.statuses: Counter[int] = Counter()
        self.dropped: list[str] = []
        self.early_close = 0

    def send(self, method: str, path: str, body: bytes) -> None:
        try:
            self.conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
            response = self.conn.getresponse()
            response.read()
        except (BrokenPipeError, ConnectionResetError):
            if len(body) <= MAX_BODY:
                raise
            # The server answered 413 from Content-Length and closed while the client was still sending.
            self.early_close += 1
            self._reconnect()
            return
        self.statuses[response.status] += 1
        if (response.getheader("Connection") or "").lower() == "close":
            self._reconnect()  # announced: not a dropped connection
            return
        self._still_alive(f"{method} {path} -> {response.status}")

    def _still_alive(self, after: str) -> None:
        try:
            self.conn.request("GET", "/healthz")
            follow = self.conn.getresponse()
            follow.read()
            assert follow.status == 200
        except (http.client.HTTPException, OSError) as exc:
            self.dropped.append(f"{after}: next request failed with {exc!r}")
            self._reconnect()

    def _reconnect(self) -> None:
        self.conn.close()
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_fuzzed_requests_never_get_5xx_nor_lose_the_connection(server: str, method: str, path: str) -> None:
    probe = Probe(server)

    @settings(max_examples=200 if method == "POST" else 40, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(body=raw_body(path))
    def send(body: bytes) -> None:
        probe.send(method, path, body)

    send()
    server_errors = {s: n for s, n in probe.statuses.items() if s >= 500}
    assert not server_errors, (probe.statuses, server_errors)
    assert not probe.dropped, probe.dropped
    assert sum(probe.statuses.values()) + probe.early_close > 0
