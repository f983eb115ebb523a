"""PDF loading: reading order, running heads/footers and page numbers removed, joined lines, tables by row,
pages on every passage, and every bad input with its exact message."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.chunking import Chunker, ChunkerConfig
from indexer.errors import CorruptDocumentError, EncryptedDocumentError, LimitError, NoTextError, UnsupportedFormatError
from indexer.formats.layout import LoadOptions
from indexer.loaders import load_corpus, load_file
from indexer.types import Document
from tests.indexer.formats import samples


def load(path: Path, **options: int) -> Document:
    [(doc, _)] = load_file(path, path.parent, options=LoadOptions(**options))
    return doc


def page_of(doc: Document, needle: str) -> int | None:
    start = doc.text.index(needle)
    return next(s.page for s in doc.layout if s.start <= start < s.end)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Document:
    return load(samples.running_pdf(tmp_path_factory.mktemp("pdf") / "手册.pdf"))


def test_running_heads_footers_and_page_numbers_are_gone(running: Document) -> None:
    assert samples.HEADER not in running.text and samples.FOOTER not in running.text
    assert "— 3 —" not in running.text
    for passage in Chunker().chunk(running):
        assert samples.HEADER not in passage.text and samples.FOOTER not in passage.text


def test_lines_inside_a_sentence_are_joined_and_know_their_page(running: Document) -> None:
    first, second = samples.FACTS[3]
    assert first + second in running.text
    assert page_of(running, first + second) == 3
    assert running.title == "糖尿病随访手册"
    assert running.metadata == {"format": "pdf", "page_count": 6}


def test_a_table_across_pages_keeps_whole_rows_and_repeats_its_header(running: Document) -> None:
    doc = running
    rows = [doc.text[s.start:s.end] for s in doc.layout if s.table is not None]
    assert rows[0] == " | ".join(samples.TABLE_HEADER)
    assert rows[1:] == [" | ".join(r) for r in samples.TABLE_ROWS]  # one table, continued on page 5
    chunks = [p for p in Chunker(ChunkerConfig(max_chars=120)).chunk(doc) if " | " in p.text]
    assert len(chunks) >= 2
    for chunk in chunks:
        lines = chunk.text.split("\n")
        assert lines[0] == " | ".join(samples.TABLE_HEADER)
        assert all(line in rows for line in lines)
    pages = [c.metadata["pages"] for c in chunks]
    assert pages[0][0] == 4 and pages[-1][-1] == 5


def test_two_columns_are_read_column_by_column(tmp_path: Path) -> None:
    doc = load(samples.two_column_pdf(tmp_path / "two.pdf"))
    left = "左栏第一句讲的是痛风急性发作的处理原则，应当卧床休息并抬高患肢。"
    right = "右栏第一句讲的是痛风缓解期的饮食管理，应当限制高嘌呤食物。"
    assert left in doc.text and right in doc.text
    assert doc.text.index(left) < doc.text.index(right)
    assert doc.title == "two"  # no metadata title (reportlab writes "untitled"), no heading: the file name


def test_an_image_only_page_is_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    doc = load(samples.with_image_page(tmp_path / "scan.pdf"))
    assert doc.metadata["pages_without_text"] == [2]
    assert "第 2 页没有文本层 (page 2 has no text layer)" in caplog.text
    assert page_of(doc, "第3页正文") == 3


def test_a_pdf_without_any_text_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(NoTextError) as err:
        load(samples.image_only_pdf(tmp_path / "scan.pdf"))
    assert str(err.value) == ("scan.pdf: 第 1 页没有文本层 (page 1 has no text layer); this PDF is scanned or "
                              "image-only and OCR is not available, so nothing could be indexed")


def test_bad_inputs_have_clear_messages(tmp_path: Path) -> None:
    (tmp_path / "empty.pdf").write_bytes(b"")
    (tmp_path / "fake.pdf").write_text("这不是 PDF", encoding="utf-8")
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj <<>> garbage")
    (tmp_path / "notes.pages").write_bytes(b"x")
    cases = [
        ("empty.pdf", CorruptDocumentError, "empty.pdf: the file is empty (0 bytes)"),
        ("fake.pdf", UnsupportedFormatError, "fake.pdf: the content is not PDF although the name ends in '.pdf'"),
        ("notes.pages", UnsupportedFormatError, "notes.pages: unsupported file type '.pages'"),
    ]
    for name, kind, message in cases:
        with pytest.raises(kind) as err:
            load(tmp_path / name)
        assert str(err.value).startswith(message), str(err.value)
    with pytest.raises(CorruptDocumentError, match=r"^broken\.pdf: not a readable PDF \("):
        load(tmp_path / "broken.pdf")


def test_encrypted_and_over_the_page_limit(tmp_path: Path) -> None:
    with pytest.raises(EncryptedDocumentError) as err:
        load(samples.encrypted_pdf(tmp_path / "locked.pdf"))
    assert str(err.value) == ("locked.pdf: the PDF is encrypted (password-protected); remove the password and "
                              "upload it again")
    many = samples.many_pages_pdf(tmp_path / "many.pdf", 30)
    with pytest.raises(LimitError) as err:
        load(many, max_pages=20)
    assert str(err.value) == "many.pdf: 30 pages, over the limit of 20 pages"
    assert load(many).metadata["page_count"] == 30


def test_a_folder_is_parsed_in_worker_processes(tmp_path: Path) -> None:
    samples.two_column_pdf(tmp_path / "a.pdf")
    samples.with_image_page(tmp_path / "b.pdf")
    (tmp_path / "c.md").write_text("# 说明\n\n文本文件照旧读取。", encoding="utf-8")
    docs = load_corpus([tmp_path], workers=2)
    assert [d.id for d in docs] == ["a.pdf", "b.pdf", "c"]
    assert docs[0].layout and not docs[2].layout


# Real documents (../shared/documents, see its README for the facts and pages used here).

def test_real_drug_insert_radicals_are_folded() -> None:
    doc = load(samples.shared_document("drug-insert-danning-tablet.pdf"))
    assert "用法用量" in doc.text and "大黄" in doc.text
    assert "口服。一次 5 片，一日 3 次。饭后服用。" in doc.text


def test_real_two_column_guideline_without_its_running_head() -> None:
    doc = load(samples.shared_document("cpg-pediatric-bacterial-meningitis-2025.pdf"))
    assert "fmx_T3RoZXJNaXJyb3Jz" not in doc.text
    assert "Chin J Pediatr, February 2025" not in doc.text
    answer = "应在病原学检测采样后立即（就诊 1 h 内）给予抗菌药物治疗"
    assert answer in doc.text and page_of(doc, answer) == 5


def test_real_pdf_that_pdfminer_cannot_read() -> None:
    doc = load(samples.shared_document("review-tardive-dyskinesia-pumch.pdf"))
    assert doc.metadata["page_count"] == 8
    assert page_of(doc, "43%") == 2  # full-width digits folded


def test_real_image_only_scan_is_refused() -> None:
    with pytest.raises(NoTextError, match=r"第 1、2 页没有文本层 \(pages 1, 2 has no text layer\)"):
        load(samples.shared_document("scanned-imageonly-chinese-book-pages.pdf"))
