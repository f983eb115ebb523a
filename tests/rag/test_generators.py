"""Generators: the transformers backend through the real LLaMA loading code, and the extractive one."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from rag.generators.extractive import ExtractiveGenerator
from rag.generators.transformers_llm import LLMConfig, TransformersGenerator, _trim_at_stop
from rag.prompt import render
from rag.protocols import GenerationRequest, Generator
from rag.types import Hit, Passage


def hit(i: int, title: str, text: str) -> Hit:
    return Hit(Passage(f"d{i}#0", f"d{i}", title, text, (0, len(text))), 1.0 / i, i)


HITS = (
    hit(1, "普通感冒", "【治疗】\n普通感冒多数一周左右自愈。应注意休息、多饮水。普通感冒不需要使用抗生素。"),
    hit(2, "流行性感冒", "流感起病急，高热、全身酸痛明显。发病48小时内可在医生指导下使用抗流感病毒药物。"),
    hit(3, "高血压", "高血压患者每天食盐不超过5克。"),
)


@pytest.fixture(scope="module")
def llm(tiny_llama: Path) -> TransformersGenerator:
    return TransformersGenerator(LLMConfig(model=str(tiny_llama), max_new_tokens=24, do_sample=False))


def request(question: str = "感冒怎么处理？", **options: Any) -> GenerationRequest:
    return GenerationRequest(render(question, HITS), question, HITS, options)


def chatty() -> GenerationRequest:
    """A prompt on which the tiny English-trained model writes a long reply (its Chinese is too terse)."""
    return GenerationRequest("[human]:Explain what a cold is.\n[bot]:", "Explain what a cold is.", HITS)


def test_loads_a_real_llama_through_the_chimed_code_path(llm: TransformersGenerator) -> None:
    assert isinstance(llm, Generator)
    assert type(llm.model).__name__ == "LlamaForCausalLM"
    assert llm.context_window == 4096 and llm.max_new_tokens == 24
    assert str(llm.model.dtype) == "torch.float32"  # fp32 on CPU; fp16 + device_map=auto on CUDA
    info = llm.describe()
    assert info["backend"] == "transformers" and info["top_p"] == 0.9
    assert llm.count_tokens("感冒") > 0


def test_defaults_are_chimed_reference_settings() -> None:
    config = LLMConfig()
    assert (config.model, config.max_new_tokens, config.do_sample, config.top_p, config.context_window) == (
        "SYNLP/ChiMed-GPT-1.0", 512, True, 0.9, 4096)


def test_generate_stops_at_stop_strings(llm: TransformersGenerator) -> None:
    free = llm.generate(chatty())
    assert isinstance(free, str) and free
    # Pick a piece of what the model says anyway and make it a stop string: output must end before it.
    stop = free.strip()[len(free.strip()) // 2:][:3]
    stopped = TransformersGenerator.__new__(TransformersGenerator)
    stopped.__dict__.update(llm.__dict__)
    stopped.config = dataclasses.replace(llm.config, stop=(stop,))
    cut = stopped.generate(chatty())
    assert stop not in cut and len(cut) < len(free.strip())
    assert free.strip().startswith(cut)


def test_stream_yields_the_same_text(llm: TransformersGenerator) -> None:
    pieces = list(llm.stream(chatty()))
    assert len(pieces) >= 5
    assert "".join(pieces).strip() == llm.generate(chatty())
    assert "".join(llm.stream(request())).strip() == llm.generate(request())


def test_sampling_with_seed_is_reproducible(llm: TransformersGenerator) -> None:
    a = llm.generate(request(do_sample=True, seed=7, max_new_tokens=12))
    b = llm.generate(request(do_sample=True, seed=7, max_new_tokens=12))
    assert a == b


def test_trim_at_stop() -> None:
    assert _trim_at_stop("回答内容\n[human]:下一个问题", ("[human]:",)) == "回答内容"
    assert _trim_at_stop("没有停止符", ("[human]:",)) == "没有停止符"


def test_extractive_answers_from_the_passages_with_markers() -> None:
    gen = ExtractiveGenerator(lambda s: [ch for ch in s if ch.strip()])
    text = gen.generate(request("感冒需要吃抗生素吗"))
    assert "普通感冒不需要使用抗生素[1]。" in text
    assert "【治疗】" not in text
    for sentence in text.split("。")[:-1]:
        assert sentence.endswith(("]",)), sentence  # every sentence carries its marker
    assert "".join(gen.stream(request("感冒需要吃抗生素吗"))) == text
    assert gen.name == "extractive" and gen.describe()["backend"] == "extractive"


def test_extractive_prefers_the_section_the_question_asks_about() -> None:
    text = "【症状】\n高血压多数没有症状。\n【治疗】\n可以按以下方法：\n高血压要长期规律服用降压药。\n高血压怎么治？"
    passage = (Hit(Passage("h#0", "h", "高血压", text, (0, len(text))), 1.0, 1),)
    gen = ExtractiveGenerator(lambda s: [ch for ch in s if ch.strip()],
                              dataclasses.replace(ExtractiveGenerator(str.split).config, max_points=1))
    asked = GenerationRequest("", "高血压怎么治疗", passage)
    assert gen.generate(asked) == "高血压要长期规律服用降压药[1]。"
    asked = GenerationRequest("", "高血压有什么症状", passage)
    assert gen.generate(asked) == "高血压多数没有症状[1]。"


def test_extractive_keeps_list_items_whole_and_drops_repeats() -> None:
    text = ("【治疗】\n对症用药：发热时可用对乙酰氨基酚；鼻塞可选用含伪麻黄碱的感冒药。\n"
            "对症用药：发热时可用对乙酰氨基酚；鼻塞可选用含伪麻黄碱的感冒药。\n多休息，多喝水。")
    hits = (Hit(Passage("c#0", "c", "感冒", text, (0, len(text))), 1.0, 1),
            Hit(Passage("c#1", "c", "感冒", text, (0, len(text))), 0.9, 2))
    gen = ExtractiveGenerator(lambda s: [ch for ch in s if ch.strip()])
    out = gen.generate(GenerationRequest("", "感冒怎么处理", hits))
    lines = out.splitlines()
    assert "对症用药：发热时可用对乙酰氨基酚；鼻塞可选用含伪麻黄碱的感冒药[1]。" in lines  # never cut at "；"
    assert sum("对乙酰氨基酚" in line for line in lines) == 1  # the same item from two passages: once
    assert all(line.endswith(("]。", "]！")) for line in lines)


def test_extractive_names_the_part_nothing_answers() -> None:
    from rag.protocols import Note

    text = "【预防与日常管理】\n糖尿病人早餐要定时定量，主食选全谷物。"
    hits = (Hit(Passage("d#0", "d", "糖尿病", text, (0, len(text))), 1.0, 1),)
    gen = ExtractiveGenerator(lambda s: [ch for ch in s if ch.strip()])
    pieces = list(gen.stream(GenerationRequest("", "糖尿病人早餐吃什么好？能吃水果吗？", hits)))
    notes = [p for p in pieces if isinstance(p, Note)]
    assert "早餐要定时定量" in "".join(p for p in pieces if not isinstance(p, Note))
    assert notes and "能吃水果吗" in notes[0] and "早餐" not in notes[0]


def test_extractive_never_uses_a_line_the_chunker_cut() -> None:
    from rag.generators.extractive import document_texts

    document = "【治疗】\n多休息；多喝水。发热时可用退热药。\n咳嗽明显时可用止咳药。"
    cut = document.index("多喝水")  # the chunker also cuts at "；": this chunk starts inside a list item
    first = Passage("t#0", "t", "感冒", document[:cut], (0, cut))
    second = Passage("t#1", "t", "感冒", document[cut:], (cut, len(document)))
    assert document_texts([second, first]) == {"t": document}
    hits = (Hit(second, 1.0, 1),)
    tokenize = lambda s: [ch for ch in s if ch.strip()]  # noqa: E731
    asked = GenerationRequest("", "感冒发热多喝水怎么办", hits)
    assert "多喝水[1]" in ExtractiveGenerator(tokenize).generate(asked)  # without the documents: a fragment
    text = ExtractiveGenerator(tokenize, documents=document_texts([first, second])).generate(asked)
    assert "多喝水[1]" not in text and "发热时可用退热药[1]。" in text and "咳嗽明显时可用止咳药[1]。" in text
