"""CrossWOZ data for the retrieval benchmark: venue records, the evaluation set, negatives.

The venue databases store each venue as a `[name, {fields}]` pair, and the fields repeat
the name under 名称. Each record therefore becomes the field object alone, which is what a
tenant would upload as a JSON knowledge file. The evaluation set comes from the test dialogues:
a user turn that names a venue and requests one or more of its attributes.
"""

from __future__ import annotations

import json
import re
import unicodedata
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.clean import normalize_text

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
VENUE_DB = SHARED_DATA / "crosswoz-db"
TEST_DIALOGUES = SHARED_DATA / "crosswoz-test" / "test.json.zip"

# Dialogue-act domain -> database file. The metro and taxi databases contain no venues.
DOMAIN_FILES: dict[str, str] = {
    "景点": "attraction_db.json",
    "餐馆": "restaurant_db.json",
    "酒店": "hotel_db.json",
}
# System values that mean "none", "no" or "yes" rather than a value of the record.
NON_VALUES = frozenset({"", "无", "否", "是", "none"})
# Items of a list field that an answer must show when the system turn names none.
FALLBACK_LIST_ITEMS = 3

_NUMBER_WITH_UNIT = re.compile(r"(\d+(?:\.\d+)?)\s*(?:元|分|块)?")
_NOT_WORD = re.compile(r"[\W_]+")


@dataclass(frozen=True)
class ExpectedValue:
    """One requested attribute and the values a correct answer contains.

    Attributes:
        slot: the record field, e.g. 电话.
        values: normalized with `normalize_value`. Every one must be in the answer.
        from_system: True when the values come from the system turn's Inform acts,
            False when they come from the database because the system gave none that
            the record has.
    """

    slot: str
    values: tuple[str, ...]
    from_system: bool


@dataclass(frozen=True)
class EvalItem:
    """A user turn that names one venue and requests attributes of it.

    Attributes:
        source: the knowledge file of the venue's domain, e.g. hotel_db.json.
        doc_id: the venue's document id as ingestion derives it from its title.
        expected: one entry per requested attribute that has a checkable value.
    """

    dialogue_id: str
    turn: int
    query: str
    domain: str
    venue: str
    source: str
    doc_id: str
    slots: tuple[str, ...]
    expected: tuple[ExpectedValue, ...]


# Off-topic questions a venue knowledge base cannot answer: weather, markets, other
# products and services, chit-chat. Several contain field cues of the answer engine
# (颜色, 保修, 几点) on purpose.
NEGATIVE_QUESTIONS: tuple[str, ...] = (
    "今天北京天气怎么样？",
    "明天会下雨吗？",
    "这周末气温多少度？",
    "后天上海有没有台风？",
    "今晚出门要不要带伞？",
    "下周空气质量怎么样？",
    "现在外面刮大风吗？",
    "明天早上雾霾严重吗？",
    "茅台今天的股价是多少？",
    "上证指数现在多少点？",
    "比特币最近涨了还是跌了？",
    "人民币兑美元汇率是多少？",
    "腾讯控股的市盈率是多少？",
    "现在买黄金划算吗？",
    "帮我查一下我的基金收益。",
    "今年的国债利率是多少？",
    "iPhone 15 的电池容量是多少？",
    "你们卖的空气净化器保修几年？",
    "这款洗衣机有几种颜色？",
    "笔记本电脑支持分期付款吗？",
    "我的快递到哪里了？",
    "扫地机器人怎么连WiFi？",
    "这双跑鞋有42码吗？",
    "电动牙刷的刷头多久换一次？",
    "你们的会员卡怎么退款？",
    "打印机卡纸了怎么办？",
    "你好，你是机器人吗？",
    "给我讲个笑话吧。",
    "你叫什么名字？",
    "你今年几岁了？",
    "我今天心情不好。",
    "你喜欢什么颜色？",
    "陪我聊聊天吧。",
    "你觉得人工智能会取代人类吗？",
    "晚安，明天见。",
    "你会唱歌吗？",
    "怎么修改我的登录密码？",
    "我的信用卡账单什么时候出？",
    "帮我订一张去上海的高铁票。",
    "医保报销需要哪些材料？",
    "孩子发烧了应该吃什么药？",
    "怎么申请护照？",
    "驾照扣分怎么查？",
    "公积金可以提取吗？",
    "帮我把“谢谢”翻译成英文。",
    "一加一等于几？",
    "世界上最高的山是哪座？",
    "红烧肉在家怎么做？",
    "推荐一部好看的电影。",
    "今晚的足球比赛几点开始？",
)


def missing_data_message() -> str | None:
    """Return why the benchmark cannot run, or None when the CrossWOZ files are present."""
    wanted = [VENUE_DB / name for name in DOMAIN_FILES.values()] + [TEST_DIALOGUES]
    missing = [str(path) for path in wanted if not path.is_file()]
    if not missing:
        return None
    return (
        f"CrossWOZ data not found: {', '.join(missing)}. The benchmark reads the venue "
        f"databases and test dialogues from {SHARED_DATA}, the shared data folder beside "
        "the repository checkout."
    )


def load_venues() -> dict[str, list[dict[str, Any]]]:
    """Read the venue records of each domain as field objects, in database order."""
    venues = {}
    for domain, file_name in DOMAIN_FILES.items():
        pairs = json.loads((VENUE_DB / file_name).read_text(encoding="utf-8"))
        venues[domain] = [fields for _, fields in pairs]
    return venues


def records_json(records: list[dict[str, Any]]) -> bytes:
    """Serialize records as the JSON list of objects a tenant would upload."""
    return json.dumps(records, ensure_ascii=False).encode("utf-8")


def load_dialogues() -> dict[str, Any]:
    """Read the 500 CrossWOZ test dialogues, keyed by dialogue id."""
    with zipfile.ZipFile(TEST_DIALOGUES) as archive:
        return json.loads(archive.read("test.json"))


def normalize_value(value: Any) -> str:
    """Reduce a value or an answer to the characters that carry its content.

    NFKC, lower case, no spaces or punctuation, and numbers without a unit: "4.7",
    4.7 and "4.7分" all become "47", and "010-1234 5678" matches "010-1234,5678".
    """
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = unicodedata.normalize("NFKC", str(value)).lower().strip()
    number = _NUMBER_WITH_UNIT.fullmatch(text)
    if number:
        text = number.group(1)
    return _NOT_WORD.sub("", text)


def answer_contains(answer: str, expected: ExpectedValue) -> bool:
    """Return True when every expected value occurs in the normalized answer text."""
    text = normalize_value(answer)
    return all(value in text for value in expected.values)


def build_eval_set(
    dialogues: dict[str, Any], venues: dict[str, list[dict[str, Any]]]
) -> tuple[list[EvalItem], dict[str, int]]:
    """Collect the user turns that name a venue and request its attributes.

    A turn qualifies when it has Request acts for one venue domain, other than for 名称
    and the yes/no 酒店设施-X questions, and its text contains the name of a venue of that
    domain. Turns that name two unrelated venues of the domain are left out as ambiguous.

    Returns:
        The items, and counts of the turns and requests left out, by reason.
    """
    by_name = {domain: {r["名称"]: r for r in records} for domain, records in venues.items()}
    skipped: Counter[str] = Counter()
    items = []
    for dialogue_id, dialogue in dialogues.items():
        messages = dialogue["messages"]
        for turn, message in enumerate(messages):
            if message["role"] != "usr":
                continue
            reply = messages[turn + 1] if turn + 1 < len(messages) else None
            item = _eval_item(dialogue_id, turn, message, reply, by_name, skipped)
            if item is not None:
                items.append(item)
    return items, dict(sorted(skipped.items()))


def _eval_item(
    dialogue_id: str,
    turn: int,
    message: dict[str, Any],
    reply: dict[str, Any] | None,
    by_name: dict[str, dict[str, dict[str, Any]]],
    skipped: Counter[str],
) -> EvalItem | None:
    """Return the item for one user turn, or None after counting why it does not qualify."""
    requests: dict[str, list[str]] = {}
    for act, domain, slot, _ in message["dialog_act"]:
        if act != "Request" or domain not in by_name or slot == "名称":
            continue
        if slot not in _known_slots(by_name[domain]):
            skipped["requests for a field records lack (酒店设施-X yes/no)"] += 1
            continue
        requests.setdefault(domain, []).append(slot)
    if not requests:
        return None

    text = message["content"]
    named = {d: _named_venue(text, message, by_name[d]) for d in requests}
    found = {d: name for d, name in named.items() if name}
    if not found:
        skipped["venue not named in the turn"] += 1
        return None
    if len(found) > 1 or any(name == _AMBIGUOUS for name in found.values()):
        skipped["ambiguous venue"] += 1
        return None

    [(domain, venue)] = found.items()
    record = by_name[domain][venue]
    slots = tuple(dict.fromkeys(requests[domain]))
    informs = reply["dialog_act"] if reply else []
    expected = []
    for slot in slots:
        value = _expected_value(slot, record.get(slot), informs, domain)
        if value is None:
            skipped["requests without a checkable value"] += 1
        else:
            expected.append(value)
    return EvalItem(
        dialogue_id=dialogue_id,
        turn=turn,
        query=text,
        domain=domain,
        venue=venue,
        source=DOMAIN_FILES[domain],
        doc_id=normalize_text(venue),
        slots=slots,
        expected=tuple(expected),
    )


_AMBIGUOUS = "\x00ambiguous"


def _known_slots(records: dict[str, dict[str, Any]]) -> set[str]:
    first = next(iter(records.values()))
    return set(first)


def _named_venue(text: str, message: dict[str, Any], records: dict[str, Any]) -> str | None:
    """Return the venue of the domain that the turn names, _AMBIGUOUS, or None.

    The user's own Inform act for 名称 decides when its value is in the text. Otherwise the
    longest venue name in the text wins, unless another name in the text is not part of it.
    """
    for act, _, slot, value in message["dialog_act"]:
        if act == "Inform" and slot == "名称" and value in records and value in text:
            return value
    names = [name for name in records if name in text]
    if not names:
        return None
    longest = max(names, key=len)
    if any(name not in longest for name in names):
        return _AMBIGUOUS
    return longest


def _expected_value(
    slot: str, db_value: Any, informs: list[list[str]], domain: str
) -> ExpectedValue | None:
    """Pick the values a correct answer for `slot` contains.

    The system turn's Inform values count when the record has them (system turns hold
    crowd-worker typos and rewordings), else the database value does. None means neither
    gives a value, e.g. an empty 周边酒店 list.
    """
    informed = [v for a, d, s, v in informs if a == "Inform" and d == domain and s == slot]
    informed = [normalize_value(v) for v in informed if v.strip().lower() not in NON_VALUES]

    if isinstance(db_value, list):
        items = [normalize_value(v) for v in db_value]
        agreed = tuple(dict.fromkeys(v for v in informed if v in items))
        if agreed:
            return ExpectedValue(slot, agreed, from_system=True)
        if not items:
            return None
        return ExpectedValue(slot, tuple(items[:FALLBACK_LIST_ITEMS]), from_system=False)

    if db_value is None or normalize_value(db_value) == "":
        return None
    stored = normalize_value(db_value)
    agreed = tuple(dict.fromkeys(v for v in informed if v and v in stored))
    if agreed:
        return ExpectedValue(slot, agreed, from_system=True)
    return ExpectedValue(slot, (stored,), from_system=False)
