"""Rule-based medical red-flag triage of a question, run before retrieval.

Questions arrive in everyday Chinese ("我爸突然说不出话", "胸口压着疼还出冷汗"). Rules are regexes over the
NFKC-normalised text, checked clause by clause so that a negation cue just before a symptom
("没有胸痛", "也没晕倒") cancels it. A question that only asks for general knowledge ("中风有哪些早期
症状") and describes nobody's present situation does not raise an alarm, except for self-harm, where a
missed case costs more than a false one.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

from rag.triage_model import SIGNAL as MODEL_SIGNAL
from rag.triage_model import Embed, TriageModel

Level = Literal["emergency", "urgent", "routine"]
LEVELS: tuple[Level, ...] = ("routine", "urgent", "emergency")

CRISIS_HOTLINE = "12356"  # 全国统一心理援助热线 (national psychological assistance hotline)
ADVICE = {
    "emergency": "这可能是急症：请立即拨打 120 急救电话或尽快前往最近医院的急诊科，不要等待网上答复，"
                 "也不要自行驾车前往。",
    "urgent": "这些情况需要尽快就医：请在今天内到医院就诊（症状加重时立即去急诊或拨打 120）。",
    "self_harm": f"你的安全最重要。如果你或身边的人有伤害自己的想法或行为，请立即寻求帮助：拨打全国统一"
                 f"心理援助热线 {CRISIS_HOTLINE}，生命有危险时立即拨打 120 或 110；请不要独自一人，"
                 f"马上联系身边信任的人陪伴。",
    # The learned backstop cannot say which red flag it saw: hedged advice, not a diagnosis of urgency.
    "possible_red_flag": "你描述的情况可能需要尽快就医：如果症状是突然出现、很严重或在加重，请今天就到医院就诊，"
                         "危急时立即拨打 120。",
    "dose_request": "具体用药剂量因人而异（年龄、体重、肝肾功能、合并用药等），本系统不提供个体化剂量；"
                    "请遵医嘱或咨询医生、药师，并按药品说明书使用。",
}

# Symptom rules: (signal, level, pattern). A rule may also need a companion pattern somewhere in the text.
_CHEST = r"(?:胸口|胸部|胸前|心口|心窝|胸骨后?(?:面)?|前胸|胸)"
_PAIN_MOD = r"(?:很|特别|非常|突然|一阵阵|一直|有点|剧烈|好|老是|揪着|压着|闷着|像)*"
_FIGURATIVE = r"(?<!气得)(?<!气得我)(?<!急得)(?<!急得我)"  # "气得我心口疼": anger, not angina
_CHEST_PAIN = rf"{_FIGURATIVE}{_CHEST}{_PAIN_MOD}(?:疼|痛|闷|憋|发紧|压榨|不舒服|压了)|心绞痛|胸痛|胸闷"
_CHEST_COMPANION = (r"大汗|出冷汗|吐|厉害|冒冷汗|一身汗|满头大汗|出汗|放射|左(?:胳膊|臂|肩)|后背|下巴|牙|压榨|濒死|"
                    r"喘不上气|喘不过气|持续|半小时|半个小时|\d+分钟|几十分钟|恶心|脸色发白|脸色苍白")

_TOXIC = r"(?:农药|百草枯|敌敌畏|消毒液|84|洗洁精|洁厕灵|老鼠药|漂白水|汽油|除草剂|杀虫剂)"


@dataclass(frozen=True)
class _Rule:
    signal: str
    level: Level
    pattern: re.Pattern[str]
    companion: re.Pattern[str] | None = None
    always: bool = False  # fires even in a general-knowledge question


def _rule(signal: str, level: Level, pattern: str, companion: str | None = None, always: bool = False) -> _Rule:
    return _Rule(signal, level, re.compile(pattern), re.compile(companion) if companion else None, always)


RULES: tuple[_Rule, ...] = (
    _rule("self_harm", "emergency",
          r"(?:想|要|打算|准备|计划|试图|尝试|企图|想要)(?:过)?(?:去)?(?:自杀|轻生|寻死|了结自己|结束(?:自己的)?生命|"
          r"割腕|跳楼|上吊|死了算了)|不想活|活不下去|活着没(?:有)?(?:意思|意义)|(?<!得)(?<!得我)想(?:去)?死(?![你他她我])|撑不下去|不想再活|活够了|"
          r"一了百了|自残|割腕|伤害自己|自杀|遗书|怎么死|(?:想|要)结束(?:这)?一切|不想(?:再)?拖累|(?:是|就是)个?累赘|"
          r"没有我.{0,8}(?:更好|过得好)|(?:东西|存款|积蓄)(?:都)?(?:送人|交代|分给)|交代(?:好)?后事|"
          r"(?:准备|囤|攒|存)(?:了|好)?.{0,4}(?:安眠药|药片|刀片|绳子|木炭|炭)|上(?:了)?(?:楼顶|天台).{0,8}(?:好几次|想跳)|"
          r"(?:谢谢|感谢).{0,12}(?:这些年|陪伴).{0,20}(?:照顾好自己|再见|永别)", always=True),
    _rule("chest_pain", "emergency", _CHEST_PAIN, _CHEST_COMPANION),
    _rule("chest_pain", "urgent", _CHEST_PAIN),
    _rule("stroke_signs", "emergency",
          r"口角歪|嘴(?:巴)?(?:角)?(?:突然)?歪|脸(?:突然)?歪|面部歪斜|(?:一侧|半边|半身|一边|左边|右边|单侧)"
          r"(?:的)?(?:手脚|肢体|胳膊|腿|身子|身体|脸)?(?:突然)?(?:无力|麻木|发麻|没劲|没力气|不能动|动不了|不听使唤)|"
          r"说不出(?:来)?话|(?:一句)?话(?:都|也)?说不(?:出来|清楚|了)|说不了话|说话(?:不清|含糊|含混|不利索)|口齿不清|吐字不清|大舌头|讲话含糊|突然看不见|手抬不起来|"
          r"胳膊抬不起来|走路(?:突然)?(?:往一边|歪)|"
          r"(?:左|右|一|半)(?:边|侧)?.{0,4}(?:胳膊|手|腿|脚|脸|身子|身体|肢体).{0,8}(?:麻|没劲|无力|抬不起|动不了|"
          r"不听使唤|耷拉|下垂|不能动)|脸.{0,4}(?:耷拉|歪|垂)下?|口水(?:往外|直)?(?:流|淌)|"
          r"(?:一只眼|左眼|右眼|一边眼睛?|半边)(?:睛)?(?:突然)?.{0,6}(?:看不见|看不清|黑了|失明)|突然.{0,4}(?:一只眼|眼前).{0,6}看不见"),
    _rule("breathing", "emergency",
          r"喘不上气|喘不过气|上不来气|透不过气|呼吸困难|憋得(?:脸|嘴唇)?(?:发紫|发青|青紫)|嘴唇(?:发紫|发青|青紫)|"
          r"窒息|噎住|卡住(?:了)?(?:喉咙|嗓子)|(?:喉咙|嗓子)(?:里)?卡(?:住|了)|呼吸(?:越来越)?(?:急促|微弱)|没(?:有)?呼吸了|"
          r"吸不(?:进|上|动)气|(?:喘|憋)得(?:坐着|躺不下|不能躺|说不出|厉害)|(?:一句)?话(?:都)?说不完整|说不了完整|"
          r"(?:嘴唇|嘴巴|指甲|脸)[和、都也指甲嘴唇]*(?:发青|发紫|青紫|乌青|紫了|青了)|肋骨.{0,8}凹|三凹|鼻翼(?:一)?扇|"
          r"(?:喉咙|脖子)像被(?:掐|勒)|(?:哮喘|气喘).{0,12}(?:不管用|没用|喷了.{0,4}(?:不|没))"),
    _rule("heavy_bleeding", "emergency",
          r"大出血|血流不止|止不住(?:血)?|血止不住|大量(?:出血|吐血|咯血|便血)|吐了(?:很多|一大口|好多|一口)?血|呕血|"
          r"喷血|流了(?:很多|好多|一地)血|(?:怀孕|孕妇|孕期).{0,10}(?:出血|流血)|咯血|(?:出|流)了(?:很多|好多|一大摊|不少)(?:的)?血|"
          r"(?:出|流)(?:好多|很多|大量|不少)血|血.{0,6}(?:一直|还在|还是)(?:往外)?(?:冒|流|涌)|血(?:都)?喷|"
          r"(?:血|卫生巾|毛巾|纱布|衣服).{0,10}(?:湿透|浸透)|(?:按|压)了.{0,8}(?:还|也|都)(?:在|是)?(?:冒|流)血"),
    _rule("unconscious_or_seizure", "emergency",
          r"昏迷|晕倒|昏倒|叫不醒|不省人事|意识不清|没(?:有)?意识|没反应了|昏过去|晕过去|抽搐|抽风|惊厥|"
          r"口吐白沫|癫痫发作|倒地不起|神志不清|抽(?:了|起来|个不停)|(?:两眼|双眼|眼睛)(?:发直|上翻|翻白)|"
          r"(?:手脚|四肢)(?:一直)?(?:抽|抖个不停)|糊里糊涂|认不出(?:人|来|我)|胡言乱语|说胡话|意识模糊|叫不(?:太)?醒"),
    _rule("anaphylaxis", "emergency",
          r"过敏性休克|(?:喉咙|嗓子|喉头)(?:里面?)?(?:发紧|肿|堵)|(?:嘴唇|舌头|脸|眼皮|全身)(?:都)?肿",
          r"过敏|吃了|打了|喘|呼吸|头晕|发紧|堵|荨麻疹|风团|疹子"),
    _rule("poisoning", "emergency",
          r"误服|误食|误吞|喝了.{0,4}(?:农药|百草枯|敌敌畏|消毒液|84|洗洁精|洁厕灵|酒精|老鼠药)|"
          r"吃了(?:一)?(?:整瓶|一瓶|一把|几十片|一大把|半瓶)|吃了(?:\d+|[一二三四五六七八九十几百]+)片|(?:药|安眠药)(?:一下子)?吃多了|吃错药|一氧化碳|煤气中毒|"
          r"毒蘑菇|中毒|吞了(?:电池|纽扣电池|磁铁)|(?:吞|咽)(?:了|下去?了?).{0,6}(?:电池|磁铁|硬币|别针)|"
          r"(?:电池|磁铁|硬币|别针).{0,6}(?:吞|咽)(?:下去?)?了|(?:药|片).{0,4}吃了(?:好几|十几|几十|一整|一大)?(?:片|粒|瓶|板|盒)|"
          r"吃了(?:好几|十几|几十|一整|一大)(?:片|粒|瓶|板|盒)|烧炭|炭火|炭盆|"
          r"(?:燃气|煤气)热水器.{0,30}(?:头晕|晕|恶心|想吐|站不稳)|(?:车库|车里).{0,12}(?:空调|发动机|没熄火).{0,30}(?:叫不醒|晕)"),
    _rule("poisoning", "emergency",
          rf"(?:把|喝了|吃了|误喝|喝下|吞了).{{0,6}}{_TOXIC}|{_TOXIC}.{{0,3}}(?:喝|吃|吞)(?:了|下)"),
    _rule("poisoning", "emergency", r"(?:野|采的|捡的)蘑菇", r"吐|拉|晕|不舒服|难受|肚子疼"),
    # Carbon monoxide: a closed room with a flame, and someone dizzy or drowsy (often in another clause).
    _rule("poisoning", "emergency", r"(?:燃气|煤气)热水器|烧炭|炭火|炭盆|门窗(?:都)?(?:紧)?关",
          r"头晕|晕|恶心|想吐|站不稳|叫不醒|头疼|头痛|没力气"),
    _rule("infant_fever", "emergency",
          r"(?:发烧|发热|高烧|低烧|烧到|体温.{0,6}(?:38|39|40)|(?:38|39|40)(?:\.\d)?\s*(?:度|℃)|(?:三十八|三十九|四十)度|"
          r"摸着(?:有点|有些)?烫)", None),
    _rule("venomous_bite", "emergency",
          r"被(?:毒)?蛇咬|毒蛇|蛇咬|遭蛇|蝎子|蜈蚣|毒蜘蛛|(?:咬|蜇).{0,12}牙印.{0,16}(?:麻|肿|抬不起)|眼皮(?:也)?抬不起来"),
    _rule("severe_pain", "urgent",
          r"(?:剧烈|撕裂样?|刀割样?)(?:的)?(?:头痛|头疼|腹痛|肚子疼|肚子痛)|(?:头|肚子|腹部)(?:疼|痛)得(?:受不了|打滚|厉害|要命)|"
          r"从来没有过的头痛|这辈子最(?:疼|痛)|没这么(?:疼|痛)过|(?:疼|痛)得(?:要炸|直不起腰|满地打滚|打滚|直哭|冒冷汗|说不出话)|"
          r"撕裂(?:一样|样|般)?的?(?:疼|痛)|(?:肚子|腹部)(?:硬邦邦|发硬|板硬)|(?:蛋蛋|睾丸|阴囊).{0,6}(?:疼|痛)|"
          r"(?:右下腹|肚子).{0,12}越来越(?:疼|痛|厉害)"),
    _rule("high_fever", "urgent",
          r"高烧不退|(?:烧|发烧|体温)(?:到|了|都)?(?:39|40|41)(?:\.\d)?|持续高烧|发烧.{0,4}(?:三|3|四|4|五|5)天|"
          r"(?:疹|点|斑).{0,12}(?:不褪色|不退色|压不退|按了也不)"),
    _rule("bites_or_burns", "urgent",
          r"被(?:狗|猫|蜂|马蜂)(?:咬|蛰|抓)|大面积(?:烫伤|烧伤)|(?:烫伤|烧伤).{0,6}(?:起泡|一大片)|骨折|"
          r"(?:烫|烧)(?:伤|了|到).{0,15}(?:起泡|水泡|一大片|大面积|皮都?掉|脱皮|焦)|油锅起火|(?:狗|猫)咬.{0,8}(?:很深|翻|流血)|"
          r"(?:摔|撞).{0,8}(?:动不了|变形)|(?:化学品|消毒液|石灰).{0,6}(?:溅|进)(?:到)?眼"),
    _rule("bites_or_burns", "urgent", r"烫(?:伤|了|到|红)|烧伤|开水|热汤|热油|油锅",
          r"起泡|水泡|一大片|大面积|皮都?掉|脱皮|焦"),
    _rule("dehydration_or_blood", "urgent",
          r"(?:一天|半天|一整天)(?:都)?没(?:有)?尿|尿不出来|便血|拉血|黑便|柏油|吐血|黑(?:色)?的?大便|"
          r"哭(?:都|也)?没(?:有)?(?:眼泪|泪)|(?:小便|尿)(?:很少|特别少|几乎没有)|不怎么尿|眼窝(?:凹|深)|咖啡渣|咖啡色.{0,4}(?:吐|呕)|"
          r"(?:大便|便)(?:里)?(?:带|有)(?:了)?(?:好多|很多|大量|不少)?(?:的)?(?:鲜)?血|吃(?:啥|什么)吐(?:啥|什么)|喝水都吐"),
)

_AGE = r"([0-9]+|[一二两俩三四五六七八九十]+)\s*(?:个)?(?:多)?(天|周|星期|个月|月)"
_INFANT = re.compile(
    rf"(?:出生|生下来|宝宝|孩子|婴儿|小孩|娃|宝|女儿|儿子|闺女)(?:才|刚|刚刚)?(?:出生)?{_AGE}|{_AGE}(?:大|的(?:宝宝|孩子|婴儿|小孩|娃|宝))")
_CN_NUM = {"一": 1, "二": 2, "两": 2, "俩": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}
_DAYS = {"天": 1, "周": 7, "星期": 7, "个月": 30, "月": 30}
INFANT_DAYS = 90

_DOSE = re.compile(
    r"(?:吃|服|用|喝|打|注射|涂|给(?:孩子|宝宝|他|她|我爸|我妈)?(?:吃|用|喝))(?:多少|几)(?:片|粒|毫克|mg|克|毫升|ml|支|袋|包|颗|次|勺|单位)|"
    r"(?:剂量|用量|用法用量)(?:是)?(?:多少|怎么算|怎么定)|一次(?:吃|服|用)?(?:多少|几)|一天(?:吃|服|用)?(?:几次|多少)|"
    r"(?:给我|帮我)开.{0,8}(?:药|处方|药方)|开(?:个|张)处方|(?:\d+|几)\s*(?:公斤|kg|斤).{0,12}(?:吃|用|喝)(?:多少|几)")

_NEGATION = re.compile(r"没有|没|无|不|未|否认|并非|从未|别")
_NOT_NEGATION = re.compile(r"不小心|不知道|不明|不舒服|不停|不住|不了|不出|不清|不醒|不上|不过来|不起|"
                           r"不注意|不留神|不懂事|不管用|不见|不褪|不退|不动|不稳|不太|"
                           r"无缘无故|没想到|没多久|没精神|没眼泪|没反应|没劲|没力气")
_NEG_WINDOW = 6
# Clauses about the past, a hypothetical, or something already over describe no present emergency.
_NOT_NOW = re.compile(r"以前|去年|前年|上个?月|上次|小时候|年前|曾经|(?<![没未])有过|过一次|治好了?|打完了|康复|"
                      r"的话|如果|万一|假如|假设")
_RESOLVED = re.compile(r"退了|烧退|就好了|已经好了|现在好了|止住了|止血了|缓过来")
_JOKE = re.compile(r"开玩笑|开个玩笑|说着玩|玩笑话")
_FICTION = re.compile(r"电视剧|电影|小说|剧情|剧里|新闻里|书里|游戏里|演员|角色")
_CLAUSE = re.compile(r"[，。！？；,!?;：:\n]|(?<!\d)\.|\.(?!\d)|但是|可是|但|却|而且|然后|结果")
_INFO = re.compile(r"有哪些|有什么|是什么|什么是|怎么预防|如何预防|怎样预防|的原因|的症状|的表现|早期症状|的区别|"
                   r"怎么急救|如何急救|急救方法|急救措施|常见吗|能治好吗|诊断标准|科普|了解一下|先兆|征兆|"
                   r"会不会引起|会引起|多久能|怎么判断|如何判断|怎么识别|如何识别|是指|为什么会|是做什么的|是干什么的|电视剧|电影|小说|培训|教案|考试|胸痛中心")
_SITUATION = re.compile(
    r"现在|刚才|刚刚|突然|正在|今天|今晚|昨晚|昨天|一直|已经|分钟|小时|怎么办|咋办|救命|马上|赶快|快点|着急|急死|"
    r"我(?:爸|妈|爷|奶|姥|外公|外婆|老公|老婆|媳妇|丈夫|妻子|家|儿子|女儿|孩子|宝宝|朋友|同事|邻居|弟|哥|姐|妹)|"
    r"孩子|宝宝|老人|他|她|我(?:今天|现在|刚|突然|一直|最近|有点|感觉|觉得|这|的)")
_PERSONAL_DOSE_EXEMPT = re.compile(r"说明书上写|说明书规定")  # asking what a leaflet says is general information


@dataclass(frozen=True)
class Safety:
    """Outcome of triage: how urgent, which red flags were seen, and what to tell the user first."""

    level: Level
    signals: tuple[str, ...] = ()
    advice: str = ""

    @property
    def dose_request(self) -> bool:
        return "dose_request" in self.signals

    def to_json(self) -> dict[str, object]:
        return {"level": self.level, "signals": list(self.signals), "advice": self.advice}


def _normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


def _clauses(text: str) -> list[str]:
    return [c for c in _CLAUSE.split(text) if c.strip()]


def _negated(clause: str, start: int) -> bool:
    window = _NOT_NEGATION.sub("", clause[max(0, start - _NEG_WINDOW - 4):start])[-_NEG_WINDOW:]
    return bool(_NEGATION.search(window))


def _found(pattern: re.Pattern[str], clauses: list[str], present_only: bool = True) -> bool:
    """True when ``pattern`` occurs in some clause without a negation cue just before it.

    Clauses about fiction or news ("电影里主角割腕") describe nobody who needs help now; with
    ``present_only``, neither do past, hypothetical or resolved ones ("去年中过风", "误吞东西的话",
    "发烧三天退了", "眼前黑了一下，几秒就好了": the clause or the next one says it is over)."""
    for i, clause in enumerate(clauses):
        if _FICTION.search(clause) or (present_only and _not_now(clauses, i)):
            continue
        if any(not _negated(clause, m.start()) for m in pattern.finditer(clause)):
            return True
    return False


def _not_now(clauses: list[str], i: int) -> bool:
    return bool(_NOT_NOW.search(clauses[i]) or _RESOLVED.search(" ".join(clauses[i : i + 2])))


def _age_days(text: str) -> int | None:
    if "新生儿" in text:
        return 28
    if "满月" in text and not re.search(r"满月.{0,3}(?:后|以后|多)", text):
        return 30
    for m in _INFANT.finditer(text):
        raw, unit = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        number = int(raw) if raw.isdigit() else sum(_CN_NUM.get(ch, 0) for ch in raw)
        if number:
            return number * _DAYS[unit]
    return None


def is_general_question(text: str) -> bool:
    """A knowledge question ("中风有哪些先兆") that describes nobody's present situation."""
    text = _normalise(text)
    return bool(_INFO.search(text)) and not _SITUATION.search(text)


class Triage:
    """Haystack-style component: rules fixed at construction, ``assess(question) -> Safety``."""

    def __init__(self, rules: tuple[_Rule, ...] = RULES, infant_days: int = INFANT_DAYS,
                 model: TriageModel | None = None, embed: Embed | None = None) -> None:
        self.rules = rules
        self.infant_days = infant_days
        self.model = model if embed is not None else None
        self.embed = embed

    def assess(self, question: str) -> Safety:
        text = _normalise(question)
        clauses = _clauses(text)
        general = is_general_question(text)
        signals: dict[str, Level] = {}
        for rule in self.rules:
            if rule.signal in signals or (general and not rule.always):
                continue
            if rule.signal == "infant_fever" and not self._young_infant(text):
                continue
            if rule.always and _JOKE.search(text):
                continue  # "不想活了哈哈 开玩笑的": the writer says it is not meant
            present = not rule.always  # self-harm in the past ("以前想过自杀") still deserves the hotline
            if _found(rule.pattern, clauses, present) and (
                    rule.companion is None or _found(rule.companion, clauses, present_only=False)):
                signals[rule.signal] = rule.level
        if not signals and not general and self._model_alarm(question):
            signals[MODEL_SIGNAL] = "urgent"
        dose = bool(_DOSE.search(text)) and not _PERSONAL_DOSE_EXEMPT.search(text)
        return self._safety(signals, dose)

    def _model_alarm(self, question: str) -> bool:
        if self.model is None or self.embed is None:
            return False
        return self.model.probability(self.embed([question])[0]) >= self.model.threshold

    def _young_infant(self, text: str) -> bool:
        days = _age_days(text)
        return days is not None and days < self.infant_days

    @staticmethod
    def _safety(signals: dict[str, Level], dose: bool) -> Safety:
        level: Level = max(signals.values(), key=LEVELS.index, default="routine")
        advice = []
        if "self_harm" in signals:
            advice.append(ADVICE["self_harm"])
        if set(signals) == {MODEL_SIGNAL}:
            advice.append(ADVICE[MODEL_SIGNAL])
        elif level != "routine":
            advice.append(ADVICE[level])
        if dose:
            advice.append(ADVICE["dose_request"])
        names = (*signals, "dose_request") if dose else tuple(signals)
        return Safety(level=level, signals=names, advice="".join(advice))


_DOSE_AMOUNT = re.compile(r"\d+(?:\.\d+)?\s*(?:mg|毫克|g|克|ml|毫升|片|粒|μg|微克|iu|单位|支|袋|滴)", re.IGNORECASE)


def mentions_dose(sentence: str) -> bool:
    """Whether a sentence states an amount of a medicine (dropped from answers to dose requests)."""
    return bool(_DOSE_AMOUNT.search(unicodedata.normalize("NFKC", sentence)))
