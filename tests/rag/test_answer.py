"""Extractive answers: field matching, fallback, confidence."""

from __future__ import annotations

import pytest

from rag.answer import CALIBRATIONS, AnswerRequest, ExtractiveEngine, match_fields
from rag.knowledge import Hit, SearchResult

VENUE_FIELDS = ["领域", "名称", "地址", "地铁", "电话", "门票", "游玩时间", "评分", "周边景点"]


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("北京自然博物馆电话是多少？", ["电话"]),
        ("它的联系方式给我一下", ["电话"]),
        ("在哪里？怎么走", ["地址"]),
        ("门票多少钱", ["门票"]),
        ("电话和地址都告诉我", ["地址", "电话"]),
        ("附近有什么景点", ["周边景点"]),
        ("评分怎么样", ["评分"]),
        ("你好", []),
    ],
)
def test_match_fields(question: str, expected: list[str]) -> None:
    assert match_fields(question, VENUE_FIELDS) == expected


def test_match_fields_several_and_no_overlap() -> None:
    restaurant = ["名称", "电话", "推荐菜", "周边景点", "周边餐馆", "周边酒店"]
    hotel = ["名称", "酒店类型", "电话", "酒店设施", "价格", "周边酒店"]
    assert match_fields("有什么推荐菜吗，周边有酒店吗？", restaurant) == ["推荐菜", "周边酒店"]
    assert match_fields("这个酒店是什么类型的？", hotel) == ["酒店类型"]


RESTAURANT_FIELDS = ["名称", "电话", "推荐菜", "评分", "周边景点", "周边餐馆", "周边酒店"]


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("附近吃饭方便吗？", ["周边餐馆"]),
        ("周围有比较不错的饭店吗？", ["周边餐馆"]),
        ("周边吃饭和住宿方便吗", ["周边餐馆", "周边酒店"]),
        ("附近有景点可以玩耍吗", ["周边景点"]),
        # Without a neighbourhood word, food wording asks for the venue's own dishes.
        ("有什么好吃的", ["推荐菜"]),
        ("电话是多少，附近有啥好吃的餐厅？", ["电话", "周边餐馆"]),
    ],
)
def test_match_fields_neighbour_kinds(question: str, expected: list[str]) -> None:
    assert match_fields(question, RESTAURANT_FIELDS) == expected


def test_match_fields_restaurant_hours() -> None:
    fields = ["名称", "地址", "电话", "营业时间", "推荐菜", "人均消费"]
    assert match_fields("几点开门？", fields) == ["营业时间"]
    assert match_fields("人均多少钱", fields) == ["人均消费"]


def _record_hit(similarity: float = 0.95) -> Hit:
    return Hit(
        id="p1",
        doc_id="北京地铁博物馆",
        kind="record",
        title="北京地铁博物馆",
        text="北京地铁博物馆\n电话: 010-12345678\n地铁: 万寿路站",
        source="attraction.json",
        category="景点",
        score=0.03,
        fields={"电话": "010-12345678", "地铁": "万寿路站", "门票": 20.0},
        dense_similarity=similarity,
    )


@pytest.fixture
def engine(tokenizer) -> ExtractiveEngine:
    return ExtractiveEngine(tokenizer, CALIBRATIONS["e5-small"], confidence_threshold=0.4)


def _request(question: str, hits: list[Hit], tokenizer, locale: str = "zh-CN") -> AnswerRequest:
    retrieval = SearchResult(question, tuple(tokenizer.tokens(question)), hits)
    return AnswerRequest(question=question, retrieval=retrieval, locale=locale)


def test_record_answer_uses_asked_field(engine, tokenizer) -> None:
    final = engine.answer(_request("北京地铁博物馆电话是多少", [_record_hit()], tokenizer))
    assert final.text == "北京地铁博物馆的电话是010-12345678。"
    assert final.citations[0].doc_id == "北京地铁博物馆"
    assert not final.handoff


def test_empty_field_says_no_information(engine, tokenizer) -> None:
    hit = _record_hit()
    hit.fields["周边酒店"] = []

    final = engine.answer(_request("北京地铁博物馆附近有酒店吗", [hit], tokenizer))
    english = engine.answer(
        _request("北京地铁博物馆附近有酒店吗", [hit], tokenizer, locale="en-US")
    )

    assert final.text == "北京地铁博物馆暂无周边酒店的信息。"
    assert english.text == "There is no 周边酒店 information for 北京地铁博物馆."


def test_venue_name_is_not_field_wording(engine, tokenizer) -> None:
    # The title contains 地铁, but the question asks for the price.
    final = engine.answer(_request("北京地铁博物馆门票多少钱", [_record_hit()], tokenizer))
    assert final.text == "北京地铁博物馆的门票是20。"


def test_english_locale(engine, tokenizer) -> None:
    final = engine.answer(
        _request("北京地铁博物馆电话是多少", [_record_hit()], tokenizer, locale="en-US")
    )
    assert final.text == "The 电话 of 北京地铁博物馆 is 010-12345678."


def test_low_confidence_falls_back_with_handoff(engine, tokenizer) -> None:
    final = engine.answer(_request("你们卖二手汽车吗", [_record_hit(similarity=0.70)], tokenizer))
    assert final.handoff
    assert final.handoff_reason == "low_confidence"
    assert final.finish_reason == "fallback"
    assert final.citations == ()
    assert "人工客服" in final.text


def test_no_hits_falls_back(engine, tokenizer) -> None:
    final = engine.answer(_request("运费", [], tokenizer))
    assert final.handoff
    assert final.confidence == 0.0


def test_stream_ends_with_final(engine, tokenizer) -> None:
    events = list(engine.stream(_request("北京地铁博物馆电话", [_record_hit()], tokenizer)))
    assert events[0].text == events[-1].text
    assert events[-1].engine == "extractive"
