from __future__ import annotations

from pathlib import Path

import pytest

from indexer.analyzer import AnalyzerConfig, ChineseAnalyzer, to_mandarin, to_simplified
from indexer.errors import CorpusError
from indexer.lexicon import Lexicon, load_lexicon, read_synonyms

LEXICON = Lexicon(user_words=("糖化血红蛋白", "幽门螺杆菌"), synonym_groups=(("腹泻", "拉肚子", "闹肚子"),))


def test_punctuation_whitespace_and_stopwords_are_dropped() -> None:
    tokens = ChineseAnalyzer(AnalyzerConfig(mode="jieba")).tokenize("感冒了，怎么办？？  吃什么药！COVID-19 (新冠)")
    assert not [t for t in tokens if not any(ch.isalnum() for ch in t)]
    assert "怎么办" not in tokens and "了" not in tokens
    assert "covid-19" in tokens and "感冒" in tokens


def test_user_dictionary_keeps_terms_whole() -> None:
    plain = ChineseAnalyzer(AnalyzerConfig(mode="jieba")).tokenize("查糖化血红蛋白和幽门螺杆菌")
    medical = ChineseAnalyzer(AnalyzerConfig(mode="jieba"), LEXICON).tokenize("查糖化血红蛋白和幽门螺杆菌")
    assert "糖化血红蛋白" in medical and "幽门螺杆菌" in medical
    assert "糖化血红蛋白" not in plain


def test_bigram_modes() -> None:
    assert ChineseAnalyzer(AnalyzerConfig(mode="bigram")).tokenize("头痛。发热") == ["头痛", "发热"]
    both = ChineseAnalyzer(AnalyzerConfig(mode="jieba+bigram")).tokenize("偏头痛")
    assert "偏头痛" in both and "#偏头" in both and "#头痛" in both
    with pytest.raises(ValueError, match="unknown analyzer mode"):
        AnalyzerConfig(mode="words")


def test_query_expansion_with_synonyms() -> None:
    analyzer = ChineseAnalyzer(AnalyzerConfig(mode="jieba"), LEXICON)
    tokens = analyzer.tokenize_query("拉肚子三天了")
    assert "腹泻" in tokens and "闹肚子" in tokens
    assert "腹泻" not in analyzer.tokenize("拉肚子三天了")  # documents are not expanded
    off = ChineseAnalyzer(AnalyzerConfig(mode="jieba", expand_synonyms=False), LEXICON)
    assert "腹泻" not in off.tokenize_query("拉肚子三天了")


def test_fingerprint_tracks_lexicon_and_mode() -> None:
    a = ChineseAnalyzer(AnalyzerConfig(), LEXICON).fingerprint()
    assert a == ChineseAnalyzer(AnalyzerConfig(), LEXICON).fingerprint()
    assert a != ChineseAnalyzer(AnalyzerConfig(), Lexicon()).fingerprint()
    assert a != ChineseAnalyzer(AnalyzerConfig(mode="jieba"), LEXICON).fingerprint()


def test_lexicon_files(tmp_path: Path) -> None:
    (tmp_path / "d.txt").write_text("# comment\n心肌梗死 100 n\n\n房颤\n", encoding="utf-8")
    (tmp_path / "s.txt").write_text("心肌梗死 心梗  # short form\n", encoding="utf-8")
    lex = load_lexicon(tmp_path / "d.txt", tmp_path / "s.txt")
    assert lex.user_words == ("心肌梗死", "房颤")
    assert lex.synonyms("心梗") == ("心肌梗死",) and lex.canonical("心梗") == "心肌梗死"
    (tmp_path / "bad.txt").write_text("孤单\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"bad\.txt:1"):
        read_synonyms(tmp_path / "bad.txt")


def test_traditional_characters_become_simplified_and_simplified_text_is_unchanged() -> None:
    assert to_simplified("頭痛到爆，醫院說要住院") == "头痛到爆，医院说要住院"
    plain = "我爸突然说不出话，一边手脚没劲，发烧三天了"
    assert to_simplified(plain) == plain


def test_written_cantonese_becomes_mandarin_for_matching() -> None:
    assert to_mandarin("佢頭先講嘢唔清楚，依家叫極都唔醒") == "他刚才说话不清楚，现在怎么叫都叫不醒"
    # 食/饮 alone stay: they are Mandarin too (食物中毒, 饮食).
    assert to_mandarin("食物中毒，注意饮食") == "食物中毒，注意饮食"
