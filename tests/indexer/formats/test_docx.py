"""DOCX: headings as the section path, tables as rows (merged cells once), list items, title fallbacks."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.chunking import Chunker
from indexer.errors import CorruptDocumentError, EncryptedDocumentError, UnsupportedFormatError
from indexer.loaders import load_file
from indexer.types import Document
from tests.indexer.formats import samples


def load(path: Path) -> Document:
    [(doc, _)] = load_file(path, path.parent)
    return doc


def section_of(doc: Document, needle: str) -> tuple[str, ...]:
    start = doc.text.index(needle)
    return next(s.section for s in doc.layout if s.start <= start < s.end)


def test_headings_lists_and_tables(tmp_path: Path) -> None:
    doc = load(samples.sample_docx(tmp_path / "痛风.docx"))
    assert doc.title == "痛风患者教育手册"  # no title in the properties: the first heading
    assert section_of(doc, "首选秋水仙碱") == ("痛风患者教育手册", "急性发作的处理")
    assert section_of(doc, "冰敷患处") == ("痛风患者教育手册", "急性发作的处理")
    assert "\n冰敷患处\n抬高患肢\n" in doc.text  # list items, one per line
    rows = [doc.text[s.start:s.end] for s in doc.layout if s.table is not None]
    assert rows == ["食物 | 嘌呤含量 | 建议", "动物内脏 | 高 | 避免", "鸡蛋 | 低 | 可以吃"]
    table_chunk = next(p for p in Chunker().chunk(doc) if "可以吃" in p.text)
    assert table_chunk.text.startswith("食物 | 嘌呤含量 | 建议\n")
    assert table_chunk.locator().label() == "痛风患者教育手册 › 饮食建议"


def test_bad_docx_files(tmp_path: Path) -> None:
    (tmp_path / "broken.docx").write_bytes(b"PK\x03\x04 not really a zip")
    (tmp_path / "locked.docx").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 504)
    (tmp_path / "fake.docx").write_text("纯文本", encoding="utf-8")
    with pytest.raises(CorruptDocumentError, match=r"^broken\.docx: not a readable DOCX \("):
        load(tmp_path / "broken.docx")
    with pytest.raises(EncryptedDocumentError) as err:
        load(tmp_path / "locked.docx")
    assert str(err.value) == ("locked.docx: the document is encrypted (password-protected) or an old binary .doc; "
                              "save it as an unprotected .docx and upload it again")
    with pytest.raises(UnsupportedFormatError, match=r"^fake\.docx: the content is not DOCX"):
        load(tmp_path / "fake.docx")


def test_real_form_keeps_its_diagnosis_table_rows() -> None:
    doc = load(samples.shared_document("form-inpatient-medical-record-front-page.docx"))
    rows = [doc.text[s.start:s.end] for s in doc.layout if s.table is not None]
    assert any(row.startswith("主要诊断：创伤性脑干损伤 | S06.803") for row in rows)
    assert "姓名赵四" in doc.text.replace(" ", "")  # the underscores of the blanks are gone


def test_real_standard_with_custom_heading_styles() -> None:
    doc = load(samples.shared_document("standard-draft-nuclear-psr-part1.docx"))
    assert section_of(doc, "分为15个部分") == ("前言",)
