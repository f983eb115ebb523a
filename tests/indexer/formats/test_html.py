"""HTML: main content only, headings as sections, encoding sniffed when no charset is declared."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.errors import NoTextError
from indexer.loaders import load_file
from indexer.types import Document
from tests.indexer.formats import samples

PAGE = """<!DOCTYPE html><html><head><title>高尿酸血症科普 - 示范医院</title></head><body>
<nav><a href="/">首页</a> | <a href="/news">新闻中心</a> | <a href="/about">关于我们</a></nav>
<article><h1>高尿酸血症科普</h1>
<h2>什么是高尿酸血症</h2><p>正常嘌呤饮食状态下，非同日两次空腹血尿酸水平男性和女性均高于420微摩尔每升，称为高尿酸血症。
这是一段足够长的正文，用来让正文抽取器认出这里才是文章的主体内容，而不是导航栏或者页脚。</p>
<h2>如何预防</h2><p>多饮水，每日饮水量两千毫升以上，限制果糖饮料和酒精摄入，规律运动并控制体重。
这一段同样是正文，讲的是预防高尿酸血症的生活方式建议，内容具体而且完整。</p></article>
<footer>版权所有 示范医院 京ICP备00000000号</footer><script>var tracking = 1;</script>
</body></html>"""


def load(path: Path) -> Document:
    [(doc, _)] = load_file(path, path.parent)
    return doc


def test_main_content_and_sections(tmp_path: Path) -> None:
    (tmp_path / "gout.html").write_bytes(PAGE.encode("gb18030"))  # no charset declared, not UTF-8
    doc = load(tmp_path / "gout.html")
    assert "420微摩尔每升" in doc.text
    for boilerplate in ("新闻中心", "版权所有", "tracking"):
        assert boilerplate not in doc.text
    start = doc.text.index("限制果糖饮料")
    assert next(s.section for s in doc.layout if s.start <= start < s.end)[-1] == "如何预防"


def test_a_page_without_content_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "blank.html").write_text("<html><body><script>var a = 1;</script></body></html>", encoding="utf-8")
    with pytest.raises(NoTextError) as err:
        load(tmp_path / "blank.html")
    assert str(err.value) == "blank.html: no main content found in the HTML page"


def test_real_news_page_without_boilerplate() -> None:
    doc = load(samples.shared_document("news-lancet-anosmia-covid-thepaper.html"))
    assert doc.title.startswith("柳叶刀：味觉嗅觉丧失是新冠感染最强预测指标")
    assert "65.03%" in doc.text and "<u>" not in doc.text


def test_real_page_without_a_charset() -> None:
    doc = load(samples.shared_document("notice-covid-zoned-prevention-163.html"))
    assert "严格管控、外防输出、内防扩散" in doc.text
