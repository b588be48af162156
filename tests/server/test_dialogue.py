"""The dialogue manager: slots, session memory, intents, follow-ups and handoff."""

from __future__ import annotations

import json
import zipfile

import pytest

from server.assistant import Question
from server.dialogue import (
    DEFAULT_INTENTS_FILE,
    IntentClassifier,
    SessionMemory,
    extract_slots,
    is_follow_up,
    load_intent_examples,
)
from server.errors import ConfigError
from tests.conftest import make_settings, shared_data
from tests.rag.helpers import crosswoz_records


@pytest.mark.parametrize(
    ("text", "orders", "phones", "codes"),
    [
        ("订单号 202406181234567 发货了吗", ["202406181234567"], [], []),
        ("单号:JD-88812345", ["JD-88812345"], [], []),
        ("我的电话是138 0013 8000", [], ["13800138000"], []),
        ("打400-820-8820找谁", [], ["400-820-8820"], []),
        ("AB-1299-X和Mate60有什么区别", [], [], ["AB-1299-X", "Mate60"]),
        ("退款¥1,299.00什么时候到", [], [], []),
        ("你好", [], [], []),
    ],
)
def test_extract_slots(text, orders, phones, codes) -> None:
    slots = extract_slots(text)
    assert list(slots.order_numbers) == orders
    assert list(slots.phone_numbers) == phones
    assert list(slots.product_codes) == codes


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("电话是多少？", True),
        ("它在哪", True),
        ("这家店几点开门呀，周末也开吗", True),
        ("北京有哪些适合带孩子去的博物馆呢", False),
    ],
)
def test_is_follow_up(question, expected) -> None:
    assert is_follow_up(question) is expected


def test_session_memory_bounded() -> None:
    memory = SessionMemory(max_sessions=2, ttl_s=60)
    memory.get("t", "a").focus = ["故宫"]
    memory.get("t", "b")
    memory.get("t", "c")
    assert len(memory) == 2
    assert memory.get("t", "a").focus == []


def test_session_memory_expires(monkeypatch) -> None:
    import server.dialogue as dialogue

    now = [1000.0]
    monkeypatch.setattr(dialogue.time, "monotonic", lambda: now[0])
    memory = SessionMemory(max_sessions=10, ttl_s=60)
    memory.get("t", "a").focus = ["故宫"]
    now[0] += 30
    assert memory.get("t", "a").focus == ["故宫"]
    now[0] += 61
    assert memory.get("t", "a").focus == []


def test_session_memory_anonymous_not_kept() -> None:
    memory = SessionMemory()
    memory.get("t", "").focus = ["故宫"]
    assert len(memory) == 0


def test_session_memory_rejects_bad_limits() -> None:
    with pytest.raises(ConfigError, match="max_sessions"):
        SessionMemory(max_sessions=0)


@pytest.fixture(scope="module")
def classifier(embedder) -> IntentClassifier:
    return IntentClassifier(embedder, load_intent_examples(DEFAULT_INTENTS_FILE))


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("我的快递怎么还没到", "shipping"),
        ("退款到哪了", "returns_refunds"),
        ("能开发票吗", "invoice"),
        ("密码忘了怎么办", "account"),
        ("你们太坑了，我要投诉", "complaint"),
        ("转人工", "human_agent"),
        ("你好呀", "greeting"),
        ("帮我写一首关于秋天的诗", "other"),
    ],
)
def test_intents(classifier, text, intent) -> None:
    assert classifier.classify("t", text)[0] == intent


def test_tenant_intent_examples(embedder, tmp_path) -> None:
    (tmp_path / "acme.yaml").write_text(
        "warranty_claim:\n  - 我要申请保修\n  - 保修怎么报\n", "utf-8"
    )
    classifier = IntentClassifier(
        embedder, load_intent_examples(DEFAULT_INTENTS_FILE), tenant_dir=tmp_path
    )
    assert classifier.classify("acme", "我要申请保修")[0] == "warranty_claim"
    assert classifier.classify("other", "我要申请保修")[0] != "warranty_claim"


def test_intent_file_errors(tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("shipping: 运费\n", "utf-8")
    with pytest.raises(ConfigError, match="shipping"):
        load_intent_examples(bad)
    bad.write_text("- a\n- b\n", "utf-8")
    with pytest.raises(ConfigError, match="must map"):
        load_intent_examples(bad)


# Through the real assistant pipeline.


@pytest.fixture(scope="module")
def venue_assistant(tmp_path_factory, tracer_provider):
    """Components with a slice of the CrossWOZ attractions and restaurants as tenant `bj`."""
    from server.app import build_components

    db = shared_data("crosswoz-db")
    components = build_components(
        make_settings(tmp_path_factory.mktemp("dialogue")), tracer_provider
    )
    wanted = {"北京自然博物馆", "故宫", "鲜鱼口老字号美食街"}
    folder = tmp_path_factory.mktemp("venues")
    for name in ("attraction_db.json", "restaurant_db.json"):
        records = crosswoz_records(db / name)
        chosen = records[:25] + [r for r in records[25:] if r["名称"] in wanted]
        path = folder / name
        path.write_text(json.dumps(chosen, ensure_ascii=False), "utf-8")
        components.knowledge.ingest_file("bj", path)
    yield components
    components.close()


def ask(components, text: str, session: str = "s1"):
    return components.assistant.ask(Question("bj", text, session))


def test_follow_up_uses_focus(venue_assistant) -> None:
    first = ask(venue_assistant, "北京自然博物馆在哪里？", "follow")
    assert first.final.citations[0].doc_id == "北京自然博物馆"

    second = ask(venue_assistant, "电话是多少？", "follow")
    assert second.focus == "北京自然博物馆"
    assert second.final.text.startswith("北京自然博物馆的电话是")
    assert not second.final.handoff


def test_follow_up_needs_same_session(venue_assistant) -> None:
    ask(venue_assistant, "北京自然博物馆在哪里？", "one")
    other = ask(venue_assistant, "电话是多少？", "two")
    assert other.focus == ""


def test_new_venue_replaces_focus(venue_assistant) -> None:
    ask(venue_assistant, "北京自然博物馆在哪里？", "switch")
    ask(venue_assistant, "故宫的门票多少钱", "switch")
    third = ask(venue_assistant, "它的电话呢", "switch")
    assert third.focus == "故宫"
    assert third.final.citations[0].doc_id == "故宫"


def test_assistant_recommendation_sets_focus(venue_assistant) -> None:
    state = venue_assistant.assistant.dialogue.memory.get("bj", "recommend")
    venue_assistant.assistant.dialogue.observe_assistant_text(state, "为您推荐鲜鱼口老字号美食街。")
    answer = ask(venue_assistant, "营业时间是什么时间？", "recommend")
    assert answer.focus == "鲜鱼口老字号美食街"
    assert "营业时间" in answer.final.text


@pytest.mark.parametrize(
    ("text", "reason"),
    [("转人工", "human_requested"), ("你们服务太差了，我要投诉", "complaint")],
)
def test_handoff_on_request_and_complaint(venue_assistant, text, reason) -> None:
    answer = ask(venue_assistant, text, f"handoff-{reason}")
    assert answer.final.handoff
    assert answer.final.handoff_reason == reason
    assert "人工客服" in answer.final.text


def test_handoff_after_repeated_low_confidence(venue_assistant) -> None:
    first = ask(venue_assistant, "你们卖不卖二手汽车", "misses")
    assert first.final.handoff_reason == "low_confidence"
    second = ask(venue_assistant, "火星上有没有分店", "misses")
    assert second.final.handoff_reason == "repeated_low_confidence"
    assert "正在为您转接人工客服" in second.final.text
    third = ask(venue_assistant, "北京自然博物馆电话是多少", "misses")
    assert not third.final.handoff


def test_slots_in_answer_and_masked_in_log(venue_assistant) -> None:
    answer = ask(venue_assistant, "订单号202406181234567还没到，我电话13800138000", "slots")
    assert answer.slots.order_numbers == ("202406181234567",)
    assert answer.slots.phone_numbers == ("13800138000",)
    logged = venue_assistant.turn_log.turn(answer.answer_id)
    assert "13800138000" not in logged["question"]


def _crosswoz_follow_ups(limit: int) -> list[tuple[str, str, str]]:
    """Return (first question naming a venue, follow-up without a name, venue) triples."""
    archive = shared_data("crosswoz-test") / "test.json.zip"
    dialogues = json.load(zipfile.ZipFile(archive).open("test.json"))
    found = []
    for dialogue in dialogues.values():
        user_turns = [m for m in dialogue["messages"] if m["role"] == "usr"]
        for first, second in zip(user_turns, user_turns[1:], strict=False):
            named = [a[3] for a in first["dialog_act"] if a[0] == "Inform" and a[2] == "名称"]
            asks = [a for a in second["dialog_act"] if a[0] == "Request"]
            if (
                named
                and named[0] in first["content"]
                and asks
                and named[0] not in second["content"]
            ):
                found.append((first["content"], second["content"], named[0]))
        if len(found) >= limit:
            break
    return found[:limit]


def test_crosswoz_follow_ups_resolve(tmp_path, tracer_provider) -> None:
    from server.app import build_components

    db = shared_data("crosswoz-db")
    cases = _crosswoz_follow_ups(4)
    venues = {venue for _, _, venue in cases}
    components = build_components(make_settings(tmp_path / "data"), tracer_provider)
    try:
        for name in ("attraction_db.json", "restaurant_db.json", "hotel_db.json"):
            records = [r for r in crosswoz_records(db / name) if r["名称"] in venues]
            path = tmp_path / name
            path.write_text(json.dumps(records, ensure_ascii=False), "utf-8")
            components.knowledge.ingest_file("bj", path)
        for n, (first, second, venue) in enumerate(cases):
            components.assistant.ask(Question("bj", first, f"cw{n}"))
            answer = components.assistant.ask(Question("bj", second, f"cw{n}"))
            assert answer.final.citations, (first, second)
            assert answer.final.citations[0].doc_id == venue, (first, second)
    finally:
        components.close()
