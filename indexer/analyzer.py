"""Chinese text analysis for BM25: jieba search-mode tokens and/or character bigrams.

Punctuation, whitespace and a short list of function words are dropped. Latin words and numbers
are lower-cased and kept whole. With a lexicon, medical terms stay whole (jieba user dictionary)
and queries are expanded with the synonyms of their terms (拉肚子 → 腹泻).
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from dataclasses import dataclass

import jieba
import opencc

from indexer.lexicon import Lexicon

MODES = ("jieba", "bigram", "jieba+bigram")
_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+|[a-z0-9]+(?:[.\-][a-z0-9]+)*")
# Function words and question scaffolding that carry no topic: dropping them keeps BM25 on content.
STOPWORDS = frozenset(
    {
        "的", "了", "吗", "呢", "吧", "啊", "呀", "和", "与", "及", "或", "是", "在", "有", "我", "你",
        "他", "她", "它", "我们", "这", "那", "就", "都", "也", "还", "要", "会", "能", "可以", "怎么", "怎么办",
        "怎样", "什么", "哪些", "为什么", "如何", "应该", "需要", "一下", "一些", "一个", "请问", "医生", "谢谢",
    }
)
_USER_WORD_FREQ = 50_000
# Hong Kong / Taiwan users write traditional characters (頭痛, 醫院); the rules, lexicon and shipped corpus are
# simplified. OpenCC's hk2s maps characters and common regional forms; simplified text passes unchanged.
_TO_SIMPLIFIED = opencc.OpenCC("hk2s")  # high enough that jieba keeps the lexicon's terms whole


@dataclass(frozen=True)
class AnalyzerConfig:
    mode: str = "jieba+bigram"
    drop_stopwords: bool = True
    expand_synonyms: bool = True

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown analyzer mode {self.mode!r}; expected one of {', '.join(MODES)}")


def to_simplified(text: str) -> str:
    """Traditional Chinese characters as simplified ones (about 10 µs for a question)."""
    return _TO_SIMPLIFIED.convert(text)


# Written Cantonese as Mandarin, for matching only: whole expressions first, then the particles and pronouns
# that have no other use in Mandarin text (佢 他, 咗 了, 唔 不, 冇 没...). 食/饮 alone stay: 食物, 饮食.
_CANTONESE_PHRASES = (
    ("依家", "现在"), ("而家", "现在"), ("头先", "刚才"), ("啱啱", "刚刚"), ("琴日", "昨天"), ("今日", "今天"),
    ("食咗", "吃了"), ("饮咗", "喝了"), ("食完", "吃完"), ("饮完", "喝完"), ("食错", "吃错"), ("饮醉", "喝醉"),
    ("叫极都唔醒", "怎么叫都叫不醒"), ("叫唔醒", "叫不醒"), ("透唔到气", "喘不过气"), ("唞唔到气", "喘不过气"),
    ("好眼瞓", "很困"), ("细路", "小孩"), ("个仔", "儿子"), ("个女", "女儿"), ("老豆", "爸爸"), ("老窦", "爸爸"),
    ("阿爸", "爸爸"), ("阿妈", "妈妈"), ("心口", "胸口"), ("成身", "全身"), ("起晒", "起满"),
    ("行路", "走路"), ("遇溺", "溺水"), ("跌亲", "摔伤"), ("跌低", "摔倒"), ("瞓觉", "睡觉"), ("头晕晕", "头晕"),
    ("讲嘢", "说话"), ("讲野", "说话"), ("唔系几", "不太"), ("好似", "好像"), ("系咪", "是不是"),
)
_CANTONESE_CHARS = str.maketrans({"佢": "他", "咗": "了", "唔": "不", "冇": "没", "嘢": "东西", "喺": "在",
                                  "啲": "些", "嘅": "的", "咁": "这么", "瞓": "睡", "攰": "累", "嚟": "来",
                                  "睇": "看", "揸": "拿", "畀": "给", "俾": "给"})


def to_mandarin(text: str) -> str:
    """Simplified characters, with the commonest written-Cantonese words as Mandarin (for rule matching)."""
    text = to_simplified(text)
    for cantonese, mandarin in _CANTONESE_PHRASES:
        text = text.replace(cantonese, mandarin)
    return text.translate(_CANTONESE_CHARS)


class ChineseAnalyzer:
    def __init__(self, config: AnalyzerConfig | None = None, lexicon: Lexicon | None = None) -> None:
        self.config = config or AnalyzerConfig()
        self.lexicon = lexicon or Lexicon()
        jieba.setLogLevel(logging.WARNING)
        self._jieba = jieba.Tokenizer()
        for term in self.lexicon.all_terms():
            self._jieba.add_word(term, freq=_USER_WORD_FREQ)

    def fingerprint(self) -> str:
        key = f"{self.config}|{self.lexicon.fingerprint()}|{sorted(STOPWORDS)}"
        return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]

    def describe(self) -> dict[str, object]:
        return {
            "mode": self.config.mode,
            "drop_stopwords": self.config.drop_stopwords,
            "expand_synonyms": self.config.expand_synonyms,
            "user_words": len(self.lexicon.user_words),
            "synonym_groups": len(self.lexicon.synonym_groups),
            "fingerprint": self.fingerprint(),
        }

    def _words(self, text: str) -> list[str]:
        """jieba search-mode words (Latin/number runs kept whole), punctuation removed."""
        text = unicodedata.normalize("NFKC", text).lower()
        words: list[str] = []
        for piece in _WORD.findall(text):
            if _HAN.fullmatch(piece):
                words.extend(w for w in self._jieba.lcut_for_search(piece) if w.strip())
            else:
                words.append(piece)
        if self.config.drop_stopwords:
            words = [w for w in words if w not in STOPWORDS]
        return words

    @staticmethod
    def _bigrams(text: str) -> list[str]:
        grams: list[str] = []
        for run in _HAN.findall(unicodedata.normalize("NFKC", text)):
            if len(run) == 1:
                grams.append(run)
            grams.extend(run[i : i + 2] for i in range(len(run) - 1))
        return grams

    def tokenize(self, text: str) -> list[str]:
        mode = self.config.mode
        tokens: list[str] = []
        if mode in ("jieba", "jieba+bigram"):
            tokens.extend(self._words(text))
        if mode in ("bigram", "jieba+bigram"):
            # In the combined mode the bigrams are prefixed so they never collide with 2-char words.
            prefix = "#" if mode == "jieba+bigram" else ""
            tokens.extend(prefix + g for g in self._bigrams(text))
        return tokens

    def expansions(self, text: str) -> list[str]:
        """Synonyms of the lexicon terms found in ``text`` (used to expand queries)."""
        if not self.lexicon.synonym_groups:
            return []
        found = dict.fromkeys(w for w in self._jieba.lcut(unicodedata.normalize("NFKC", text)))
        extra = [syn for w in found for syn in self.lexicon.synonyms(w) if syn not in text]
        return list(dict.fromkeys(extra))

    def tokenize_query(self, text: str) -> list[str]:
        tokens = self.tokenize(text)
        if self.config.expand_synonyms:
            for synonym in self.expansions(text):
                tokens.extend(self.tokenize(synonym))
        return tokens
