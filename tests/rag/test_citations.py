from __future__ import annotations

from rag.citations import cite, marker_numbers, split_sentences
from rag.types import Hit, Passage


def hits(n: int) -> list[Hit]:
    return [Hit(Passage(f"d{i}#0", f"d{i}", f"标题{i}", f"文本{i}", (0, 3), "src", ""), 1.0 / i, i)
            for i in range(1, n + 1)]


def test_marker_forms() -> None:
    assert marker_numbers("甲[1]乙[2,3]丙[4][5]丁［6］戊[7，8、9]") == [1, 2, 3, 4, 5, 6, 7, 8, 9]


def test_sentences_keep_markers_after_the_end_mark() -> None:
    assert split_sentences("多喝水。[1]注意休息[2]！发热就医") == ["多喝水。[1]", "注意休息[2]！", "发热就医"]


def test_cite_maps_sentences_and_drops_invalid_markers() -> None:
    answer = "多休息、多喝水[1]。不需要抗生素[1,2]。高烧不退请就医[7]。出现胸痛要打120[2][0]！"
    cited = cite(answer, hits(2))
    texts = [s.text for s in cited.sentences]
    assert texts == ["多休息、多喝水。", "不需要抗生素。", "高烧不退请就医。", "出现胸痛要打120！"]
    assert [[c.marker for c in s.citations] for s in cited.sentences] == [[1], [1, 2], [], [2]]
    assert cited.dropped_markers == (7, 0)
    assert "[7]" not in cited.answer and "[0]" not in cited.answer
    assert [c.chunk_id for c in cited.citations] == ["d1#0", "d2#0"]
    c = cited.sentences[1].citations[1]
    assert (c.doc_id, c.title, c.source, c.span, c.score) == ("d2", "标题2", "src", (0, 3), 0.5)


def test_answer_without_markers() -> None:
    cited = cite("资料中没有相关信息。", hits(3))
    assert cited.citations == () and cited.sentences[0].citations == () and cited.dropped_markers == ()
