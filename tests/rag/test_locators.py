"""Locators as readers see them: on citations, hits, source lines and LangChain documents."""

from __future__ import annotations

from typing import Any

from rag.citations import cite, source_lines
from rag.langchain import hit_to_document
from rag.types import Hit, Passage


def hit(metadata: dict[str, Any], title: str = "糖尿病随访手册") -> Hit:
    passage = Passage(chunk_id="手册.pdf#3", doc_id="手册.pdf", title=title, text="雷公藤多苷片每日一毫克。",
                      span=(0, 12), source="手册.pdf", metadata=metadata)
    return Hit(passage, 0.9, 1)


def test_labels_for_every_kind_of_locator() -> None:
    cases = [
        ({"pages": [3]}, "第 3 页"),
        ({"pages": [3, 4]}, "第 3–4 页"),
        ({"section_path": ["痛风", "急性发作的处理"], "section": "急性发作的处理"}, "痛风 › 急性发作的处理"),
        ({"section": "治疗"}, "治疗"),  # Markdown documents indexed before this change
        ({"sheet": "随访记录", "rows": [2, 5], "row": 2}, "随访记录 第 2–5 行"),
        ({"rows": [7]}, "第 7 行"),
        ({}, ""),
    ]
    for metadata, label in cases:
        assert hit(metadata).passage.locator().label() == label


def test_citations_hits_sources_and_langchain_carry_it() -> None:
    hits = [hit({"pages": [3]})]
    cited = cite("每日一毫克[1]。", hits)
    assert cited.citations[0].to_json()["locator"] == {"pages": [3], "section": [], "sheet": "", "rows": [],
                                                       "label": "第 3 页"}
    assert hits[0].to_json()["locator"]["label"] == "第 3 页"
    assert source_lines(cited.citations, hits) == ["[1] 《糖尿病随访手册》第 3 页"]
    document = hit_to_document(hits[0])
    assert document.metadata["where"] == "第 3 页" and document.metadata["locator"]["pages"] == [3]
