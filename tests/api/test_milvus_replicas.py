"""Two ``chimed-rag serve`` processes share one Milvus: a document added through one's admin API is found
by the other within 5 s, and a deletion disappears from both. Each replica has its own index directory
(no shared filesystem): the collection is the only thing they share.
"""

from __future__ import annotations

import shutil
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

from indexer.build import copy_index
from indexer.store_config import MilvusConfig, StoreConfig
from tests.api.conftest import server_process

TOKEN = "replica-admin-token"
VISIBLE_WITHIN = 5.0
NEW = {"id": "replica-test-plague", "title": "鼠疫的防护要点",
       "text": "鼠疫由鼠疫耶尔森菌引起，经跳蚤叮咬传播。接触病死鼠后出现高热、淋巴结肿痛应立即就医并报告。"}
QUERY = "跳蚤叮咬传播的鼠疫耶尔森菌"


def search(base: str, mode: str) -> list[dict[str, Any]]:
    response = httpx.post(f"{base}/v1/search", json={"query": QUERY, "top_k": 5, "mode": mode}, timeout=30)
    response.raise_for_status()
    return response.json()["hits"]  # type: ignore[no-any-return]


def wait_for(base: str, present: bool) -> float:
    """Seconds until the dense and hybrid results on ``base`` hold (or no longer hold) the new document."""
    start = time.monotonic()
    while True:
        # dense and hybrid: on Milvus Lite a new document's BM25 score comes from its own small segment's
        # statistics (Milvus >= 2.5 servers aggregate them), so its lexical rank is low until compaction.
        found = [any(h["doc_id"] == NEW["id"] for h in search(base, mode)) for mode in ("dense", "hybrid")]
        elapsed = time.monotonic() - start
        if all(f == present for f in found) or elapsed > 3 * VISIBLE_WITHIN:
            return elapsed
        time.sleep(0.1)


def test_a_document_added_through_one_replica_is_found_by_the_other(
        corpus_index: Any, milvus_uri: str, tmp_path: Path, capsys: Any) -> None:
    store = StoreConfig("milvus", MilvusConfig(uri=milvus_uri, collection="replicas"))
    first = tmp_path / "replica-a"
    copy_index(corpus_index.path, first, store)  # the shipped corpus on Milvus, nothing re-embedded
    second = tmp_path / "replica-b"
    shutil.copytree(first.resolve(), second)  # its own catalogue, as on another host
    env = {"CHIMED_RAG_STORE": "milvus", "CHIMED_RAG_MILVUS_URI": milvus_uri,
           "CHIMED_RAG_MILVUS_COLLECTION": "replicas", "CHIMED_RAG_ABSTENTION": "false",
           "CHIMED_RAG_AUDIT_SECRET_FILE": str(tmp_path / "audit.key")}
    with ExitStack() as stack:
        a, _ = stack.enter_context(server_process(first, tmp_path / "a.log", {**env, "CHIMED_RAG_ADMIN_TOKEN": TOKEN}))
        b, _ = stack.enter_context(server_process(second, tmp_path / "b.log", env))
        assert not any(h["doc_id"] == NEW["id"] for h in search(b, "hybrid"))
        added = httpx.post(f"{a}/v1/documents", json={"documents": [NEW]},
                           headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120)
        assert added.status_code == 200, added.text
        seen = wait_for(b, present=True)
        hit = next(h for h in search(b, "hybrid") if h["doc_id"] == NEW["id"])
        assert hit["title"] == NEW["title"] and "跳蚤" in hit["text"]  # rendered from the collection's fields
        deleted = httpx.delete(f"{a}/v1/documents/{NEW['id']}", headers={"Authorization": f"Bearer {TOKEN}"},
                               timeout=120)
        assert deleted.status_code == 200, deleted.text
        gone = wait_for(b, present=False)
        with capsys.disabled():
            print(f"\nreplica B: added document visible after {seen:.2f} s, deletion after {gone:.2f} s")
        assert seen <= VISIBLE_WITHIN and gone <= VISIBLE_WITHIN, (seen, gone)
