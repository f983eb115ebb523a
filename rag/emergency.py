"""Emergency answers about the emergency: when triage raises a red flag, the answer body comes from the
first-aid or condition documents for the signals it raised, not from whatever the words happened to match.

"我爸突然说不出话，一边手脚没劲" matches ADHD passages on words ("说话", "没劲"); the stroke document, with its
"中风120" signs and "立即拨打120，记住发病时间", is what the family needs while the ambulance comes. The
registry maps each triage signal to the documents that say what to recognise and what to do now. A corpus
without them (a clinic's own documents) is searched instead with the signal's words (SEARCH): "胸口压着疼"
shares no word with "胸骨后压榨性疼痛", but "胸痛 心肌梗死" does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rag.types import Hit, Passage

GUIDE = "guide"  # the score key of a guide document's hit: the answer body of an emergency comes from these

# Triage signal -> the documents that answer it, the most specific first.
GUIDES: dict[str, tuple[str, ...]] = {
    "self_harm": ("mental-health-suicide-risk-crisis-help",),
    "chest_pain": ("cardiovascular-acute-myocardial-infarction", "symptoms-chest-pain", "cardiovascular-angina"),
    "aortic_dissection": ("cardiovascular-aortic-dissection",),
    "stroke_signs": ("nervous-ischemic-stroke", "nervous-intracerebral-hemorrhage",
                     "nervous-transient-ischemic-attack"),
    "breathing": ("symptoms-dyspnea", "first-aid-heimlich-maneuver", "respiratory-asthma",
                  "respiratory-pulmonary-embolism"),
    "choking": ("first-aid-heimlich-maneuver", "childrens-health-airway-foreign-body-prevention"),
    "heavy_bleeding": ("first-aid-bleeding-bandaging", "digestive-upper-gi-bleeding", "symptoms-hemoptysis"),
    "unconscious_or_seizure": ("first-aid-cpr", "nervous-epilepsy", "childrens-health-febrile-seizure"),
    "anaphylaxis": ("first-aid-anaphylaxis",),
    "poisoning": ("first-aid-drug-pesticide-poisoning", "first-aid-carbon-monoxide-poisoning",
                  "first-aid-food-poisoning"),
    "alcohol_intoxication": ("mental-health-alcohol-use-disorder", "first-aid-drug-pesticide-poisoning"),
    "infant_fever": ("childrens-health-fever-home-care", "symptoms-fever"),
    "neonatal": ("childrens-health-neonatal-jaundice", "childrens-health-fever-home-care"),
    "paediatric": ("childrens-health-intussusception", "childrens-health-infant-diarrhea",
                   "childrens-health-fever-home-care"),
    "venomous_bite": ("first-aid-snake-bee-stings",),
    "drowning": ("first-aid-drowning", "first-aid-cpr"),
    "electric_shock": ("first-aid-electric-shock", "first-aid-cpr"),
    "heat_stroke": ("first-aid-heatstroke",),
    "burns": ("first-aid-burns-scalds",),
    "bites_or_burns": ("first-aid-burns-scalds", "infectious-rabies-animal-bites",
                       "musculoskeletal-fracture-recognition"),
    "metabolic": ("endocrine-hypoglycemia", "endocrine-type-1-diabetes", "endocrine-type-2-diabetes"),
    "obstetric": ("womens-health-ectopic-pregnancy", "womens-health-hypertensive-disorders-pregnancy",
                  "womens-health-threatened-miscarriage", "womens-health-postpartum-recovery",
                  "womens-health-prenatal-care"),
    "surgical_abdomen": ("digestive-acute-appendicitis", "childrens-health-intussusception",
                         "digestive-acute-pancreatitis", "symptoms-abdominal-pain"),
    "severe_headache": ("nervous-intracerebral-hemorrhage", "symptoms-headache"),
    "head_injury": ("nervous-concussion", "nervous-intracerebral-hemorrhage"),
    "trauma": ("first-aid-bleeding-bandaging", "musculoskeletal-fracture-recognition"),
    "severe_pain": ("symptoms-abdominal-pain", "symptoms-headache"),
    "dehydration_or_blood": ("digestive-upper-gi-bleeding", "childrens-health-infant-diarrhea",
                             "symptoms-hematochezia-melena"),
    "high_fever": ("symptoms-fever", "childrens-health-fever-home-care"),
    "psychiatric": ("mental-health-schizophrenia", "mental-health-suicide-risk-crisis-help"),
}
# Triage signal -> the words its guidance is written in, searched for when no GUIDES document is indexed.
SEARCH: dict[str, str] = {
    "self_harm": "自杀 自伤 危机干预 心理援助热线", "chest_pain": "胸痛 心肌梗死 胸闷 大汗 急救 拨打120",
    "aortic_dissection": "主动脉夹层 撕裂样胸背痛", "stroke_signs": "脑卒中 中风 口角歪斜 肢体无力 言语不清 拨打120",
    "breathing": "呼吸困难 喘不上气 急救", "choking": "气道异物 海姆立克 窒息",
    "heavy_bleeding": "大出血 止血 压迫 包扎", "unconscious_or_seizure": "意识丧失 昏迷 抽搐 心肺复苏",
    "anaphylaxis": "严重过敏反应 过敏性休克 肾上腺素", "poisoning": "中毒 急救 催吐 洗胃",
    "alcohol_intoxication": "酒精中毒 醉酒 昏睡 呕吐", "infant_fever": "婴儿 发热 小月龄 就医",
    "neonatal": "新生儿 黄疸 拒奶 就医", "paediatric": "儿童 急症 就医", "venomous_bite": "毒蛇咬伤 蜂蜇伤 急救",
    "drowning": "溺水 心肺复苏 急救", "electric_shock": "触电 电击伤 切断电源 心肺复苏",
    "heat_stroke": "中暑 热射病 降温", "burns": "烧伤 烫伤 冷水冲洗", "bites_or_burns": "咬伤 烧伤 骨折",
    "metabolic": "低血糖 糖尿病酮症酸中毒 血糖", "obstetric": "孕妇 阴道出血 腹痛 宫外孕 先兆流产",
    "surgical_abdomen": "急腹症 剧烈腹痛 阑尾炎 肠梗阻", "severe_headache": "剧烈头痛 脑出血 蛛网膜下腔出血",
    "head_injury": "头部外伤 脑震荡 颅内出血", "trauma": "外伤 骨折 出血 急救", "severe_pain": "剧烈疼痛 就医",
    "dehydration_or_blood": "脱水 便血 呕血", "high_fever": "高热 退热 就医", "psychiatric": "精神病 幻觉 躁狂 急诊",
}
# Signals that many emergencies raise on the way; they yield to a specific one raised with them.
GENERIC = frozenset({"breathing", "unconscious_or_seizure", "heavy_bleeding", "severe_pain", "high_fever",
                     "dehydration_or_blood", "other"})
# The sections that say what to recognise and do now, in the order a reader needs them.
SECTIONS = ("现场处理", "识别", "何时就医", "症状", "自我观察与处理", "注意事项", "治疗")


class EmergencyGuide:
    """Passages of the guide documents for a set of triage signals, best matching document first.

    Configured once with the index's passages; ``run(signals, query, k)`` returns Hits. Among a signal's
    documents the one sharing most words with the question leads (a fit in a bath is epilepsy, not CPR),
    and within a document the first-aid sections come first."""

    def __init__(self, passages: Sequence[Passage], tokenize: Callable[[str], list[str]],
                 guides: dict[str, tuple[str, ...]] = GUIDES) -> None:
        self.tokenize = tokenize
        self.guides = guides
        self.by_doc: dict[str, list[Passage]] = {}
        for passage in passages:
            self.by_doc.setdefault(passage.doc_id, []).append(passage)

    def documents(self, signals: Sequence[str], query: str = "") -> list[str]:
        """Guide documents, the specific signals' first: a collapse after an electric shock is about the shock,
        though "倒地不动" also raised the generic unconsciousness signal. Within one signal, the document that
        shares clearly more words with the question leads (carbon monoxide, not pesticide, for a gas heater)."""
        words = set(self.tokenize(query)) if query else set()
        docs: list[str] = []
        for signal in sorted(signals, key=lambda s: s in GENERIC):
            own = [d for d in self.guides.get(signal, ()) if d in self.by_doc]
            if own:  # the registry's first document leads unless another matches the question clearly better
                best = max(own, key=lambda d: self._match(d, words))
                if self._match(best, words) - self._match(own[0], words) >= 0.25:
                    own = [best, *(d for d in own if d != best)]
            docs.extend(own)
        return list(dict.fromkeys(docs))

    def _match(self, doc: str, words: set[str]) -> float:
        if not words:
            return 0.0
        text = " ".join(p.title + p.text for p in self.by_doc[doc])
        return len(words & set(self.tokenize(text))) / len(words)

    @staticmethod
    def search_text(signals: Sequence[str]) -> str:
        """What to search a corpus without the guide documents for: the specific signals' words first."""
        ordered = sorted(signals, key=lambda s: s in GENERIC)
        return " ".join(SEARCH[s] for s in ordered[:2] if s in SEARCH)

    def run(self, signals: Sequence[str], query: str, k: int) -> list[Hit]:
        docs = self.documents(signals, query)
        chosen = [p for doc in docs[:2] for p in sorted(self.by_doc[doc], key=self._section_rank)]
        return [Hit(p, 1.0 - i / max(1, k), i + 1, {GUIDE: 1.0}) for i, p in enumerate(chosen[:k])]

    @staticmethod
    def _section_rank(passage: Passage) -> int:
        text = passage.text
        section = passage.metadata.get("section")
        ranks = [i for i, name in enumerate(SECTIONS) if f"【{name}】" in text or section == name]
        return min(ranks, default=len(SECTIONS))
