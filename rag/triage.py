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
_CHEST = r"(?:xiong(?:口|部)?|胸口|胸部|胸前|心口|心窝|胸骨后?(?:面)?|前胸|胸)"
_PAIN_MOD = r"(?:很|特别|非常|突然|一阵阵|一直|有点|剧烈|好|老是|揪着|压着|闷着|像)*"
_FIGURATIVE = r"(?<!气得)(?<!气得我)(?<!急得)(?<!急得我)"  # "气得我心口疼": anger, not angina
_CHEST_PAIN = (rf"{_FIGURATIVE}{_CHEST}{_PAIN_MOD}(?:疼|痛|闷|憋|发紧|压榨|不舒服|压了|不得劲)|心绞痛|胸痛|胸闷|"
               r"胸门|chestpain|"
               rf"{_FIGURATIVE}{_CHEST}(?:正中间?|中间|里面|后面)?.{{0,8}}(?:攥|压|揪|绞|勒|闷|憋|堵|紧)(?:住|着|巴巴|绷绷)?(?:一样|似的)?(?:的)?(?:疼|痛)")
_CHEST_COMPANION = (r"大汗|出冷汗|吐|厉害|冒冷汗|一身汗|满头大汗|出汗|放射|左(?:胳膊|臂|肩)|后背|下巴|牙|压榨|濒死|"
                    r"喘不上气|喘不过气|持续|半小时|半个小时|\d+分钟|几十分钟|恶心|脸色发白|脸色苍白|煞白|硝酸甘油|直不起|虚汗|发灰|气短|躺不下")

# A baby in its first weeks: the companion of the neonatal rules.
_NEWBORN = (r"新生儿|出生|生下来|刚生|满月|没满月|(?:\d+|[一二两三四五六七八九十]+)天(?:的|大)?(?:宝宝|娃|孩子|婴儿)?|"
            r"(?:宝宝|娃|孩子)(?:才)?.{0,2}(?:\d+|[一二两三四五六七八九十]+)天")
_TOXIC = r"(?:洗衣凝珠|凝珠|农药|百草枯|敌敌畏|消毒液|84|洗洁精|洁厕灵|老鼠药|漂白水|汽油|除草剂|杀虫剂)"


@dataclass(frozen=True)
class _Rule:
    signal: str
    level: Level
    pattern: re.Pattern[str]
    companion: re.Pattern[str] | None = None
    always: bool = False  # fires even in a general-knowledge question
    unless: re.Pattern[str] | None = None  # anywhere in the text, this says the finding is known and benign


def _rule(signal: str, level: Level, pattern: str, companion: str | None = None, always: bool = False,
          unless: str | None = None) -> _Rule:
    return _Rule(signal, level, re.compile(pattern), re.compile(companion) if companion else None, always,
                 re.compile(unless) if unless else None)


RULES: tuple[_Rule, ...] = (
    _rule("self_harm", "emergency",
          r"(?:想|要|打算|准备|计划|试图|尝试|企图|想要)(?:过)?(?:去)?(?:自杀|轻生|寻死|了结自己|结束(?:自己的)?生命|"
          r"割腕|跳楼|上吊|死了算了)|不想活|活不下去|活着没(?:有)?(?:意思|意义)|(?<!得)(?<!得我)(?<!到)想(?:去)?死(?![你他她我])|撑不下去|不想再活|活够了|"
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
          r"胳膊抬不起来|走路(?:突然)?(?:往一边|歪)|(?:脚|腿)拖着(?:地)?(?:走)?|反应慢半拍|"
          r"(?:左|右|一|半)(?:边|侧)?.{0,4}(?:胳膊|手|腿|脚|脸|身子|身体|肢体).{0,8}(?:麻|没劲|无力|抬不起|动不了|"
          r"不听使唤|耷拉|下垂|不能动)|脸.{0,4}(?:耷拉|歪|垂)下?|口水(?:往外|直)?(?:流|淌)|"
          r"(?:一只眼|左眼|右眼|一边眼睛?|半边)(?:睛)?(?:突然)?.{0,6}(?:看不见|看不清|黑了|失明)|突然.{0,4}(?:一只眼|眼前).{0,6}看不见"),
    _rule("breathing", "emergency",
          r"喘不上气|喘不过气|喘不(?:上|过)来(?:气)?|上不来气|透不过气|呼吸困难|憋得(?:脸|嘴唇)?(?:发紫|发青|青紫)|嘴唇(?:发紫|发青|青紫)|"
          r"窒息|噎住|卡住(?:了)?(?:喉咙|嗓子)|(?:喉咙|嗓子)(?:里)?卡(?:住|了)|呼吸(?:越来越)?(?:急促|微弱)|没(?:有)?呼吸了|"
          r"吸不(?:进|上|动)气|(?:喘|憋)得(?:坐着|躺不下|不能躺|说不出|厉害)|(?:一句)?话(?:都)?说不完整|说不了完整|"
          r"(?:嘴唇|嘴巴|脸)[和、都也指甲嘴唇]*(?:发青|发紫|青紫|乌青|紫了|青了)|肋骨.{0,8}凹|三凹|鼻翼(?:一)?扇|"
          r"(?:喉咙|脖子)像被(?:掐|勒)|(?:哮喘|气喘).{0,12}(?:不管用|没用|喷了.{0,4}(?:不|没))"),
    _rule("heavy_bleeding", "emergency",
          r"大出血|血流不止|止不住(?:血)?|血止不住|大量(?:出血|吐血|咯血|便血)|吐了(?:很多|一大口|好多|一口)?血|呕血|"
          r"喷血|流了(?:很多|好多|一地)血|(?:怀孕|孕妇|孕期).{0,10}(?:出血|流血)|咯血|(?:出|流)了(?:很多|好多|一大摊|不少)(?:的)?血|"
          r"(?:出|流)(?:好多|很多|大量|不少)血|血.{0,6}(?:一直|还在|还是)(?:往外)?(?:冒|流|涌)|血(?:都)?喷|"
          r"(?:血|卫生巾|毛巾|纱布|衣服|床单|裤子|被子).{0,10}(?:湿透|浸透)|(?:按|压)了.{0,8}(?:还|也|都)(?:在|是)?(?:冒|流)血"),
    _rule("unconscious_or_seizure", "emergency",
          r"昏迷|晕倒|昏倒|叫不醒|不省人事|意识不清|没(?:有)?意识|没反应了|昏过去|晕过去|抽搐|抽风|惊厥|"
          r"口吐白沫|癫痫发作|倒地不起|神志不清|抽(?:了|起来|个不停)|(?:两眼|双眼|眼睛)(?:发直|上翻|翻白)|"
          r"(?:手脚|四肢)(?:一直)?(?:抽|抖个不停)|糊里糊涂|认不出(?:人|来|我)|胡言乱语|说胡话|意识模糊|叫不(?:太)?醒"),
    _rule("anaphylaxis", "emergency",
          r"过敏性休克|(?:喉咙|嗓子|喉头)(?:里面?)?(?:发紧|肿|堵)|(?:嘴唇|嘴巴|舌头|脸|眼皮|全身)(?:都|也)?(?:肿|肿起来)",
          r"过敏|吃了|打了|喘|呼吸|头晕|发紧|堵|荨麻疹|风团|疹子|蛰|叮|咬|痒|哑|咳|吐|花生|海鲜|虾|蟹|芒果|打针|输液"),
    _rule("poisoning", "emergency",
          r"误服|误食|误吞|喝了.{0,4}(?:农药|百草枯|敌敌畏|消毒液|84|洗洁精|洁厕灵|酒精|老鼠药)|"
          r"吃了(?:一)?(?:整瓶|一瓶|一把|几十片|一大把|半瓶)|吃了(?:\d{2,}|[2-9]|[两二三四五六七八九十几百]+)片|(?:药|安眠药)(?:一下子)?吃多了|吃错药|一氧化碳|煤气中毒|"
          r"毒蘑菇|中毒|吞了(?:电池|纽扣电池|磁铁)|(?:吞|咽)(?:了|下去?了?).{0,6}(?:电池|磁铁|硬币|别针)|"
          r"(?:电池|磁铁|硬币|别针).{0,6}(?:吞|咽)(?:下去?)?了|(?:药|片).{0,4}吃了(?:好几|十几|几十|一整|一大)?(?:片|粒|瓶|板|盒)|"
          r"吃了(?:好几|十几|几十|一整|一大)(?:片|粒|瓶|板|盒)|烧炭(?!取暖)|"
          r"(?:燃气|煤气)热水器.{0,30}(?:头晕|晕|恶心|想吐|站不稳)|(?:车库|车里).{0,12}(?:空调|发动机|没熄火).{0,30}(?:叫不醒|晕)"),
    _rule("poisoning", "emergency",
          rf"(?:把|喝了|吃了|误喝|喝下|吞了).{{0,12}}{_TOXIC}|{_TOXIC}.{{0,3}}(?:喝|吃|吞)(?:了|下)"),
    _rule("poisoning", "emergency", r"(?:野|采的|捡的)蘑菇", r"吐|拉|晕|不舒服|难受|肚子疼"),
    # Carbon monoxide: a closed room with a flame, and someone dizzy or drowsy (often in another clause).
    _rule("poisoning", "emergency", r"(?:燃气|煤气)热水器|烧炭|炭火|炭盆|门窗(?:都)?(?:紧)?关",
          r"头晕|晕|恶心|想吐|站不稳|叫不醒|头疼|头痛|没力气"),
    _rule("infant_fever", "emergency",
          r"(?:发烧|发热|高烧|低烧|烧到|体温.{0,6}(?:38|39|40)|(?:38|39|40)(?:\.\d)?\s*(?:度|℃)|(?:三十八|三十九|四十)度|"
          r"摸着(?:有点|有些)?烫)", None),
    _rule("venomous_bite", "emergency",
          r"被(?:毒)?蛇咬|毒蛇|蛇咬|遭蛇|蝎子|蜈蚣|毒蜘蛛|(?:咬|蜇).{0,12}牙印.{0,16}(?:麻|肿|抬不起)|眼皮(?:也)?抬不起来"),
    # Below: red flags across the whole range (obstetric, neonatal, metabolic, trauma, environmental, toxic,
    # surgical abdomen, neurological, psychiatric), written from blind case batches in everyday wording.
    _rule("unconscious_or_seizure", "emergency",
          r"(?:叫|喊|拍|推|摇)(?:他|她|也|都)?(?:不|没)(?:醒|应|答应|反应)|叫(?:他|她)?(?:也)?不应|没(?:有)?(?:呼吸|脉搏|心跳)(?![困急不道系科])|没气了|"
          r"摸不(?:到|着)(?:脉|心跳)|不会动了|倒(?:在)?地(?:上)?(?:不动|不起|没反应)|(?:倒地|倒下)(?:就)?不动|"
          r"人事不省|(?:昏|晕)(?:迷|睡)不醒|软(?:趴趴|绵绵)的?.{0,8}(?:不应|不理|没反应|叫不|半睁)|眼睛半睁|"
          r"(?:抽|抽搐).{0,6}(?:十|几|\d+)分钟|抽完.{0,6}(?:没醒|又抽)|一直抽|抽个不停|越来越迷糊|迷迷糊糊|"
          r"(?:人|他|她)(?:都)?(?:糊涂|迷糊)了|昏睡"),
    _rule("choking", "emergency",
          r"(?:卡|噎)(?:住|在)?(?:了)?.{0,10}(?:脸|嘴唇)?.{0,4}(?:紫|青|说不出|发不出|咳不出|喘不)|"
          r"(?:果冻|花生|糖|鱼刺|枣|肉|硬币|玩具|汤圆|年糕|鸡骨头).{0,6}(?:卡|噎)(?:住|在)|"
          r"(?:卡|噎)(?:住|在)?(?:了)?(?:喉咙|嗓子|气管)"),
    _rule("aortic_dissection", "emergency",
          r"(?:撕裂|撕开|撕扯|刀劈|劈开|刀割|刀绞|撕)(?:一样|样|般|似的)?(?:的)?(?:着)?(?:剧)?(?:疼|痛)",
          r"胸|背|腰|血压|肚子"),
    _rule("breathing", "emergency",
          r"粉红色?(?:的)?泡沫(?:样)?痰|只能坐着.{0,6}(?:喘|憋|呼吸)|一躺(?:下)?就憋|(?:喘|呼吸)(?:气)?(?:又深又快|很快很深|特别快)|"
          r"(?:坐|飞机|火车|手术|卧床).{0,20}(?:腿|小腿)(?:肿|疼).{0,20}(?:喘|胸口?(?:痛|疼)|憋)"),
    _rule("heavy_bleeding", "emergency",
          r"吐(?:了)?(?:一大|一|好几)?(?:盆|碗|口|大口|杯)(?:的)?(?:鲜)?(?:红)?(?:的)?血|(?:黑便|柏油|拉血|便血).{0,20}(?:晕|发飘|心慌|冷汗|站不|脸色)|"
          r"(?:刀|玻璃|钢筋).{0,6}(?:捅|扎|刺|插)(?:进|到|伤)|被(?:人)?(?:用刀)?捅"),
    _rule("obstetric", "emergency",
          r"(?:羊水|破水).{0,16}(?:带子|脐带|东西掉|绿|流个不停)|脐带(?:掉|脱)|(?:胎动).{0,8}(?:没|少|不动|感觉不到)|没(?:感觉到|有)胎动|"
          r"(?:生完|产后|顺产|剖腹产|剖宫产|坐月子).{0,20}(?:出血|流血|血).{0,10}(?:多|止不住|湿透|一直|大块)|"
          r"(?:生完|产后|剖宫产|剖腹产).{0,20}(?:喘不|胸痛|抽|昏|头痛得|看不清)|"
          r"(?:怀孕|孕|孕妇|周了|个月了|预产期).{0,24}(?:出血|流血|见红(?!了?(?:一点点|一点儿|一丁点|少许|一些|一点))|头(?:痛|疼|通)得|眼(?:前)?(?:冒金星|发花|花)|看(?:东西)?(?:模糊|不清)|"
          r"肚子.{0,6}(?:硬|剧痛|疼得)|抽(?:搐|风|了)|喘不|破水|羊水)|"
          r"(?:停经|月经推迟|推迟|没来月经|验孕).{0,24}(?:肚子|小腹|下腹).{0,8}(?:剧|疼得|痛得|刀|撕).{0,12}|"
          r"(?:停经|月经推迟|没来月经|怀孕).{0,30}(?:晕倒|昏倒|肛门.{0,4}坠|脸色(?:发白|苍白))"),
    _rule("neonatal", "emergency",
          r"黄得|很黄|特别黄|越来越黄|全身(?:都)?黄|黄疸.{0,6}(?:高|重|越来越)|不吃奶|吃奶没劲|不肯吃奶|哭声(?:很)?弱|摸着(?:冰)?凉|身上(?:摸着)?(?:冰)?凉|"
          r"吐.{0,8}绿|绿色.{0,4}(?:奶|水|吐)|睡不醒|叫不醒|嘴唇?发紫",
          _NEWBORN),
    _rule("paediatric", "emergency",
          r"吐(?:的|出来的)?.{0,6}(?:都是)?(?:是)?(?:绿|黄绿)(?:色)?(?:的)?(?:水|东西|液)?|(?:绿水|胆汁)|果酱(?:一样|样|色)?(?:的)?(?:大便|便)|"
          r"囟门(?:凹|陷)|(?:紫|红|紫红)色?(?:的)?(?:点|斑|疹).{0,10}(?:不褪|不退|压不)|按(?:下去|着|了)?(?:也)?不(?:褪|退)色"),
    _rule("obstetric", "emergency",
          r"出血|流血|见红(?!了?(?:一点点|一点儿|一丁点|少许|一些|一点))|头(?:痛|疼|通)得|眼(?:前)?(?:冒金星|发花|花了)|看(?:东西)?(?:模糊|不清)|肚子.{0,6}(?:硬邦邦|硬|剧痛|疼得)|"
          r"抽(?:搐|风|了)|喘不|破水|羊水(?:破|流)|胎动.{0,6}(?:少|没|不动|感觉不到)|没(?:感觉到|有)胎动",
          r"怀孕|孕妇|孕(?:早|中|晚)期|孕\d+|孕[一二三四五六七八九十]+|(?:\d+|[一二三四五六七八九十]+)周了?|预产期"),
    _rule("obstetric", "emergency", r"带子(?:一样)?|脐带", r"羊水|破水"),
    _rule("aortic_dissection", "emergency", r"(?:两|左右)(?:只|边|个)?(?:胳膊|手臂|上肢|手).{0,6}血压.{0,4}差"),
    _rule("stroke_signs", "emergency", r"讲唔到嘢|讲嘢唔清|半边面歪|面歪咗|揸唔实|嘴(?:巴)?歪咗"),
    _rule("breathing", "emergency", r"喘不(?:上|过)起"),
    _rule("choking", "emergency", r"呛进(?:去|气管)|(?:花生|豆|果冻|糖|瓜子).{0,10}呛", r"咳|喘|响|紫|憋"),
    _rule("heavy_bleeding", "emergency", r"鼻血.{0,12}(?:一个多?钟头|一个多?小时|止不(?:住|主)|半小时|半个钟)|止不主",
          r"鼻|血|华法林|抗凝|发虚|晕"),
    _rule("paediatric", "emergency", r"眼窝(?:都)?凹|(?:尿布|尿不湿).{0,10}(?:干|没尿)|(?:没|无)(?:有)?(?:尿|眼泪)",
          r"蔫|软|没精神|精神差|叫不醒|嗜睡|昏睡|不吃不喝"),
    _rule("paediatric", "emergency", r"像果酱|果酱(?:一样|样|色)"),
    _rule("unconscious_or_seizure", "emergency",
          r"怎么(?:叫|喊|拍|推|摇)(?:他|她)?(?:都|也)(?:不|没)(?:醒|应|动|反应)|抽蓄|一直不醒|还(?:没|不)醒"),
    _rule("alcohol_intoxication", "emergency", r"喝大了?|喝醉|醉酒|喝多了?|喝断片",
          r"呛|咕噜|哼哼|不睁眼|叫不醒|冰凉|昏睡|没反应|呼吸(?:很)?(?:慢|浅)"),
    _rule("hypothermia", "emergency", r"冰窟窿|体温(?:只有|才|降到)?(?:3[0-5]|三十[一二三四五])(?:\.\d)?度"),
    _rule("burns", "emergency", r"(?:强酸|硫酸|盐酸|火碱|烧碱|强碱|石灰|化学品).{0,8}(?:溅|泼|洒|弄)(?:到|在)"),
    _rule("meningitis_sepsis", "emergency", r"压(?:着|了)?(?:都|也)?不(?:褪|退)色|(?:杯子|玻璃杯)压"),
    _rule("self_harm", "emergency", r"吞了(?:一大把|一把|一瓶|一整瓶)|站在.{0,8}(?:栏杆外|楼顶|天台|桥上|窗台)",
          always=True),
    _rule("eye_emergency", "emergency",
          r"(?:药水|通下水道|清洁剂|洗涤剂|洁厕|消毒水).{0,10}(?:溅|进|弄|喷)(?:进|到)?(?:了)?眼|"
          r"(?:眼前|眼睛|看东西).{0,10}(?:黑帘子|帘子|幕布|黑影挡)"),
    _rule("urinary_retention", "emergency", r"(?:\d+|十几|几|好几)个?(?:钟头|小时)没(?:尿|小便)", r"胀|疼|痛|憋|鼓"),
    _rule("other", "emergency",
          r"勃起.{0,8}(?:小时|钟头).{0,6}(?:下不去|不消|不软)|下巴(?:底下)?.{0,4}肿.{0,12}(?:舌头|吞|咽|喘)|"
          r"鱼刺.{0,20}(?:胸口?(?:后面)?(?:痛|疼)|带血)"),
    _rule("breathing", "emergency",
          r"(?:吸气|呼吸).{0,4}胸(?:口)?(?:就)?(?:疼|痛)|咳(?:出来)?(?:的)?(?:带)?(?:血丝|血)",
          r"腿.{0,4}肿|飞机|火车|卧床|手术后|气喘|喘不|气短"),
    _rule("breathing", "emergency", r"嘴唇(?:有点|都|发)?紫|喘气.{0,4}哨音|喉咙里.{0,4}(?:哨音|响声)"),
    _rule("choking", "emergency", r"(?:掉|卡|滑)(?:进|到|在)?(?:了)?(?:喉咙|嗓子|气管)"),
    _rule("heavy_bleeding", "emergency", r"吐(?:了)?.{0,8}血|呕血",
          r"脸(?:色)?(?:白|发白|苍白)|心跳(?:好|很|特别)?快|晕|冷汗|好几口|一大|血块|站不"),
    _rule("meningitis_sepsis", "emergency", r"糊涂话|说胡话|糊涂了|人糊涂|不认人|叫不醒",
          r"发烧|高烧|发热|烧到|40度|39度|四十度"),
    _rule("unconscious_or_seizure", "emergency", r"突然.{0,6}(?:糊涂|不认识|不认人|不认得|神志不清|胡言乱语|说胡话)"),
    _rule("poisoning", "emergency", r"老鼠(?:药|要)|鼠药|耗子药", r"吃|喝|舔|吞|误"),
    _rule("poisoning", "emergency", r"(?:药|药片|药丸).{0,4}当(?:成)?(?:糖|糖豆)|当糖吃"),
    _rule("surgical_abdomen", "emergency", r"松手(?:更|就|后)?(?:疼|痛)|右下边"),
    _rule("surgical_abdomen", "emergency", r"眼睛(?:都|也)?(?:发)?黄|皮肤(?:都|也)?(?:发)?黄",
          r"发烧|高烧|打摆子|寒战|肚子疼|肚儿痛|腹痛|肚子痛"),
    _rule("metabolic", "emergency", r"胰岛素|降糖药|糖尿病|血糖",
          r"心慌手抖|手抖|出冷汗|冒冷汗|说话(?:已经)?不利索|迷糊|糊涂|叫不醒|昏(?:迷|睡|倒)|抽(?!血|筋|烟)|咽不下|说胡话"),
    _rule("anaphylaxis", "emergency", r"风团|荨麻疹|疹子|起红疹|浑身痒|全身痒",
          r"软了|脸色(?:发)?白|声音(?:都)?(?:变|哑)|喘|胸闷|晕|肿|呼吸"),
    _rule("drowning", "emergency", r"呛水|呛了(?:好几口|几口|一口)?水",
          r"捞|老是睡|一直睡|呼吸(?:有点)?(?:快|急)|咳个不停|没精神|嘴唇|昏|不醒"),
    _rule("self_harm", "emergency",
          r"绳子.{0,6}(?:系好|挂好|绑好)|(?:系好|挂好)(?:了)?绳子|(?:从|往).{0,4}(?:楼|阳台|桥|天台|窗).{0,4}跳下去|一起(?:去)?(?:死|跳)",
          always=True),
    _rule("heavy_bleeding", "emergency", r"黑便|柏油|拉血|便血|黑色的大便|(?:大便|便)(?:是)?黑(?:色)?的",
          r"晕|发飘|心慌|冷汗|站不|脸色|眼前发黑|没力气"),
    _rule("head_injury", "emergency",
          r"(?:摔|磕|撞|砸|碰|打)(?:到|了|着|伤|倒)?(?:了)?.{0,8}(?:头|脑袋|后脑勺|脑壳)|头着地",
          r"吐|迷糊|想睡|嗜睡|昏|清水|越来越(?:疼|痛)|说胡话|叫不醒|抽|不认人|颠三倒四|胡言乱语|说话.{0,4}(?:不清|乱)"),
    _rule("poisoning", "emergency", r"(?:偷吃|误吃|误服|偷喝)(?:了)?.{0,10}(?:药|片)"),
    _rule("poisoning", "emergency", r"吃了.{0,10}(?:药|片)", r"(?:十几|几十|一把|好几|一瓶|一板|一整板)(?:片|粒)?"),
    _rule("hypothermia", "emergency", r"冻(?:了|僵|得)|冻了一夜", r"冰冷|冰凉|僵|不醒|迷糊|说胡话|没知觉|一点气"),
    _rule("surgical_abdomen", "emergency", r"右下腹|右下肚|肚脐右下|右边小肚子", r"越来越|发烧|松手|按着|一直|反跳|吐"),
    _rule("meningitis_sepsis", "emergency", r"(?:脖子|颈)(?:子)?.{0,4}(?:硬|僵|发硬|转不动)|紫斑|紫点|瘀斑|花斑",
          r"发烧|高烧|发热|烧|吐|头痛|头疼"),
    _rule("psychiatric", "emergency", r"狂躁|发狂|发疯|砸东西打人|打人", r"砸|打人|拿刀|虫子|吸了|幻|要杀"),
    _rule("urinary_retention", "emergency", r"尿不出|排不出尿|没尿出来", r"胀|疼|憋|鼓|前列腺|遭不住"),
    _rule("other", "emergency", r"透析", r"没透|没做|停了|漏了|心跳|没力气|没劲|喘"),
    # From blind batch G: a weak hand buried in a long message, a nosebleed on warfarin, a sting with
    # breathing trouble, fetal movement "felt no more", a child pale and listless after a fall.
    _rule("stroke_signs", "emergency",
          r"舌头(?:像|好像)?(?:变)?(?:大了|肿大了|不听使唤|发硬)|(?:左|右|一边)手.{0,8}(?:老是|总是|一直)?(?:掉|拿不住|握不住|端不住)"),
    _rule("heavy_bleeding", "emergency",
          r"(?:鼻子|鼻孔)(?:流|出)血.{0,12}(?:快|将近|差不多|有)?(?:一个多?|半个?)(?:钟头|小时)|(?:鼻子|鼻孔)(?:流|出)血.{0,8}止不住",
          r"鼻|血|华法林|抗凝|阿司匹林|发虚|晕|眼花"),
    _rule("anaphylaxis", "emergency", r"(?:被|让).{0,10}(?:蛰|蜇|叮|咬)(?:了|伤)?",
          r"呼吸.{0,4}(?:难受|困难|费劲|不上|不畅)|喘|(?:喉咙|嗓子)(?:发紧|肿|堵)|胸闷|晕"),
    _rule("obstetric", "emergency", r"(?:感觉|摸|觉)不(?:到|着)胎动|胎动(?:也)?(?:没了|停了|都没有)"),
    _rule("aortic_dissection", "emergency",
          r"像(?:被)?(?:撕开|撕裂|劈开|撕)(?:了|一样|似的)?", r"胸|背|腰|血压|肚子|疼|痛"),
    _rule("heavy_bleeding", "emergency",
          r"血流了一地|流了一地(?:的)?血|(?:划|割|砍)(?:开|破)?(?:了)?(?:一个|一道)?(?:大|很深的?)口子",
          r"血|流"),
    _rule("heavy_bleeding", "emergency", r"吐(?:了)?.{0,4}血", r"一口一口|好多|很多|肝硬化|黑红|鲜红|一盆|一碗"),
    _rule("anaphylaxis", "emergency", r"(?:点滴|输液|打针|吊瓶|挂水|头孢|青霉素|造影剂)",
          r"血压(?:突然)?(?:掉|降|低)(?:到)?|喘不|呼吸困难|(?:喉咙|嗓子)(?:发紧|肿)|嘴唇(?:发)?(?:紫|肿)|晕倒|胸闷.{0,8}脸"),
    _rule("poisoning", "emergency", r"采(?:了|的|来的)?.{0,4}蘑菇|(?:山上|路边|林子里).{0,6}蘑菇",
          r"吐|拉|晕|没劲|尿(?:也)?(?:很)?少|肚子疼"),
    _rule("alcohol_intoxication", "emergency", r"喝酒|喝了(?:很多|好多|一斤|半斤)?(?:白)?酒",
          r"呼吸(?:很|特别)?(?:慢|浅)|叫不醒|抽(?!烟)|口吐白沫|嘴唇发紫|没反应"),
    _rule("burns", "emergency",
          r"(?:胸口|肚子|脸|背|全身)(?:和|、)?(?:肚子|胸口|脸|背)?(?:都)?(?:被)?(?:烫|烧)(?:伤)?(?:了)?",
          r"起(?:大)?泡|脱皮|皮(?:都)?(?:掉|脱)|一大片|大面积"),
    _rule("obstetric", "emergency", r"生完|产后|顺产|剖腹产|剖宫产|刚生(?:完|了)",
          r"(?:出|流)血.{0,4}(?:一直|不止|很多|好多|止不住)|一直(?:在)?(?:出|流)血|湿透|浸透|大血块|血块"),
    _rule("surgical_abdomen", "emergency",
          r"(?:上腹|肚子|胃|腹部)(?:部)?.{0,4}(?:疼|痛)得(?:直不起腰|打滚|受不了|满地)",
          r"吐|后背|背|酒|发烧|冷汗"),
    _rule("severe_headache", "emergency",
          r"(?:头|后脑勺|脑袋|脑壳)(?:突然)?.{0,6}(?:炸开|裂开|要炸|要裂)|(?:炸开|裂开)(?:一样|似的)的?(?:疼|痛)"),
    _rule("head_injury", "emergency",
          r"(?:耳朵|鼻子)(?:里)?.{0,4}(?:流|出|渗)(?:出)?(?:来)?.{0,6}(?:清水|血水|淡红色?的?水|黄水)"),
    _rule("eye_emergency", "emergency",
          r"(?:铁屑|铁渣|铁片|玻璃|碎片|铁丝|木刺|石子|火星).{0,6}(?:崩|溅|扎|飞|弹|戳)(?:到|进)(?:了)?(?:眼|眼睛)"),
    _rule("other", "emergency",
          r"(?:心跳|一分钟|每分钟).{0,12}(?:一百[五六七八九]十|一百八|两百|1[5-9]\d|2\d\d)(?:多)?下",
          r"晕|眼前发黑|胸闷|喘|冷汗|心慌"),
    _rule("paediatric", "emergency", r"(?:摔|跌|掉|撞)(?:了|下来|下去|倒|到)",
          r"(?:脸|脸色)(?:越来越)?(?:发白|苍白|煞白)|越来越没精神|懒得理人|叫(?:他|她)?(?:也|都)?不(?:理|应)"),
    _rule("metabolic", "emergency",
          r"烂苹果味|(?:水果|苹果)味.{0,6}(?:呼吸|嘴|气)|(?:呼吸|嘴里|口气|气味).{0,6}(?:水果|苹果|烂苹果)味|血糖(?:仪)?.{0,6}(?:hi|high|测不出|爆表)|"
          r"(?:糖尿病|血糖|胰岛素|降糖).{0,30}(?:迷糊|糊涂|叫不醒|昏|抽(?!血|筋|烟)|说胡话|大汗|出冷汗|手抖.{0,4}冒汗|不认人)|"
          r"(?:打(?:了)?胰岛素|胰岛素打).{0,20}(?:没吃饭|没吃东西|出汗|发抖|心慌)"),
    _rule("head_injury", "emergency",
          r"(?:摔|磕|撞|砸|碰|打)(?:到|了|着|伤)?(?:了)?.{0,8}(?:头|脑袋|后脑勺|脑壳).{0,30}(?:吐|迷糊|想睡|嗜睡|昏|晕|清水|流血水|"
          r"越来越(?:疼|痛)|说胡话|叫不醒|抽|不认人|一边大一边小)|(?:耳朵|鼻子)(?:里)?(?:流|出)(?:清水|血水)"),
    _rule("trauma", "emergency",
          r"(?:从|在).{0,8}(?:楼|脚手架|梯子|树|屋顶|高处|房顶).{0,6}(?:掉|摔|跌|坠)(?:下来|下去|了)|坠楼|高处坠落|车祸|被车撞|"
          r"(?:方向盘|车).{0,6}(?:顶|撞)(?:到|了)?.{0,4}(?:肚子|胸)|(?:手指|手|腿|脚趾|胳膊).{0,6}(?:断了|绞断|切断|压断)|"
          r"(?:腿|脚|下半身).{0,4}没(?:有)?知觉|(?:胸口?|肋骨).{0,10}(?:撞|压).{0,10}(?:喘|呼吸)"),
    _rule("alcohol_intoxication", "emergency",
          r"(?:喝醉|醉酒|喝多|喝(?:了)?(?:大半|一|两|整)?瓶|喝了很多酒|酒喝多).{0,20}(?:不醒|昏睡|叫不应|没反应|冰凉|呼吸(?:很)?(?:慢|浅)|"
          r"吐了一身|抽|口吐白沫|嘴唇发紫|身上凉)"),
    _rule("drowning", "emergency", r"溺水|淹(?:着|到|了|水)|沉(?:下去|到水底)",
          r"捞|救上来|救起来|没(?:有)?(?:呼吸|气|反应)|不醒|吐水|脸发紫|昏|呛|嘴唇|没喘气|沉下去"),
    _rule("drowning", "emergency",
          r"(?:掉|落|跌|栽)(?:进|到|下)?(?:了)?.{0,4}(?:河|湖|水|池|塘|江|海|泳池|井|水缸|鱼塘)里?.{0,20}"
          r"(?:捞|救|拉)(?:上来|出来)|(?:捞|救)(?:上来|出来).{0,12}(?:没(?:有)?(?:呼吸|气|反应)|不醒|吐水|脸发紫)"),
    _rule("electric_shock", "emergency",
          r"触电|被电(?:打|击|到|了)|电(?:到|打)(?:了)?.{0,6}(?:倒|昏|晕|不动|抽)|漏电.{0,12}(?:倒|昏|晕|不动)|雷(?:劈|击)"),
    _rule("heat_stroke", "emergency",
          r"中暑.{0,20}(?:迷糊|昏|糊涂|抽|不出汗|叫不|说胡话|高烧|烫)|(?:高温|太阳底下|烈日|工地|车里|闷热).{0,24}"
          r"(?:晕倒|昏倒|迷糊|糊涂|说胡话|不出汗|抽)"),
    _rule("hypothermia", "emergency",
          r"冻(?:了|僵|得).{0,20}(?:冰冷|冰凉|僵|不醒|迷糊|说胡话|没知觉|一点气)|(?:雪地|冰天|野外|河边).{0,20}(?:冰冷|冻僵|迷糊|说胡话)"),
    _rule("burns", "emergency",
          r"(?:爆炸|火灾|着火|起火).{0,20}(?:烧|烫|熏|呛)|(?:鼻毛|眉毛).{0,4}烧焦|(?:烫|烧)(?:伤)?.{0,12}(?:一大片|大片|大面积)"
          r".{0,12}(?:胸|肚子|脸|背|孩子|宝宝|娃|老人)|(?:胸口|肚子|脸|全身).{0,6}(?:大片|大面积)?(?:烫伤|烧伤)"),
    _rule("burns", "emergency", r"(?:开水|热水|热油|热汤|烫|烧).{0,16}(?:胸口|肚子|脸|背|全身|一大片|大片|大面积)|"
          r"(?:胸口|肚子|脸|背|全身|胳膊).{0,10}(?:一大片|大片|大面积)|(?:浇|泼|洒|溅)(?:在|到)(?:了)?.{0,4}(?:胸口|肚子|脸|背|全身)",
          r"起(?:大)?泡|脱(?:了)?(?:一大片|皮)|掉皮|孩子|宝宝|娃|老人"),
    _rule("surgical_abdomen", "emergency",
          r"(?:肚子|腹部|肚皮).{0,6}(?:硬得像|像木板|板一样|硬邦邦|硬梆梆)|(?:没|不)(?:放屁|排气).{0,12}(?:没|不)(?:拉|排便|大便)|"
          r"(?:两|三|几)天没(?:放屁|排气)|肚子胀得像鼓|(?:右下腹|右下肚|肚脐右下).{0,16}(?:越来越|发烧|松手|按着|一直)|"
          r"(?:蛋蛋|睾丸|阴囊).{0,8}(?:剧痛|突然.{0,4}(?:疼|痛)|肿|疼得)"),
    _rule("surgical_abdomen", "emergency",
          r"(?:一侧|左边|右边|一边)?(?:小肚子|下腹)(?:突然)?.{0,4}(?:剧痛|疼得(?:打滚|受不了|厉害))",
          r"吐|晕|冷汗|卵巢|囊肿|发烧|怀孕|停经"),
    _rule("severe_headache", "emergency",
          r"(?:这辈子|一辈子|从来没有过|从没有过|从来没这么|有生以来)(?:最)?.{0,4}(?:疼|痛|头痛|头疼)|头痛欲裂|"
          r"(?:头|脑壳|脑袋).{0,4}(?:疼|痛|通)得(?:要)?(?:炸|裂)|(?:突然|一下子).{0,4}(?:头|脑壳)(?:疼|痛|通).{0,16}(?:吐|迷糊|脖子(?:发)?(?:硬|僵)|晕|看不清)|"
          r"像(?:被)?(?:锤子|棍子|雷)(?:砸|打|劈)"),
    _rule("meningitis_sepsis", "emergency",
          r"(?:发烧|高烧|发热|烧).{0,20}(?:脖子|颈).{0,4}(?:硬|僵|发硬|转不动)|(?:脖子|颈).{0,4}(?:硬|僵).{0,20}(?:发烧|高烧|发热|吐)|"
          r"(?:发烧|高烧|发热).{0,20}(?:紫斑|紫点|瘀斑|花斑|人糊涂|糊涂|说胡话|精神很差.{0,6}吐)|(?:手脚|皮肤).{0,6}(?:花斑|发花)"),
    _rule("self_harm", "emergency",
          r"(?:要|想|准备)从.{0,6}(?:楼|阳台|桥|天台).{0,4}跳|站在.{0,8}(?:栏杆外|楼顶|天台边|桥上)|(?:吞|吃)了(?:一)?(?:整)?瓶(?:药|安眠药)|"
          r"(?:跟我|和我)?告别|(?:写|留)了?(?:封)?信.{0,8}(?:走了|不见)", always=True),
    _rule("psychiatric", "emergency",
          r"(?:拿|提|握)(?:着)?(?:刀|菜刀|斧头|棍子).{0,12}(?:转|追|砍|要|威胁|吓|守|堵|不让)|(?:有人|别人)要(?:害|杀)(?:他|她|我)|"
          r"(?:孩子|宝宝|娃).{0,6}(?:是魔鬼|是恶魔)|(?:扔掉|掐死|闷死|弄死)(?:孩子|宝宝|娃)|要(?:杀|砍|弄死)(?:人|他|她|我|全家)|"
          r"(?:砸东西|打人).{0,12}(?:虫子|有人|幻|听到|狂躁)|(?:狂躁|发狂|发疯).{0,12}(?:砸|打人|拿刀)"),
    _rule("eye_emergency", "emergency",
          r"(?:石灰|硫酸|盐酸|强酸|强碱|火碱|烧碱|漂白|洁厕|消毒液|化学品|水泥).{0,8}(?:溅|进|弄|喷)(?:到|进)?(?:了)?(?:眼|眼睛)|"
          r"眼(?:睛)?(?:里)?.{0,4}(?:溅|进|弄|喷)(?:进|到|了)*.{0,10}(?:石灰|硫酸|盐酸|强酸|强碱|火碱|烧碱|漂白|洁厕|消毒液|化学品|水泥)|"
          r"(?:看灯|灯).{0,6}(?:彩虹|光圈|虹)|眼(?:睛)?.{0,6}(?:被|让).{0,6}(?:扎|戳|刺)(?:伤|破|了)"),
    _rule("poisoning", "emergency",
          r"(?:偷吃|误吃|吃了|吞了).{0,10}(?:降压药|安眠药|降糖药|奶奶的药|爷爷的药|大人的药|药片).{0,12}(?:十几|几十|一把|好几|一瓶|一板|片)|"
          r"(?:十几|几十|一整板|一瓶|一把)(?:片|粒)?.{0,6}(?:药|安眠药).{0,6}(?:吃|吞)"),
    _rule("other", "emergency",
          r"(?:透析).{0,10}(?:没透|没做|停了).{0,20}(?:没力|心跳|喘|慢)|心跳(?:很|特别|越来越)?慢.{0,10}(?:晕|没力|黑)"),
    _rule("urinary_retention", "emergency",
          r"(?:尿不出(?:来)?|排不出尿|一直没尿出来|(?:一天|半天|一晚上)(?:都)?没尿出来).{0,20}(?:胀|疼|憋|鼓)|(?:小肚子|膀胱).{0,6}(?:胀得|鼓鼓)"),
    # From batch I (training): red flags its everyday wording showed the rules above miss.
    _rule("stroke_signs", "emergency",
          r"说话(?:也|都)?(?:变得?)?(?:不清楚?|含糊|不利索|慢了)|(?:左|右|一|半)(?:边|侧)?(?:手|胳膊).{0,3}(?:左|右|一|半)?(?:边|侧)?(?:脚|腿)"
          r"(?:突然)?(?:发软|发麻|没劲|无力)"),
    _rule("severe_headache", "emergency",
          r"(?:头|脑袋|后脑勺)(?:突然)?(?:剧痛|剧烈(?:地)?(?:疼|痛))", r"突然|吐|犯困|说话|迷糊|脖子|用力"),
    _rule("heavy_bleeding", "emergency",
          r"(?:一|每|1|半)(?:个)?小时.{0,4}(?:就)?(?:湿透|浸透|换)(?:一|两|2|1)?(?:片|个|张)?|湿透.{0,4}(?:夜用|卫生巾|护垫)",
          r"发黑|头晕|晕|心慌|脸色|站不住|站起来|没力气|好几个小时|[五六七八九十几]个小时"),
    _rule("poisoning", "emergency",
          r"(?:吞|咽|吃)(?:了|下去?了?).{0,8}(?:磁力珠|磁珠|巴克球|磁铁|电池|纽扣)|(?:咬破|吃了|吞了|舔了).{0,6}(?:洗衣凝珠|凝珠|洗衣球)|"
          r"(?:洗衣凝珠|凝珠).{0,6}(?:咬破|吃|吞|进嘴|嘴里)"),
    _rule("poisoning", "emergency", rf"(?:打|喷|撒|配|兑)(?:了)?.{{0,4}}{_TOXIC}",
          r"流口水|口水|瞳孔|肉(?:在)?跳|抽|出汗|吐|晕|拉肚子|喘"),
    _rule("breathing", "emergency",
          r"呼吸(?:很|特别|越来越|变得)?(?:慢|弱|浅)|一分钟(?:才|就)?(?:喘|呼吸)?(?:几|两|三|四|五)下|(?:突然|会|老是)?(?<!一下)(?<!一会)(?<!几秒)不喘气|不呼吸|呼吸(?:暂停|停了|停止)|"
          r"嘴唇(?:有点|有些|都|也|发)*(?:青|紫)"),
    _rule("unconscious_or_seizure", "emergency",
          r"(?:掐|叫|拍|摇|喊)(?:他|她|了)?(?:都|也)?没(?:有)?(?:反应|动静)|(?:叫|喊)(?:他|她)?(?:也|都)?(?:不太|爱答不)理|爱答不理"),
    _rule("hypothermia", "emergency", r"失温|不(?:哆嗦|发抖)了", r"冷|冻|山|雪|水|犯困|迷糊|叫|失温"),
    _rule("infant_fever", "emergency", r"(?:肛温|腋温|耳温|额温|体温|温度)(?:计)?.{0,3}(?:3[89]|4[01])(?:\.\d)?", None),
    _rule("surgical_abdomen", "emergency",
          r"(?:肚子|腹部?|上腹|下腹)(?:突然)?.{0,3}(?:发硬|硬得|剧痛|剧烈(?:地)?(?:疼|痛)|像刀割|刀割(?:一样|样|似的)|(?:疼|痛)得(?:要命|受不了))",
          r"突然|出汗|吐|房颤|发硬|一动|不敢动|溃疡"),
    _rule("surgical_abdomen", "emergency", r"(?:推|按|塞|揉)不回去|回不去了", r"疝|鼓|包|发紫|疼|吐"),
    _rule("surgical_abdomen", "emergency", r"(?:蛋蛋|睾丸|阴囊|蛋)(?:突然)?.{0,4}(?:疼|痛|肿)",
          r"突然|半夜|吐|肿|一边|儿子|孩子|岁|男孩"),
    _rule("meningitis_sepsis", "emergency", r"化疗|放化疗|白细胞(?:很|特别|非常)?低|粒细胞(?:很|特别)?低",
          r"发烧|发热|高烧|烧到|3[89](?:\.\d)?|寒战|打摆子"),
    _rule("metabolic", "emergency",
          r"血糖.{0,4}(?:[3-9]\d|2[5-9])(?:\.\d)?(?!\d)|尿酮|酮体|酮症",
          r"昏|沉|反应(?:很|特别)?慢|迷糊|犯困|吐|喘|要水|口渴|肚子疼"),
    _rule("self_harm", "emergency",
          r"(?:以后|从此|今后)?(?:别|不要|不用)(?:再)?(?:想|找)我|卡号.{0,4}密码.{0,8}(?:在|放)|"
          r"(?:照顾好|替我照顾).{0,12}(?:电话|手机)(?:就|也)?(?:打不通|关机|没人接)", always=True),
    _rule("eye_emergency", "emergency",
          r"黑幕|幕布|(?:眼前|视野).{0,6}(?:一块黑|黑影|被挡|挡住)|闪光.{0,12}飞蚊|飞蚊.{0,10}(?:突然|一下子)(?:多|增多)"),
    _rule("other", "emergency",
          r"(?:屁股|肛门|会阴|裆部|大腿内侧)(?:周围|一圈)?.{0,3}(?:发麻|麻木|没(?:有)?知觉|没感觉)", r"腰|腿|失禁|尿"),
    _rule("other", "emergency", r"(?:大小便|小便|尿|大便)(?:也|都)?(?:突然)?失禁",
          r"两(?:条)?腿.{0,4}(?:没力气|没劲|无力|发软|麻)"),
    _rule("other", "emergency", r"软不下来|消不下去|下不去|"
          r"(?:勃起|硬了|硬着).{0,6}(?:[4-9]|[四五六七八九十几])(?:个)?多?(?:个)?(?:小时|钟头)",
          r"伟哥|勃起|阴茎|硬了|硬着|万艾可|西地那非"),
    # From batch K (training): lay descriptions the rules above missed.
    _rule("burns", "emergency",
          r"(?:热粥|热汤|热水|开水|滚水|热油|滚油|热茶|热奶|火锅|汤|粥).{0,10}(?:扣|泼|浇|洒|倒|溅|烫)(?:在|到)(?:了)?.{0,4}"
          r"(?:脸|脖子|胸口|肚子|背|头|全身)|tangshang|(?:整条|整个|整只|一整条)(?:腿|胳膊|手臂|后背|背|手|脚)",
          r"起(?:了)?(?:好几个|好多|大)?泡|水泡|脱皮|掉皮|宝宝|孩子|娃|岁|老人|烫|烧|热油"),
    _rule("head_injury", "emergency",
          r"(?:从|在).{0,6}(?:沙发|床|桌子|椅子|楼梯|推车|床上).{0,4}(?:掉|摔|跌|滚)(?:了|到|在|下)?|(?:掉|摔|跌)(?:到|在)?地(?:板)?上",
          r"蔫|不吃奶|不肯吃|没精神|一直睡|睡不醒|软软的|鼓了?(?:个|一个)?.{0,4}包|吐了|吐奶|哭不出|哼哼"),
    _rule("poisoning", "emergency",
          r"(?:纽扣电池|电池|磁铁|磁珠|磁力珠).{0,12}(?:少了|不见了|找不到|没找到|会不会吞|是不是吞|可能吞)|"
          r"(?:泡|发)(?:了)?(?:很久|好几天|[两三四五几]天|一夜|一晚上|隔夜)的?(?:木耳|银耳)|酵米面|臭米面"),
    _rule("self_harm", "emergency",
          r"划(?:得)?(?:很深|好深|特别深)|(?:下次|下回)(?:就)?(?:划|割|跳|吃)|划(?:自己的?)?(?:脖子|手腕)|"
          r"(?:消失|死了|不在了)(?:了)?(?:是不是)?(?:就|会|比较|更)好|"
          r"(?:手里|手上|枕头下|抽屉里|包里).{0,4}(?:有|藏|攒)(?:了)?.{0,6}(?:安眠药|安定|艾司唑仑)|"
          r"(?:绳子|刀片|安眠药|木炭|炭).{0,4}(?:都|也)?(?:准备|买|备)好了|死了算了", always=True),
    _rule("urinary_retention", "emergency", r"niao ?bu ?chu|(?:[一二两三四五六七八九十]+)个?(?:钟头|小时)没(?:尿|小便)",
          r"胀|疼|痛|憋|鼓"),
    _rule("breathing", "emergency",
          r"(?:一个字一个字|一字一字|几个字几个字)|(?:万托林|沙丁胺醇|舒利迭|信必可|喷雾|气雾剂|喷剂|吸入剂).{0,10}(?:不管用|没用|不顶用|不见效|没效果)|"
          r"血氧(?:饱和度)?.{0,8}(?<!\d)(?:[5-8]\d)(?!\d)|喘不动"),
    _rule("chest_pain", "emergency",
          rf"{_CHEST}(?:那儿|那里|那块|这儿|这块|那|里)?.{{0,2}}(?:像)?(?:压了|压着|堵着|不得劲|不对劲|难受)|心里(?:难受|不舒服|发慌|堵得慌)",
          r"(?:出|冒)(?:了)?(?:一脑门子?|一头|一身|满头)?(?:的)?(?:虚|冷|大)?汗|(?:一|满)(?:脑门子?|头|身)(?:的)?汗|大汗|恶心|吐"),
    _rule("eye_emergency", "emergency",
          r"彩色的?圈|彩虹圈|虹视|眼(?:睛)?.{0,4}(?:胀痛|胀得疼|胀得厉害|剧痛).{0,20}(?:吐|恶心|头疼|头痛)"),
    _rule("heavy_bleeding", "emergency",
          r"(?:一直|不停|还在|止不住)(?:地)?(?:流|出|渗|冒)血|咬(?:着)?棉球(?:也|都)?(?:不行|没用)",
          r"阿司匹林|氯吡格雷|华法林|利伐沙班|达比加群|抗凝|波立维|肝素|半碗|一碗|好多|很多"),
    _rule("metabolic", "emergency", r"利尿|呋塞米|速尿|氢氯噻嗪|低钾",
          r"(?:腿|手|胳膊).{0,6}(?:抬不起|没劲|动不了|软了|瘫)"),
    _rule("severe_headache", "emergency", r"头(?:突然|猛地|一下子)?(?:一炸|炸了一下|嗡的一下炸)"),
    _rule("trauma", "emergency", r"(?:腿|脚).{0,6}(?:往外撇|外翻|外旋|变短|短了一截|短了)", r"摔|跌|滑|站不起|疼|痛"),
    _rule("unconscious_or_seizure", "emergency",
          r"(?:突然|一下子)?倒(?:下|地)(?:了)?.{0,6}(?:没反应|不动|叫不醒)|好像?没(?:在)?喘气|(?:叫|喊|推|拍|摇)(?:他|她)?(?:也|都)(?:不|没)醒|"
          r"叫不起来", r"老人|推|呼噜|打鼾|不醒|没反应|喘气"),
    _rule("venomous_bite", "emergency", r"竹叶青|五步蛇|眼镜蛇|银环蛇|金环蛇|蝮蛇|烙铁头|土公蛇|七寸子|毒蛇"),
    _rule("obstetric", "emergency",
          r"(?:做完|刚做|做了)(?:人流|流产|清宫|刮宫|引产)|(?:人流|流产|清宫|刮宫|引产)(?:后|以后|第)",
          r"发烧|发热|高烧|烧到|寒战|打摆子|臭"),
    _rule("surgical_abdomen", "emergency", r"(?:肚子|腹)(?:疼|痛)得?(?:要命|受不了|厉害)",
          r"越来越(?:重|疼|痛|厉害)|(?:[四五六七八九十]|[4-9]|\d\d)个(?:多)?(?:小时|钟头)"),
    _rule("urgent_care", "urgent",
          r"(?:画|圈).{0,10}(?:超出|扩大)|(?:包|疖子|脓包).{0,10}越来越大|一跳一跳(?:地|的)?疼|"
          r"要(?:不要)?缝|需要缝|(?:流浪|野)(?:猫|狗).{0,6}(?:抓|咬)|"
          r"骨头.{0,4}一按就疼|踩(?:实|地)(?:了)?.{0,2}疼|哮喘.{0,6}加重"),
    _rule("urgent_care", "urgent", r"(?:脚趾|脚|足).{0,6}(?:发黑|变黑|黑了|烂了|溃烂|流脓)", r"糖尿病|血糖"),
    # Same-day cases whose parts sit in different clauses ("小腿上红肿 越来越大").
    _rule("urgent_care", "urgent", r"红肿|发红|红了一片", r"越来越大|扩大|蔓延|超出"),
    _rule("urgent_care", "urgent", r"(?:左下腹|右下腹|下腹|小肚子|一侧).{0,8}(?:疼|痛)",
          r"两条杠|阳性|验孕|停经|月经推迟|推迟"),
    _rule("urgent_care", "urgent", r"(?:塞|卡)(?:进|到)(?:了)?(?:鼻孔|鼻子|耳朵)", r"掏不出|拿不出|弄不出|出不来"),
    _rule("urgent_care", "urgent", r"(?:吃|用)了?(?:两|几|好几|\d)次(?:药)?(?:都|也)?(?:不管用|没用)", r"疼|痛"),
    _rule("urgent_care", "urgent", r"(?:脸|皮肤|眼白|眼睛|胸口|身上|全身)(?:和.{0,3})?(?:有点|发|有些)?黄",
          _NEWBORN, unless=r"生理性|正常范围|数值正常"),

    _rule("urgent_care", "urgent", r"(?:胯骨|髋|大腿根).{0,4}(?:疼|痛)", r"摔|滑|跌|坐地上|坐到地上"),
    _rule("severe_pain", "urgent",
          r"(?:剧烈|撕裂样?|刀割样?)(?:的)?(?:头痛|头疼|腹痛|肚子疼|肚子痛)|(?:头|肚子|腹部)(?:疼|痛)得(?:受不了|打滚|厉害|要命)|"
          r"从来没有过的头痛|这辈子最(?:疼|痛)|没这么(?:疼|痛)过|(?:疼|痛)得(?:要炸|直不起腰|满地打滚|打滚|直哭|冒冷汗|说不出话)|"
          r"撕裂(?:一样|样|般)?的?(?:疼|痛)|(?:肚子|腹部)(?:硬邦邦|发硬|板硬)|(?:蛋蛋|睾丸|阴囊).{0,6}(?:疼|痛)|"
          r"(?:右下腹|肚子).{0,12}越来越(?:疼|痛|厉害)"),
    # Urgent (today, not an ambulance), from batch I's wording.
    _rule("urgent_care", "urgent",
          r"(?:要|需要|得)不?(?:要)?缝针|口子.{0,6}(?:很深|挺深|有点深|翻开|张开)|能看到里面|"
          r"(?:狗|猫|老鼠|蝙蝠)(?:给)?咬(?:破|伤|了)|狂犬(?:疫苗)?(?:还)?没打|破伤风(?:针|疫苗)?.{0,6}没打|(?:生锈|锈)的?(?:铁钉|钉子)|"
          r"(?:不能|没法|走不了|不敢)(?:着地|走路|踩地)|一踩(?:地)?就疼|肿得(?:老高|厉害|像)|(?:看着|有点|明显)(?:歪|变形)|"
          r"隐形眼镜.{0,12}(?:红|疼|痛|怕光)|(?:耳朵|左耳|右耳|一只耳朵).{0,6}突然.{0,4}(?:听不见|听不到)|突然.{0,4}(?:耳朵)?(?:听不见|听不到)了|"
          r"inr.{0,4}(?:[4-9]|\d{2})|血糖.{0,4}(?:1[6-9]|2[0-4])(?:\.\d)?(?!\d)|"
          r"(?:怀孕|孕)\d{1,2}周.{0,20}(?:1[4-9]\d|2\d\d)/(?:9\d|1\d\d)|(?:1[89]\d|2\d\d)/(?:1[1-9]\d)|"
          r"(?:腰|后背).{0,4}(?:疼|痛).{0,20}(?:发烧|3[89](?:\.\d)?)|(?:发烧|发绕|3[89](?:\.\d)?度?).{0,12}(?:第?[三四五3-5]天)|"
          r"喝(?:口)?水都吐|半边脸.{0,4}肿|(?:水泡|疱疹).{0,12}(?:眼睛|额头)|(?:眼睛|额头).{0,12}(?:水泡|疱疹)|痰里(?:有|带)血|"
          r"(?:不肯|不能|不敢)动(?:那只|这只)?(?:手|胳膊)|一天(?:拉|泻)?(?:十几|[七八九十]|\d{2})次"),
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
                           r"无缘无故|没想到|没多久|没精神|没眼泪|没反应|没劲|没力气|不下来|不下去")
_NEG_WINDOW = 6
# Clauses about the past, a hypothetical, or something already over describe no present emergency.
_NOT_NOW = re.compile(r"当年|那时候|那会儿|生我的时候|防止|预防|避免|以防|差点|差一点|险些|还好没|"
                      r"以前|去年|前年|上个?月|上次|小时候|年前|曾经|(?<![没未])有过|过一次|治好了?|打完了|康复|"
                      r"上(?:个)?(?:周|礼拜|星期)|出院|那次|上回|治了.{0,3}(?:个月|周|年)|恢复了|过去(?:了)?.{0,4}(?:个月|年)|"
                      r"医生说(?:是|这是|可能是)|诊断(?:为|是|出)|确诊(?:为|是|了)|"
                      r"的话|如果|万一|假如|假设|要是|^会(?:不会)?.{0,6}吗$|前(?:几|两|些)年|多年前|(?:怎么|如何|咋)防|"
                      r"^(?:我)?(?:很|好|就|总)?(?:怕|担心|害怕)")
_RESOLVED = re.compile(r"好好的|正常了|就下去了|不(?:痛|疼)了|没事了|退了|烧退|就好了|已经好了|现在好了|"
                       r"止住了|止血了|缓过来")
_HEARSAY = re.compile(r"说|以为|觉得|应该|估计|可能|捂")
# "哭一会就好了，后来一直说肚子疼": what was over came back; the earlier clause counts again.
_RELAPSE = re.compile(r"^(?:后来|现在|接着|过了一会|随后|又|可|没想到)")
# Figures of speech about being tired, amused or hungry ("笑得我喘不过气", "困得要晕过去") describe no illness.
_FIGURE = re.compile(r"气得|笑得|唠叨得|吵得|烦得|闹得|哈哈|困得|累得|饿得|馋得|热得我|段子|"
                     r"(?:作业|工作|压力|生活|房贷|学习|考试|加班|老板|事情)(?:压|逼)得")
# "以前想过轻生 住过院 现在好多了": the writer says the past episode is over.
_PAST_AND_OVER = re.compile(r"(?:以前|曾经|去年|前年|年前|小时候|那时候|当年).{0,20}"
                            r"(?:现在|如今|目前)(?:已经)?(?:好多了|好了|稳定|没事|康复)")
_VET = re.compile(r"兽医|宠物医院")  # "我们家狗被蛇咬了 找人医还是兽医": the patient is an animal
_JOKE = re.compile(r"开玩笑|开个玩笑|说着玩|玩笑话")
# Pets are not patients of a human triage ("我家猫被蜜蜂蛰了").
_FICTION = re.compile(r"(?:我家|我们家|家里的|家的)(?:的)?(?:猫|狗)|宠物|狗狗|猫咪|上了新闻|"
                      r"新闻上|纪录片|新闻说|看到新闻|听说有人|"
                      r"电视剧|电影|小说|剧情|剧里|新闻里|书里|游戏里|演员|角色|明星|网红|主播|博主")
_CLAUSE = re.compile(r"[，。！？；,!?;：:\n]|\s+|(?<!\d)\.|\.(?!\d)|但是|可是|但|却|而且|然后|结果")
_INFO = re.compile(r"有哪些|有什么|是什么|什么是|怎么预防|如何预防|怎样预防|的原因|的症状|的表现|早期症状|的区别|"
                   r"怎么急救|如何急救|急救方法|急救(?:时|要不要|该|的时候|步骤)|急救措施|常见吗|能治好吗|诊断标准|科普|了解一下|先兆|征兆|"
                   r"会不会引起|会引起|咋区分|区别是|为啥会|为什么有的人|的人为什么|是啥感觉|啥感觉|想(?:提前)?了解|怎么区分|如何区分|有必要|安全吗|多久能|怎么判断|如何判断|怎么识别|如何识别|是指|为什么会|是做什么的|是干什么的|电视剧|电影|小说|培训|教案|考试|胸痛中心")
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
    # Latin words keep together ("chest pain半小时了"): spaces elsewhere separate clauses.
    return re.sub(r"(?<=[a-z]) (?=[a-z])", "", unicodedata.normalize("NFKC", text).lower())


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
        if _FICTION.search(clause) or _FIGURE.search(clause) or (present_only and _not_now(clauses, i)):
            continue
        if any(not _negated(clause, m.start()) for m in pattern.finditer(clause)):
            return True
    return False


def _not_now(clauses: list[str], i: int) -> bool:
    if _NOT_NOW.search(clauses[i]):
        return True
    # "婆婆说捂捂汗就好了": someone's claim that it will pass is no sign that it has.
    if not any(_RESOLVED.search(c) and not _HEARSAY.search(c) for c in clauses[i : i + 2]):
        return False
    return not any(_RELAPSE.search(c) and not _RESOLVED.search(c) for c in clauses[i + 1 : i + 4])


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
        if _VET.search(text):
            return self._safety({}, dose=False)
        signals: dict[str, Level] = {}
        history: set[str] = set()  # always-rules seen only in the past or a hypothetical
        for rule in self.rules:
            if rule.signal in signals or (general and not rule.always):
                continue
            if rule.signal == "infant_fever" and not self._young_infant(text):
                continue
            if rule.always and _JOKE.search(text):
                continue  # "不想活了哈哈 开玩笑的": the writer says it is not meant
            if rule.companion is not None and not _found(rule.companion, clauses, present_only=False):
                continue
            if rule.unless is not None and rule.unless.search(text):
                continue
            if _found(rule.pattern, clauses, present_only=True):
                signals[rule.signal] = rule.level
            elif rule.always and _found(rule.pattern, clauses, present_only=False):
                # Self-harm in the past still deserves the hotline; only a past one now over is not an emergency.
                history.add(rule.signal)
        for signal in history - set(signals):
            signals[signal] = "routine" if _PAST_AND_OVER.search(text) else "emergency"
        if not general and "emergency" not in signals.values():
            self._add_model_alarm(question, signals)
        dose = bool(_DOSE.search(text)) and not _PERSONAL_DOSE_EXEMPT.search(text)
        return self._safety(signals, dose)

    def _add_model_alarm(self, question: str, signals: dict[str, Level]) -> None:
        """The learned backstop: a new alarm where the rules saw none, or `urgent` lifted to `emergency`."""
        if self.model is None or self.embed is None:
            return
        level = self.model.level(self.embed([question])[0])
        if level == "emergency" or (level == "urgent" and not signals):
            signals[MODEL_SIGNAL] = level  # type: ignore[assignment]

    def _young_infant(self, text: str) -> bool:
        days = _age_days(text)
        return days is not None and days < self.infant_days

    @staticmethod
    def _safety(signals: dict[str, Level], dose: bool) -> Safety:
        level: Level = max(signals.values(), key=LEVELS.index, default="routine")
        advice = []
        if "self_harm" in signals:
            advice.append(ADVICE["self_harm"])
        if set(signals) == {MODEL_SIGNAL} and level == "urgent":
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
