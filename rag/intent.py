"""What a question asks for: treatment, cause, symptoms, diet and lifestyle, medicine use, when to see a doctor…

One registry of intents, each with the cue words that reveal it in everyday questions and the corpus sections
that answer it (the shipped documents share a fixed set of sections: 治疗, 病因, 何时就医 …). The extractive
composer uses it to pick sentences that serve the question; LLM generators get it as a line in the prompt.
A question may ask several things ("糖尿病人早餐吃什么好？能吃水果吗？"): it is split into its parts, and each
part has its own intents, so the composer can say which part the references do not cover.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class Intent:
    name: str
    label: str  # how the answer names it to the reader ("治疗方法")
    cues: re.Pattern[str]
    sections: frozenset[str]


def _intent(name: str, label: str, cues: str, sections: str) -> Intent:
    return Intent(name, label, re.compile(cues), frozenset(sections.split()))


INTENTS: tuple[Intent, ...] = (
    _intent("medicine_use", "用药注意",
            # "注意什么" alone asks about daily life; after a medicine ("在吃X，有什么要注意的") about its use.
            r"换(?:个|一种|成)?药|停药|停(?:吗|不停|用吗)|减药|代替|替代|副作用|不良反应|一起吃(?!饭)|同时吃|一起用|"
            r"相互作用|合用|能(?:不能|否)?(?:一直)?吃.{0,6}药|"
            r"药.{0,6}(?:能不能|可以|可不可以)|(?:吃|用)(?:多久|多长时间)|禁忌|慎用|孕妇能|哺乳期能|饭前|饭后|漏服|伤肝|伤肾|依赖|"
            r"还能(?:再)?(?:吃|用)|吃.{0,6}(?:行不行|行吗|可以吗)|掰|开车|消炎|(?:吃|用|服)(?!饭).{0,16}(?:要|该)注意|"
            r"(?:吃|用)了.{0,6}药",
            "用药提示 禁忌与慎用 常见不良反应 相互作用 注意事项 治疗"),
    _intent("treatment", "治疗和处理方法",
            r"怎么办|咋办|咋整|怎么治|如何治|咋治|治疗|治好|根治|吃什么药|吃啥药|用什么药|用啥药|什么药|怎么处理|如何处理|处理|"
            r"缓解|怎么弄|怎么消|消除|好得快|怎么调理|调理|手术|偏方|有(?:什么)?办法|用什么|好受|怎么才能好|切掉|切除",
            "治疗 自我观察与处理 现场处理 具体做法 适用情况 用药提示"),
    _intent("symptoms", "症状表现",
            # "没啥症状" / "没什么感觉" tell the context; they do not ask for symptoms.
            r"(?<!没啥)(?<!没有)(?<!没什么)(?:症状|表现|什么感觉)|征兆|前兆|有什么反应|会怎么样|是不是得了|"
            r"是不是.{0,6}(?:病|症|炎)|怎么知道|怎么看出|"
            r"会不会是|这是什么|什么毛病|什么病|是.{0,8}(?:病|症|炎|核)吗",
            "症状 表现 识别"),
    _intent("cause", "原因",
            r"原因|为什么|为啥|怎么引起|病因|怎么回事|咋回事|怎么会|引起的|导致|诱因|怎么得的|怎么也会|的问题吗",
            "病因 原因 常见原因"),
    _intent("when_to_see_doctor", "何时就医",
            r"医院|就医|看医生|去看|就诊|要紧吗|要不要紧|严重吗|危险吗|急诊|挂(?:什么|哪个)科|需要去|用不用去|要不要去",
            "何时就医"),
    _intent("prevention", "预防",
            # "打完疫苗" is the context of a reaction, not a question about preventing anything.
            r"预防|避免|防止|怎么防|如何防|防得住|不得|少得|(?<!打完)(?<!打了)(?:疫苗|接种)|不容易再|再长|再犯",
            "预防与日常管理"),
    _intent("diet_lifestyle", "饮食和生活方式",
            # Not "平时": it opens questions about anything ("平时偶尔心里咯噔一下").
            r"饮食|吃什么好|吃点什么|能吃|不能吃|可以吃|忌口|早餐|早饭|晚饭|水果|喝酒|喝茶|喝咖啡|运动|锻炼|跑步|作息|熬夜|日常|"
            r"生活上|注意(?:什么|哪些|啥|些啥)|有什么要注意|注意事项|吃东西|食物|吃啥|怎么吃|吃什么|能(?:不能)?喝|不能喝|可以喝|"
            r"喝点|放盐|助眠",
            "预防与日常管理 注意事项 要点 具体做法"),
    _intent("diagnosis_tests", "检查和诊断",
            r"检查|诊断|化验|试验|指标|正常值|偏高|偏低|报告|确诊|查什么|查哪些|结果|阳性|阴性|(?:要|该|需要)查|多久查|抽血|参考值|"
            r"算不算|就算|控制得",
            "诊断与检查 检查项目与意义 结果解读 检查前准备"),
    _intent("prognosis", "预后",
            # "严重吗" asks how it will turn out (and, with when_to_see_doctor, whether to go); "能好受点" is comfort.
            r"能治好|能好吗|会好吗|能好(?!受)|多久能好|多久好|遗传|传染|复发|后果|寿命|会不会死|能活|癌变|恶变|恶化|变成|"
            r"严重吗|严不严重|(?:是|得)癌|大概率|会怎么样|根治|能要吗",
            "概述 治疗 病因"),
    _intent("care_at_home", "居家护理",
            r"护理|照顾|在家|家里|居家|陪护|家人该",
            "自我观察与处理 预防与日常管理 注意事项 具体做法"),
)
BY_NAME = {intent.name: intent for intent in INTENTS}
# Triage raised a red flag: what to recognise, what to do now, when to call for help.
EMERGENCY = _intent("emergency", "紧急处理", r"$^", "识别 现场处理 何时就医 症状 注意事项")

_PART = re.compile(r"[？?！!。\n]+|[，,；;](?=\s*(?:能|可以|要|需要|会|还|那|是不是|有没有|怎么|为什么|多久|吃))")


@dataclass(frozen=True)
class QuestionPart:
    text: str
    intents: tuple[Intent, ...]

    @property
    def sections(self) -> frozenset[str]:
        return frozenset(s for intent in self.intents for s in intent.sections)


def _clean(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip()


def detect(question: str) -> tuple[Intent, ...]:
    """The intents a question (or part of one) shows, in registry order; none for a bare topic ("高血压")."""
    text = _clean(question)
    return tuple(intent for intent in INTENTS if intent.cues.search(text))


def parts(question: str) -> tuple[QuestionPart, ...]:
    """The question's sub-questions with their intents; a part with no cue of its own keeps the whole
    question's intents (so "高血压" alone is one part, with none)."""
    pieces = [p.strip() for p in _PART.split(_clean(question)) if len(p.strip()) >= 2]
    found = [QuestionPart(p, detect(p)) for p in pieces] or [QuestionPart(_clean(question), ())]
    asked = [p for p in found if p.intents]
    if not asked:
        return (QuestionPart(_clean(question), detect(question)),)
    return tuple(asked)
