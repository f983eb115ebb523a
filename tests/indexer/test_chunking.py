from __future__ import annotations

import pytest

from indexer.chunking import Chunker, ChunkerConfig, split_sentences
from indexer.types import Document

TEXT = ("【概述】\n感冒是最常见的急性呼吸道感染。多数人一周左右自愈！要多喝水；注意休息……\n\n"
        "如果发热超过三天，或者出现呼吸困难，请及时就医。“别硬扛。”")


def test_sentences_end_at_chinese_marks_and_keep_closing_quotes() -> None:
    sentences = [TEXT[s:e] for s, e in split_sentences(TEXT)]
    assert sentences == [
        "【概述】\n感冒是最常见的急性呼吸道感染。", "多数人一周左右自愈！", "要多喝水；", "注意休息……",
        "如果发热超过三天，或者出现呼吸困难，请及时就医。", "“别硬扛。”",
    ]


@pytest.mark.parametrize("max_chars", [20, 30, 45, 400])
def test_chunks_keep_spans_and_never_cut_inside_a_sentence(max_chars: int) -> None:
    doc = Document("d", "感冒", TEXT)
    passages = Chunker(ChunkerConfig(max_chars=max_chars, overlap_sentences=1)).chunk(doc)
    bounds = {b for s, e in split_sentences(TEXT) for b in (s, e)}
    for n, p in enumerate(passages):
        assert p.chunk_id == f"d#{n}"
        assert TEXT[p.span[0]:p.span[1]] == p.text
        # Only the one sentence longer than the limit may be cut inside.
        if max_chars >= 25:
            assert p.span[0] in bounds and p.span[1] in bounds
    covered = set()
    for p in passages:
        covered.update(range(*p.span))
    assert all(i in covered for s, e in split_sentences(TEXT) for i in range(s, e))


def test_overlap_repeats_the_last_sentence() -> None:
    doc = Document("d", "", "第一句话在这里。第二句话在这里。第三句话在这里。第四句话在这里。")
    p = Chunker(ChunkerConfig(max_chars=20, overlap_sentences=1)).chunk(doc)
    assert [x.text for x in p] == ["第一句话在这里。第二句话在这里。", "第二句话在这里。第三句话在这里。",
                                   "第三句话在这里。第四句话在这里。"]
    no_overlap = Chunker(ChunkerConfig(max_chars=20, overlap_sentences=0)).chunk(doc)
    assert len(no_overlap) == 2


def test_overlong_sentence_is_cut_at_a_comma() -> None:
    sentence = "，".join(["很长的句子片段"] * 12) + "。"
    p = Chunker(ChunkerConfig(max_chars=40, overlap_sentences=0)).chunk(Document("d", "", sentence))
    assert len(p) > 1
    assert all(len(x.text) <= 40 for x in p)
    assert all(x.text.endswith(("，", "。")) for x in p)
    assert "".join(x.text for x in p) == sentence


def test_chunk_ids_are_stable() -> None:
    doc = Document("doc-1", "t", TEXT)
    a = Chunker().chunk(doc)
    b = Chunker().chunk(doc)
    assert [x.chunk_id for x in a] == [x.chunk_id for x in b] == ["doc-1#0"]


def test_invalid_config() -> None:
    with pytest.raises(ValueError):
        ChunkerConfig(max_chars=5)
