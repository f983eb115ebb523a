"""XLSX/CSV: one line per row naming its columns, sheet and row number on every chunk."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.chunking import Chunker, ChunkerConfig
from indexer.errors import CorruptDocumentError
from indexer.loaders import load_file
from indexer.types import Document
from tests.indexer.formats import samples


def load(path: Path) -> Document:
    [(doc, _)] = load_file(path, path.parent)
    return doc


def test_xlsx_rows_with_header_sheet_and_row(tmp_path: Path) -> None:
    doc = load(samples.sample_xlsx(tmp_path / "随访.xlsx"))
    assert doc.metadata == {"format": "xlsx", "sheets": ["随访记录", "说明"]}
    assert "患者编号：P-0002；空腹血糖 (mmol/L)：57.382；用药：格列美脲" in doc.text  # zero-width space, float noise
    chunks = Chunker(ChunkerConfig(max_chars=60)).chunk(doc)
    row5 = next(p for p in chunks if "示范胰岛素7号" in p.text)
    assert "患者编号：P-0003；空腹血糖 (mmol/L)：6.1；用药：示范胰岛素7号" in row5.text.split("\n")
    assert row5.metadata["sheet"] == "随访记录" and row5.metadata["rows"][-1] == 5
    assert "第 5 行" in row5.locator().label()
    other = next(p for p in chunks if "当前使用的降糖药" in p.text)
    assert other.locator().label() == "说明 第 2 行"


def test_csv_and_bad_xlsx(tmp_path: Path) -> None:
    (tmp_path / "drugs.csv").write_text("药名,剂量\n阿司匹林,100mg\n氯吡格雷,75mg\n", encoding="utf-8")
    doc = load(tmp_path / "drugs.csv")
    assert doc.text.splitlines() == ["药名：阿司匹林；剂量：100mg", "药名：氯吡格雷；剂量：75mg"]
    assert Chunker().chunk(doc)[0].locator().label() == "第 2–3 行"
    (tmp_path / "broken.xlsx").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(CorruptDocumentError, match=r"^broken\.xlsx: not a readable XLSX"):
        load(tmp_path / "broken.xlsx")


def test_real_spreadsheet_row() -> None:
    doc = load(samples.shared_document("cases-shanghai-t2dm-summary.xlsx"))
    start = doc.text.index("2000_0_20201230")
    segment = next(s for s in doc.layout if s.start <= start < s.end)
    assert segment.row == 2 and segment.sheet == "Shanghai_T2DM_Summary"
    assert "Gansulin 40R" in doc.text[segment.start:segment.end]
