"""Requests, hits and event checks shared by the LLM engine tests."""

from __future__ import annotations

import threading
from collections.abc import Iterable

from rag.answer import AnswerEvent, AnswerRequest, FinalAnswer, TextDelta
from rag.knowledge import Hit, SearchResult

HOURS_HIT = Hit(
    id="p-hours",
    doc_id="faq-hours",
    kind="faq",
    title="营业时间",
    text="问：你们几点开门？\n答：门店每天早上九点开门，晚上九点关门。",
    source="faq.csv",
    category="门店",
    score=0.9,
    question="你们几点开门？",
    answer="门店每天早上九点开门，晚上九点关门。",
)
RETURNS_HIT = Hit(
    id="p-returns",
    doc_id="returns-policy",
    kind="doc",
    title="退货政策",
    text="商品签收后七天内可以无理由退货，退货运费由买家承担。",
    source="returns_policy.md",
    category="",
    score=0.5,
)


def make_request(
    question: str = "你们几点开门？",
    hits: Iterable[Hit] = (HOURS_HIT, RETURNS_HIT),
    *,
    locale: str = "zh-CN",
    history: tuple[tuple[str, str], ...] = (),
    system_prompt: str = "",
    cancel: threading.Event | None = None,
) -> AnswerRequest:
    """Build a request whose retrieval returned `hits`, best first."""
    retrieval = SearchResult(query=question, query_terms=(), hits=list(hits))
    return AnswerRequest(
        question=question,
        retrieval=retrieval,
        locale=locale,
        history=history,
        system_prompt=system_prompt,
        cancel=cancel,
    )


def split_events(events: list[AnswerEvent]) -> tuple[list[str], FinalAnswer]:
    """Check the stream shape (deltas, then one FinalAnswer); return delta texts and the final."""
    assert events, "the engine yielded no events"
    *deltas, final = events
    assert isinstance(final, FinalAnswer), f"last event is {final!r}"
    assert all(isinstance(event, TextDelta) for event in deltas), deltas
    texts = [event.text for event in deltas]
    assert "".join(texts) == final.text
    return texts, final
