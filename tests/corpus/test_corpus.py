"""The shipped corpus: form, size, distinctness, originality, reachability."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from rag.retrievers import make_retrievers
from tests.conftest import ROOT, SHARED_DATA

DOCS = ROOT / "corpus" / "docs"
CATEGORIES = {
    "respiratory", "cardiovascular", "digestive", "endocrine", "kidney-urinary", "blood", "nervous",
    "musculoskeletal", "skin", "eye-ent", "mental-health", "infectious", "vaccination", "womens-health",
    "childrens-health", "older-adults", "symptoms", "medicines", "examinations", "first-aid", "lifestyle",
}
ALLOWED_HEADINGS = {
    "概述", "病因", "原因", "症状", "表现", "诊断与检查", "治疗", "预防与日常管理", "何时就医", "常见原因", "自我观察与处理",
    "适用情况", "常见不良反应", "禁忌与慎用", "相互作用", "用药提示", "检查项目与意义", "检查前准备", "结果解读",
    "识别", "现场处理", "注意事项", "要点", "具体做法",
}
DISEASE_ORDER = ["概述", "病因|原因", "症状|表现", "诊断与检查", "治疗", "预防与日常管理", "何时就医"]
FRONT = re.compile(r"\A---\n(.*?)\n---\n(.*)\Z", re.DOTALL)


def parse(path: Path) -> tuple[dict[str, Any], str]:
    match = FRONT.match(path.read_text(encoding="utf-8"))
    assert match, f"{path}: no front matter"
    return yaml.safe_load(match.group(1)), match.group(2)


FILES = sorted(DOCS.rglob("*.md"))
PARSED = {f: parse(f) for f in FILES}


def body_chars(body: str) -> int:
    return len(re.sub(r"[\s#]", "", body))


def test_at_least_300_documents_in_every_category() -> None:
    assert len(FILES) >= 300
    per_category: dict[str, int] = {}
    for meta, _ in PARSED.values():
        per_category[meta["category"]] = per_category.get(meta["category"], 0) + 1
    assert set(per_category) == CATEGORIES, set(per_category) ^ CATEGORIES


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_front_matter_size_and_headings(path: Path) -> None:
    meta, body = PARSED[path]
    assert set(meta) >= {"id", "title", "category", "aliases", "updated", "references"}
    assert meta["id"] == path.stem and re.fullmatch(r"[a-z0-9-]+", meta["id"])
    assert meta["category"] == path.parent.name and meta["id"].startswith(meta["category"] + "-")
    assert isinstance(meta["aliases"], list) and 1 <= len(meta["aliases"]) <= 6
    assert isinstance(meta["references"], list) and 1 <= len(meta["references"]) <= 3
    assert all(str(r).startswith("《") for r in meta["references"])
    assert 400 <= body_chars(body) <= 1200, body_chars(body)
    assert body.lstrip().startswith(f"# {meta['title']}\n")
    headings = re.findall(r"^## (.+)$", body, re.MULTILINE)
    assert headings[0] == "概述" and headings[-1] == "何时就医", headings
    assert set(headings) <= ALLOWED_HEADINGS, set(headings) - ALLOWED_HEADINGS
    assert len(headings) == len(set(headings))
    if "治疗" in headings:  # a disease document: sections in the house order
        order = [next(i for i, h in enumerate(DISEASE_ORDER) if heading in h.split("|")) for heading in headings
                 if any(heading in h.split("|") for h in DISEASE_ORDER)]
        assert order == sorted(order), headings


def test_ids_and_titles_are_unique() -> None:
    ids = [m["id"] for m, _ in PARSED.values()]
    titles = [m["title"] for m, _ in PARSED.values()]
    assert len(ids) == len(set(ids))
    assert len(titles) == len(set(titles))


def shingles(text: str, n: int = 5) -> set[str]:
    text = re.sub(r"[\s#\-]", "", text)
    return {text[i:i + n] for i in range(len(text) - n + 1)}


def test_no_duplicate_or_near_duplicate_documents() -> None:
    sets = {p.stem: shingles(body) for p, (_, body) in PARSED.items()}
    worst = max(((len(a & b) / len(a | b), x, y) for (x, a), (y, b) in itertools.combinations(sets.items(), 2)))
    assert worst[0] < 0.3, worst


def test_no_text_from_the_shared_data_sets() -> None:
    """No 30-character run of the (non-redistributable) shared corpora appears in ours.

    Shorter runs do match: standard formulae such as "收缩压≥140mmHg和（或）舒张压≥90mmHg" are
    everyone's words; a copied sentence is longer than that.
    """
    if not SHARED_DATA.is_dir():
        pytest.skip("shared data not available")
    ours = set()
    for _, body in PARSED.values():
        flat = re.sub(r"\s", "", body)
        ours.update(flat[i:i + 30] for i in range(len(flat) - 29))
    hits = []
    for corpus in SHARED_DATA.glob("*/corpus.jsonl"):
        for line in corpus.open(encoding="utf-8"):
            text = re.sub(r"\s", "", json.loads(line)["text"])
            hits.extend(text[i:i + 30] for i in range(0, len(text) - 29, 3) if text[i:i + 30] in ours)
    assert not hits, hits[:5]


def test_every_document_is_reachable_by_its_title(corpus_index: Any, embedder: Any) -> None:
    hybrid = make_retrievers(corpus_index, embedder)["hybrid"]
    titles = {m["title"]: m["id"] for m, _ in PARSED.values()}
    results = hybrid.batch_search(list(titles), top_k=1)
    missed = [(t, r[0].passage.doc_id if r else None) for (t, doc), r in zip(titles.items(), results)
              if not r or r[0].passage.doc_id != doc]
    assert not missed, missed
