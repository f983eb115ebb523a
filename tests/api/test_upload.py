"""File upload to POST /v1/documents on a real `chimed-rag serve`: parsed by the corpus loaders, published
through the incremental path, cited with its page; every bad file is a 4xx with its message and the live
index stays exactly as it was."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from indexer.build import build_index
from indexer.embedding import SentenceTransformerEmbedder
from indexer.index_dir import read_manifest
from tests.api.conftest import running_server
from tests.indexer.formats import samples

TOKEN = "upload-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MAX_BYTES, MAX_PAGES = 100_000, 10


@pytest.fixture(scope="module")
def upload_dir(tiny_corpus: Path, embedder: SentenceTransformerEmbedder,
               tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("upload") / "idx"
    build_index([tiny_corpus], out, embedder)
    return out


@pytest.fixture(scope="module")
def server(upload_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("upload-server") / "server.log"
    env = {"CHIMED_RAG_ADMIN_TOKEN": TOKEN, "CHIMED_RAG_RELOAD_INTERVAL": "0", "CHIMED_RAG_ABSTENTION": "false",
           "CHIMED_RAG_UPLOAD_MAX_BYTES": str(MAX_BYTES), "CHIMED_RAG_UPLOAD_MAX_PAGES": str(MAX_PAGES)}
    with running_server(upload_dir, log, env) as base:
        yield base


def upload(base: str, path: Path, **fields: str) -> httpx.Response:
    with path.open("rb") as handle:
        return httpx.post(f"{base}/v1/documents", headers=AUTH, files={"file": (path.name, handle)}, data=fields,
                          timeout=120)


def state(base: str, upload_dir: Path) -> tuple[Any, ...]:
    index = httpx.get(f"{base}/v1/index", timeout=10).json()["live"]
    docs = httpx.get(f"{base}/v1/documents", headers=AUTH, timeout=10).json()["documents"]
    return index["id"], index["generation"], docs, read_manifest(upload_dir)["generation"]


def test_bad_files_get_4xx_and_leave_the_index_untouched(server: str, upload_dir: Path, tmp_path: Path) -> None:
    before = state(server, upload_dir)
    (tmp_path / "empty.pdf").write_bytes(b"")
    (tmp_path / "fake.pdf").write_text("not a pdf at all", encoding="utf-8")
    (tmp_path / "tool.exe").write_bytes(b"MZ\x90\x00")
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj <<>> garbage")
    (tmp_path / "big.txt").write_text("高血压" * (MAX_BYTES // 6 + 10), encoding="utf-8")
    cases = [
        (tmp_path / "empty.pdf", 422, "empty.pdf: the file is empty (0 bytes)"),
        (tmp_path / "fake.pdf", 415, "fake.pdf: the content is not PDF although the name ends in '.pdf'"),
        (tmp_path / "tool.exe", 415, "tool.exe: unsupported file type '.exe' (supported: "),
        (tmp_path / "broken.pdf", 422, "broken.pdf: not a readable PDF ("),
        (samples.encrypted_pdf(tmp_path / "locked.pdf"), 422,
         "locked.pdf: the PDF is encrypted (password-protected); remove the password and upload it again"),
        (samples.image_only_pdf(tmp_path / "scan.pdf"), 422, "scan.pdf: 第 1 页没有文本层 (page 1 has no text layer)"),
        (samples.many_pages_pdf(tmp_path / "many.pdf", MAX_PAGES + 2), 413,
         f"many.pdf: {MAX_PAGES + 2} pages, over the limit of {MAX_PAGES} pages"),
        (tmp_path / "big.txt", 413, f"big.txt: over the upload limit of {MAX_BYTES} bytes (setting upload_max_bytes)"),
    ]
    for path, status, message in cases:
        r = upload(server, path)
        assert r.status_code == status, (path.name, r.text)
        assert r.json()["error"]["message"].startswith(message), r.text
    assert httpx.post(f"{server}/v1/documents", files={"file": ("a.md", b"# x\n\ny")}, timeout=10).status_code == 401
    assert state(server, upload_dir) == before


def test_an_uploaded_pdf_is_searchable_and_cited_with_its_page(server: str, tmp_path: Path) -> None:
    pdf = samples.running_pdf(tmp_path / "手册.pdf")
    r = upload(server, pdf)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "reloaded"
    hits = httpx.post(f"{server}/v1/search", json={"query": "雷公藤多苷片的示范剂量", "top_k": 3},
                      timeout=60).json()["hits"]
    assert hits[0]["doc_id"] == "手册.pdf"
    assert hits[0]["locator"]["pages"] == [3] and hits[0]["locator"]["label"] == "第 3 页"
    answer = httpx.post(f"{server}/v1/ask", json={"question": "雷公藤多苷片的示范剂量是多少？"}, timeout=120).json()
    assert any(c["doc_id"] == "手册.pdf" and c["locator"]["label"] == "第 3 页" for c in answer["citations"])
    chat = httpx.post(f"{server}/v1/chat/completions", timeout=120, json={
        "model": "chimed-rag", "messages": [{"role": "user", "content": "雷公藤多苷片的示范剂量是多少？"}]}).json()
    assert "《糖尿病随访手册》第 3 页" in chat["choices"][0]["message"]["content"]
    assert any(c["locator"]["label"] == "第 3 页" for c in chat["choices"][0]["message"]["citations"])


def test_a_docx_upload_with_id_and_title_then_replaced(server: str, tmp_path: Path) -> None:
    docx = samples.sample_docx(tmp_path / "gout.docx")
    r = upload(server, docx, id="gout-leaflet", title="痛风宣教单")
    assert r.status_code == 200, r.text
    listed = {d["id"]: d for d in httpx.get(f"{server}/v1/documents", headers=AUTH, timeout=10).json()["documents"]}
    assert listed["gout-leaflet"]["title"] == "痛风宣教单"
    hits = httpx.post(f"{server}/v1/search", json={"query": "急性发作时首选秋水仙碱", "top_k": 1}, timeout=60).json()
    assert hits["hits"][0]["locator"]["section"] == ["痛风患者教育手册", "急性发作的处理"]
