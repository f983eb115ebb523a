from __future__ import annotations

import json
from pathlib import Path

import pytest

from indexer.errors import CorpusError
from indexer.loaders import load_corpus, markdown_to_text


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows),
                    encoding="utf-8")
    return path


def test_jsonl_fields_and_metadata(tmp_path: Path) -> None:
    f = write_jsonl(tmp_path / "a.jsonl", [
        {"id": "d1", "title": "感冒", "text": "多喝水。", "source": "书", "url": "http://x", "metadata": {"k": 1}},
        {"id": 7, "text": "休息。", "extra": "kept"},
    ])
    docs = load_corpus([f])
    assert [d.id for d in docs] == ["d1", "7"]
    assert docs[0].source == "书" and docs[0].url == "http://x" and docs[0].metadata == {"k": 1}
    assert docs[1].title == "" and docs[1].metadata == {"extra": "kept"}


@pytest.mark.parametrize(("line", "message"), [
    ("{not json", "invalid JSON"),
    (json.dumps({"id": "x"}), "missing or empty 'text'"),
    (json.dumps({"id": "x", "text": "   "}), "missing or empty 'text'"),
    (json.dumps({"text": "有内容"}), "missing or empty 'id'"),
    (json.dumps(["a"]), "expected a JSON object"),
])
def test_bad_jsonl_names_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    f = write_jsonl(tmp_path / "bad.jsonl", [{"id": "ok", "text": "好。"}, "", line])
    with pytest.raises(CorpusError) as err:
        load_corpus([f])
    assert f"{f}:3" in str(err.value)
    assert message in str(err.value)


def test_duplicate_id_across_files(tmp_path: Path) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", [{"id": "same", "text": "一。"}])
    b = write_jsonl(tmp_path / "b.jsonl", [{"id": "other", "text": "二。"}, {"id": "same", "text": "三。"}])
    with pytest.raises(CorpusError, match=r"b\.jsonl:2: duplicate document id 'same' \(first seen at .*a\.jsonl:1\)"):
        load_corpus([a, b])


def test_markdown_front_matter_and_headings(tmp_path: Path) -> None:
    folder = tmp_path / "docs" / "sub"
    folder.mkdir(parents=True)
    (folder / "cold.md").write_text(
        "---\nid: cold\ntitle: 普通感冒\naliases: [伤风]\nupdated: 2026-11-25\n---\n"
        "# 普通感冒\n\n## 概述\n- 常见病。\n",
        encoding="utf-8")
    (folder / "plain.md").write_text("# 头痛\n\n头痛很常见。\n", encoding="utf-8")
    (folder / "note.txt").write_text("纯文本。\n", encoding="utf-8")
    (tmp_path / "docs" / "README.md").write_text("# not a document\n", encoding="utf-8")
    docs = {d.id: d for d in load_corpus([tmp_path / "docs"])}
    assert set(docs) == {"cold", "sub/plain", "sub/note"}
    assert docs["cold"].title == "普通感冒" and docs["cold"].text == "【概述】\n常见病。"
    assert docs["cold"].metadata == {"aliases": ["伤风"], "updated": "2026-11-25"}
    assert docs["sub/plain"].title == "头痛"
    assert docs["sub/note"].title == "note" and docs["sub/note"].text == "纯文本。"


def test_bad_front_matter_and_missing_path(tmp_path: Path) -> None:
    bad = tmp_path / "x.md"
    bad.write_text("---\nid: [unclosed\n---\n正文。\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"x\.md:.*invalid front matter"):
        load_corpus([bad])
    with pytest.raises(CorpusError, match="no such file"):
        load_corpus([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="no documents"):
        load_corpus([tmp_path / "empty"])


def test_markdown_to_text_drops_title_and_bullets() -> None:
    assert markdown_to_text("# 标题\n## 治疗\n1. 休息。\n* 喝水。", drop_title="标题") == "【治疗】\n休息。\n喝水。"


def test_skip_empty_leaves_out_empty_records(tmp_path: Path) -> None:
    f = write_jsonl(tmp_path / "a.jsonl", [{"id": "a", "text": "好。"}, {"id": "b", "text": ""}])
    with pytest.raises(CorpusError, match=r"a\.jsonl:2"):
        load_corpus([f])
    assert [d.id for d in load_corpus([f], skip_empty=True)] == ["a"]
