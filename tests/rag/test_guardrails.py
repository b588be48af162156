"""Tests for rag.guardrails: rule checks, the streaming guard and YAML loading."""

from __future__ import annotations

import csv
import dataclasses
import random
from pathlib import Path

import pytest

from rag.contacts import AllowedContacts
from rag.guardrails import (
    DEFAULT_FORBIDDEN_PROMISES,
    SAFE_LINES,
    ComplianceRules,
    PatternRule,
    StreamingGuard,
    check_text,
)
from server.errors import ConfigError, FailedPreconditionError, InvalidArgumentError
from tests.conftest import SAMPLES

SAFE_ZH = SAFE_LINES["zh-CN"]
SAFE_EN = SAFE_LINES["en-US"]

SHOP_RULES = ComplianceRules(
    banned_words=("傻瓜",),
    banned_patterns=(PatternRule("fake-goods", r"高仿|a货"),),
    competitors=("京东", "淘宝", "JD"),
    allowed_phrases=("京东物流",),
    allowed_contacts=AllowedContacts(
        phones=("400-820-8820",),
        domains=("shop.example.com",),
        wechat_ids=("yunfan_kefu",),
    ),
)

# A streamed answer with every kind of change and text that must stay as it is.
ANSWER = (
    "您好！这款AB-1299-X耳机售价¥1,299.00，2024-06-18发货，订单号202406181234567890。"
    "默认使用顺丰和京东物流。我们保证赔偿您的损失！质量问题包赔。\n"
    "如有问题请拨打400-820-8820，或加微信：abc12345咨询。"
    "详情见https://shop.example.com/help?id=1，也可以访问 www.evil.cn 了解。"
    "去京东买更便宜? Really! Visit https://evil.cn/a?b=1; thanks.\n"
    "最后一句没有句号"
)
ANSWER_GUARDED = (
    "您好！这款AB-1299-X耳机售价¥1,299.00，2024-06-18发货，订单号202406181234567890。"
    "默认使用顺丰和京东物流。" + SAFE_ZH + "\n"
    "如有问题请拨打400-820-8820，或加微信咨询。"
    "详情见https://shop.example.com/help?id=1，也可以访问 了解。"
    + SAFE_ZH
    + " Really! Visit; thanks.\n"
    "最后一句没有句号"
)


def stream(guard: StreamingGuard, pieces: list[str]) -> list[str]:
    released = []
    for piece in pieces:
        released += guard.feed(piece)
    return released + guard.finish()


def random_split(text: str, rng: random.Random) -> list[str]:
    cuts = sorted(rng.sample(range(1, len(text)), rng.randint(0, min(12, len(text) - 1))))
    return [text[start:end] for start, end in zip([0, *cuts], [*cuts, len(text)], strict=True)]


# --- rules ---


@pytest.mark.parametrize(
    "sentence",
    [
        "我们保证赔偿您的全部损失。",
        "质量问题一定赔。",
        "坏了肯定给您全额退款。",
        "摔坏了也包赔。",
        "不满意百分之百退款。",
        "100%退款，放心买。",
        "这个耳机绝对不会坏。",
        "承诺明天送达。",
        "假一赔十。",
        "购物零风险。",
    ],
)
def test_default_promises_replaced(sentence):
    text, events = check_text(ComplianceRules(), sentence)

    assert text == SAFE_ZH
    assert events
    assert {event.kind for event in events} == {"forbidden_promise"}
    assert {event.action for event in events} == {"replaced"}


@pytest.mark.parametrize(
    "sentence",
    [
        "为了保证退款及时到账，请保留单据。",
        "我们不能保证赔偿全部运费。",
        "平台无法保证退款当天到账。",
        "保证金退款需要3个工作日。",
        "签收后7天内可以申请无理由退货。",
        "质量问题由我们承担运费。",
        "审核通过后会原路退款。",
        "请一定保管好发票。",
    ],
)
def test_ordinary_sentences_pass(sentence):
    text, events = check_text(ComplianceRules(), sentence)

    assert text == sentence
    assert events == []


def test_sample_faq_answers_pass_unchanged():
    with (SAMPLES / "faq.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert rows

    for row in rows:
        assert check_text(SHOP_RULES, row["answer"]) == (row["answer"], []), row["id"]


def test_sample_policy_passes_unchanged():
    policy = (SAMPLES / "returns_policy.md").read_text(encoding="utf-8")

    assert check_text(SHOP_RULES, policy) == (policy, [])


@pytest.mark.parametrize(
    ("sentence", "kind", "rule_id"),
    [
        ("你真是个傻瓜。", "banned_word", "傻瓜"),
        ("我们不卖高仿。", "banned_word", "fake-goods"),
        ("我们不卖A货。", "banned_word", "fake-goods"),
        ("去淘宝买吧。", "competitor", "淘宝"),
        ("Try JD instead.", "competitor", "JD"),
        ("Try jd, it is cheaper.", "competitor", "JD"),
        ("京东自营更快。", "competitor", "京东"),
        ("淘 宝上更便宜。", "competitor", "淘宝"),
        ("去淘寶買吧。", "competitor", "淘宝"),
        ("去ＪＤ买吧。", "competitor", "JD"),
        ("保 证 赔 偿", "forbidden_promise", "guaranteed-compensation"),
        ("保證賠償。", "forbidden_promise", "guaranteed-compensation"),
    ],
)
def test_rule_hits(sentence, kind, rule_id):
    text, events = check_text(SHOP_RULES, sentence)

    assert text == SAFE_ZH
    assert [(event.kind, event.rule_id) for event in events] == [(kind, rule_id)]


@pytest.mark.parametrize(
    "sentence",
    [
        "默认使用顺丰和京东物流。",
        "We build it with the jdk tools.",
        "淘汰的旧款不再销售。",
    ],
)
def test_rule_words_exempt_cases(sentence):
    assert check_text(SHOP_RULES, sentence) == (sentence, [])


def test_violations_report_each_rule_once():
    hits = SHOP_RULES.violations("淘宝淘宝京东，包赔包赔")

    assert sorted((hit.kind, hit.rule_id) for hit in hits) == [
        ("competitor", "京东"),
        ("competitor", "淘宝"),
        ("forbidden_promise", "包赔"),
    ]


def test_rules_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        SHOP_RULES.banned_words = ()  # type: ignore[misc]


def test_rules_accept_pattern_strings():
    rules = ComplianceRules(banned_patterns=["傻[瓜子]"])

    assert rules.banned_patterns == (PatternRule("傻[瓜子]", "傻[瓜子]"),)
    assert check_text(rules, "你个傻子。")[0] == SAFE_ZH


@pytest.mark.parametrize(
    ("arguments", "message_part"),
    [
        ({"banned_patterns": ["(unclosed"]}, "banned_patterns[0]='(unclosed'"),
        ({"competitor_patterns": ["a|"]}, "matches the empty string"),
        ({"banned_words": ["ok", "  "]}, "banned_words[1]='  '"),
        ({"competitors": "京东"}, "expected a list"),
        ({"allowed_contacts": {"phones": []}}, "expected AllowedContacts"),
    ],
)
def test_rules_reject_invalid(arguments, message_part):
    with pytest.raises(ConfigError) as raised:
        ComplianceRules(**arguments)

    assert message_part in str(raised.value)


# --- contacts through the guard ---


def test_guard_removes_unlisted_contacts():
    text, events = check_text(SHOP_RULES, "请加微信：abc12345或拨打13800138000咨询。")

    assert text == "请加微信或拨打咨询。"
    assert [(event.kind, event.rule_id, event.action) for event in events] == [
        ("contact", "wechat", "removed"),
        ("contact", "phone", "removed"),
    ]
    assert events[1].matched == "138****8000"
    assert "13800138000" not in events[1].sentence
    assert "138****8000" in events[1].sentence


def test_guard_keeps_allowed_contacts():
    sentence = "请拨打400-820-8820或加微信yunfan_kefu，详见https://shop.example.com/help。"

    assert check_text(SHOP_RULES, sentence) == (sentence, [])


def test_guard_drops_sentence_left_without_words():
    text, events = check_text(SHOP_RULES, "您好。13800138000。\n再见。")

    # The line break of the dropped sentence stays.
    assert text == "您好。\n再见。"
    assert len(events) == 1


def test_guard_event_masks_replaced_sentence():
    _, events = check_text(SHOP_RULES, "加我13800138000，保证赔偿。")

    assert events[0].kind == "forbidden_promise"
    assert events[0].sentence == "加我138****8000，保证赔偿。"
    assert events[0].pattern.startswith("(?<!不)")


# --- streaming ---


def test_guard_whole_answer():
    text, events = check_text(SHOP_RULES, ANSWER)

    assert text == ANSWER_GUARDED
    assert [event.kind for event in events] == [
        "forbidden_promise",
        "forbidden_promise",
        "contact",
        "contact",
        "competitor",
        "contact",
    ]


@pytest.mark.parametrize("seed", range(40))
def test_guard_output_same_for_any_split(seed):
    rng = random.Random(seed)
    guard = StreamingGuard(SHOP_RULES)

    released = stream(guard, random_split(ANSWER, rng))

    assert "".join(released) == ANSWER_GUARDED
    assert len(guard.events) == 6


def test_guard_releases_per_character_stream():
    guard = StreamingGuard(SHOP_RULES)

    released = stream(guard, list(ANSWER))

    assert "".join(released) == ANSWER_GUARDED


def test_guard_holds_sentence_until_checked():
    text = "您好。我们保证赔偿您的损失。再见"
    guard = StreamingGuard(SHOP_RULES)
    released_so_far = ""

    for character in text:
        released_so_far += "".join(guard.feed(character))
        assert "保证" not in released_so_far
        assert "损失" not in released_so_far
    released_so_far += "".join(guard.finish())

    assert released_so_far == "您好。" + SAFE_ZH + "再见"


def test_guard_waits_for_next_character():
    guard = StreamingGuard(SHOP_RULES)

    # The end mark alone is not enough: a closing quote or another mark may follow.
    assert guard.feed("他说：“好的。") == []
    assert guard.feed("”") == []
    assert guard.feed("然后") == ["他说：“好的。”"]
    assert guard.finish() == ["然后"]


def test_guard_contact_split_across_deltas():
    guard = StreamingGuard(SHOP_RULES)

    released = stream(guard, ["加微", "信：ab", "c123", "45咨询", "。"])

    assert "".join(released) == "加微信咨询。"


def test_guard_url_question_mark_kept():
    guard = StreamingGuard(SHOP_RULES)

    released = stream(guard, ["详见https://evil.cn/a?", "b=1。好的"])

    assert released == ["详见。", "好的"]


def test_guard_ascii_end_marks():
    text = "Hello. How are you? Fine!谢谢;好\n"
    guard = StreamingGuard(SHOP_RULES)

    released = stream(guard, [text])

    assert released == ["Hello.", " How are you?", " Fine!", "谢谢;", "好\n"]


def test_guard_keeps_amounts_and_decimals_whole():
    text = "价格¥1,299.00，折后¥999.5。"
    guard = StreamingGuard(SHOP_RULES)

    assert stream(guard, [text]) == [text]


def test_guard_one_safe_line_for_consecutive_replacements():
    text, events = check_text(SHOP_RULES, "质量问题一定赔。坏了包赔！去淘宝买。好的。")

    assert text == SAFE_ZH + "好的。"
    assert len(events) == 3


def test_guard_safe_line_keeps_surrounding_whitespace():
    text, _ = check_text(SHOP_RULES, "Hi. Try JD instead. Bye.", "en-US")

    assert text == "Hi. " + SAFE_EN + " Bye."


@pytest.mark.parametrize(("locale", "line"), [("en-US", SAFE_EN), ("en", SAFE_EN), ("zh", SAFE_ZH)])
def test_guard_safe_line_locale(locale, line):
    assert check_text(SHOP_RULES, "去淘宝买。", locale)[0] == line


def test_guard_rejects_unknown_locale():
    with pytest.raises(InvalidArgumentError):
        StreamingGuard(SHOP_RULES, "fr-FR")


def test_guard_cuts_long_sentence_at_comma():
    text = "这是一个很长的句子" * 3 + "，" + "后半句也不短" * 2 + "，结束。"
    guard = StreamingGuard(SHOP_RULES, max_sentence_chars=20)

    first = guard.feed(text[:40])

    assert first == [text[:28]]
    assert stream(guard, [text[40:]]) == [text[28:]]


@pytest.mark.parametrize("seed", range(10))
def test_guard_long_sentence_cut_same_for_any_split(seed):
    text = "，".join(f"第{i}段内容比较长一些" for i in range(30)) + "。加微信：abc12345，包赔。"
    whole = stream(StreamingGuard(SHOP_RULES, max_sentence_chars=25), [text])

    pieces = random_split(text, random.Random(seed))
    split = stream(StreamingGuard(SHOP_RULES, max_sentence_chars=25), pieces)

    assert split == whole
    assert len(whole) > 5


def test_guard_cut_keeps_phone_list_together():
    text = "门店信息如下，" * 4 + "电话：83172726，83172706，欢迎来电。"

    for max_chars in range(1, len(text)):
        released = stream(StreamingGuard(SHOP_RULES, max_sentence_chars=max_chars), [text])
        assert "83172706" not in "".join(released), max_chars


def test_guard_rejects_bad_max_sentence_chars():
    with pytest.raises(InvalidArgumentError):
        StreamingGuard(SHOP_RULES, max_sentence_chars=0)


def test_guard_feed_after_finish_raises():
    guard = StreamingGuard(SHOP_RULES)
    guard.finish()

    with pytest.raises(FailedPreconditionError):
        guard.feed("more")
    with pytest.raises(FailedPreconditionError):
        guard.finish()


def test_guard_empty_stream():
    guard = StreamingGuard(SHOP_RULES)

    assert guard.feed("") == []
    assert guard.finish() == []
    assert guard.events == []


# --- YAML ---


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_from_yaml_loads_rules(tmp_path):
    path = write(
        tmp_path,
        """
banned_words: [傻瓜]
banned_patterns:
  - id: fake-goods
    pattern: "高仿|a货"
  - "傻[子]"
competitors: [京东, 淘宝]
forbidden_promises: [终身包换]
allowed_phrases: [京东物流]
allowed_contacts:
  phones: ["400-820-8820", 4008208821]
  domains: [shop.example.com]
  wechat_ids: [yunfan_kefu]
  qq_numbers: [800012345]
  emails: [help@partner.cn]
""",
    )

    rules = ComplianceRules.from_yaml(path)

    assert rules.banned_patterns == (
        PatternRule("fake-goods", "高仿|a货"),
        PatternRule("傻[子]", "傻[子]"),
    )
    assert rules.forbidden_promises == (*DEFAULT_FORBIDDEN_PROMISES, "终身包换")
    assert rules.allowed_contacts.phones == ("400-820-8820", "4008208821")
    assert check_text(rules, "默认使用京东物流。")[1] == []
    assert check_text(rules, "终身包换。")[0] == SAFE_ZH
    assert check_text(rules, "一定赔。")[0] == SAFE_ZH
    assert check_text(rules, "热线4008208821。")[1] == []


def test_from_yaml_without_default_promises(tmp_path):
    path = write(tmp_path, "include_default_promises: false\nforbidden_promises: [终身包换]\n")

    rules = ComplianceRules.from_yaml(path)

    assert rules.forbidden_promises == ("终身包换",)
    assert rules.forbidden_promise_patterns == ()
    assert check_text(rules, "质量问题包赔。") == ("质量问题包赔。", [])


def test_from_yaml_empty_file_gives_defaults(tmp_path):
    assert ComplianceRules.from_yaml(write(tmp_path, "")) == ComplianceRules()


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("banned_word: [傻瓜]\n", ["unknown key banned_word=['傻瓜']", "accepted keys are"]),
        ("banned_patterns: ['(unclosed']\n", ["banned_patterns[0]='(unclosed'", "regular"]),
        (
            "competitor_patterns:\n  - id: x\n    pattern: '[a-'\n",
            ["competitor_patterns[0]='[a-'"],
        ),
        (
            "banned_patterns:\n  - id: x\n    regex: abc\n",
            ["unknown key banned_patterns[0].regex='abc'"],
        ),
        ("competitors: 京东\n", ["competitors='京东'", "expected a list"]),
        ("include_default_promises: maybe\n", ["include_default_promises='maybe'"]),
        ("allowed_contacts:\n  wechat: [abc]\n", ["unknown key allowed_contacts.wechat"]),
        ("allowed_contacts:\n  phones: ['12']\n", ["allowed_contacts.phones[0]='12'"]),
        ("allowed_contacts: [abc]\n", ["allowed_contacts=['abc']"]),
        ("- just a list\n", ["expected a mapping"]),
        ("banned_words: [unclosed\n", ["cannot read compliance rules file"]),
    ],
)
def test_from_yaml_errors_name_file_key_value(tmp_path, text, parts):
    path = write(tmp_path, text)

    with pytest.raises(ConfigError) as raised:
        ComplianceRules.from_yaml(path)

    message = str(raised.value)
    assert str(path) in message
    for part in parts:
        assert part in message


def test_from_yaml_missing_file(tmp_path):
    path = tmp_path / "absent.yaml"

    with pytest.raises(ConfigError) as raised:
        ComplianceRules.from_yaml(path)

    assert f"{path} not found" in str(raised.value)
