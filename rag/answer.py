"""Answer engines: the streaming interface and the extractive engine.

The extractive engine needs no language model. For an FAQ hit it returns the FAQ answer;
for a structured record it returns the fields the question asks for (电话, 地址, 价格 …,
matched to the question's wording); for a document chunk it returns the chunk. Confidence
comes from the retrieval scores, and below a threshold the reply is a fallback that offers
a human agent.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from rag.knowledge import Hit, SearchResult
from rag.phrases import phrase
from rag.tokenize import Tokenizer

SNIPPET_CHARS = 300
# A cue, and what a field adds over the fields already taken, is at least this many chars.
MIN_CUE_CHARS = 2
MAX_LIST_ITEMS = 10
MAX_SUMMARY_FIELDS = 4

# Question wording that asks for a field. A record field matches a cue list when its name
# contains the key; the field name itself and its two-character pieces always count too.
FIELD_CUES: dict[str, tuple[str, ...]] = {
    "电话": ("电话", "联系方式", "号码", "热线", "联系", "手机"),
    "地址": ("地址", "在哪", "哪里", "哪儿", "位置", "怎么走", "地点", "位于"),
    "地铁": ("地铁", "几号线", "地铁站", "坐地铁"),
    "营业时间": ("营业时间", "几点", "开门", "关门", "营业", "开放时间", "开放", "时间"),
    "门票": ("门票", "票价", "多少钱", "收费", "免费", "价格", "费用"),
    "价格": ("价格", "多少钱", "房价", "费用", "价位", "一晚", "售价", "贵"),
    "人均": ("人均", "消费", "多少钱", "价格", "贵"),
    "评分": ("评分", "几分", "评价", "口碑", "分数"),
    "推荐菜": ("推荐菜", "招牌", "特色菜", "好吃", "推荐", "菜"),
    "游玩时间": ("游玩时间", "玩多久", "多长时间", "多久", "游玩"),
    "周边": ("周边", "附近", "旁边", "周围"),
    # What the neighbours are, in the words callers use: "附近吃饭方便吗" asks for the
    # neighbouring restaurants, not for whichever 周边 field comes first.
    "周边餐馆": ("餐馆", "餐厅", "饭店", "饭馆", "吃饭", "吃的", "好吃", "美食", "饭的"),
    "周边酒店": ("酒店", "宾馆", "旅馆", "住宿", "住的", "过夜", "住下"),
    "周边景点": ("景点", "景区", "好玩", "玩的", "玩耍", "游玩", "逛逛"),
    "类型": ("类型", "档次", "星级", "几星"),
    "设施": ("设施", "wifi", "停车", "健身房", "早餐", "服务"),
    "保修": ("保修", "质保", "保修期"),
    "库存": ("库存", "有货", "现货", "有没有货"),
    "颜色": ("颜色", "配色"),
    "尺寸": ("尺寸", "大小", "尺码"),
    "重量": ("重量", "多重"),
}

NEIGHBOUR_KEY = "周边"


@dataclass(frozen=True)
class Citation:
    """A source passage an answer was built from."""

    doc_id: str
    title: str
    score: float
    kind: str
    source: str
    snippet: str


@dataclass(frozen=True)
class AnswerRequest:
    """What an answer engine gets for one turn.

    Attributes:
        question: the caller's question, normalized.
        retrieval: hits for the question, best first.
        locale: `zh-CN` or `en-US`.
        history: earlier turns of the session as (role, text) pairs, oldest first; the role
            is `user` or `assistant`. LLM engines use it, the extractive engine ignores it.
        system_prompt: the tenant's persona for LLM engines (brand, tone, rules); empty
            means the default persona of the locale.
        cancel: set on barge-in or hang-up; LLM engines stop generating and end the answer
            with finish_reason `cancelled`.
    """

    question: str
    retrieval: SearchResult
    locale: str
    history: tuple[tuple[str, str], ...] = ()
    system_prompt: str = ""
    cancel: threading.Event | None = None
    # Reply used instead of the default fallback when confidence is low; the dialogue
    # manager sets it when a human will take over.
    fallback_text: str = ""


@dataclass(frozen=True)
class TextDelta:
    """A piece of answer text; the pieces concatenate to the final text."""

    text: str


@dataclass(frozen=True)
class FinalAnswer:
    """The end of an answer.

    Attributes:
        finish_reason: complete, fallback, length, cancelled or error.
        handoff_reason: why a human should take over; empty for no handoff.
    """

    text: str
    citations: tuple[Citation, ...]
    confidence: float
    intent: str
    engine: str
    finish_reason: str = "complete"
    handoff_reason: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def handoff(self) -> bool:
        return bool(self.handoff_reason)


AnswerEvent = TextDelta | FinalAnswer


class AnswerEngine(Protocol):
    """Streams one answer: zero or more TextDelta events, then exactly one FinalAnswer."""

    name: str

    def stream(self, request: AnswerRequest) -> Iterator[AnswerEvent]: ...


@dataclass(frozen=True)
class ConfidenceCalibration:
    """Maps retrieval signals of one embedding model to a 0..1 confidence.

    Attributes:
        similarity_floor: cosine at or below which the dense signal is 0.
        similarity_ceiling: cosine at or above which the dense signal is 1.
        dense_weight: share of the dense signal; the rest is query-term coverage.
    """

    similarity_floor: float
    similarity_ceiling: float
    dense_weight: float = 0.5

    def __post_init__(self) -> None:
        if not self.similarity_floor < self.similarity_ceiling:
            raise ValueError(
                f"similarity_floor {self.similarity_floor} must be below "
                f"similarity_ceiling {self.similarity_ceiling}"
            )
        if not 0 <= self.dense_weight <= 1:
            raise ValueError(f"dense_weight must be within 0..1, got {self.dense_weight}")


# NOTE: estimated from the cosine spread of matching and unrelated CrossWOZ questions with
# each model; recalibrate when a tenant's traffic shows too many or too few fallbacks.
CALIBRATIONS: dict[str, ConfidenceCalibration] = {
    "e5-small": ConfidenceCalibration(similarity_floor=0.78, similarity_ceiling=0.90),
    "use-multilingual": ConfidenceCalibration(similarity_floor=0.25, similarity_ceiling=0.70),
}


class ExtractiveEngine:
    """Answers with the best passage itself: FAQ answer, record fields or document text."""

    name = "extractive"

    def __init__(
        self,
        tokenizer: Tokenizer,
        calibration: ConfidenceCalibration,
        confidence_threshold: float = 0.4,
    ) -> None:
        if not 0 <= confidence_threshold <= 1:
            raise ValueError(
                f"confidence_threshold must be within 0..1, got {confidence_threshold}"
            )
        self.tokenizer = tokenizer
        self.calibration = calibration
        self.confidence_threshold = confidence_threshold

    def stream(self, request: AnswerRequest) -> Iterator[AnswerEvent]:
        final = self.answer(request)
        yield TextDelta(final.text)
        yield final

    def answer(self, request: AnswerRequest) -> FinalAnswer:
        """Build the whole answer for one question."""
        hits = request.retrieval.hits
        confidence = self.confidence(request.retrieval)
        if not hits or confidence < self.confidence_threshold:
            return FinalAnswer(
                text=request.fallback_text or phrase("fallback", request.locale),
                citations=(),
                confidence=confidence,
                intent="unknown",
                engine=self.name,
                finish_reason="fallback",
                handoff_reason="low_confidence",
            )

        best = hits[0]
        text, used_fields = _extract(best, request.question, request.locale)
        return FinalAnswer(
            text=text,
            citations=(citation_of(best),),
            confidence=confidence,
            intent=_intent_of(best),
            engine=self.name,
            extra={"fields": used_fields},
        )

    def confidence(self, retrieval: SearchResult) -> float:
        """Score the best hit from 0 to 1: query-term coverage blended with the cosine
        similarity scaled between the calibration's floor and ceiling."""
        if not retrieval.hits:
            return 0.0
        best = retrieval.hits[0]
        coverage = _term_coverage(retrieval.query_terms, best, self.tokenizer)
        if best.dense_similarity is None:
            return round(coverage, 4)
        cal = self.calibration
        span = cal.similarity_ceiling - cal.similarity_floor
        dense = min(1.0, max(0.0, (best.dense_similarity - cal.similarity_floor) / span))
        return round(cal.dense_weight * dense + (1 - cal.dense_weight) * coverage, 4)


def citation_of(hit: Hit) -> Citation:
    """Return the citation of a hit, with a snippet of at most SNIPPET_CHARS characters."""
    return Citation(
        doc_id=hit.doc_id,
        title=hit.title,
        score=hit.score,
        kind=hit.kind,
        source=hit.source,
        snippet=hit.text[:SNIPPET_CHARS],
    )


def _intent_of(hit: Hit) -> str:
    if hit.kind == "faq":
        return hit.category or "faq"
    return hit.kind


def _term_coverage(terms: Sequence[str], hit: Hit, tokenizer: Tokenizer) -> float:
    wanted = set(terms)
    if not wanted:
        return 0.0
    # Field names count as covered: "电话是多少" is answered by a record with a 电话 field.
    haystack = hit.title + "\n" + hit.text + "\n" + " ".join(hit.fields)
    present = set(tokenizer.tokens(haystack))
    return len(wanted & present) / len(wanted)


def _extract(hit: Hit, question: str, locale: str) -> tuple[str, list[str]]:
    if hit.kind == "faq":
        return hit.answer or hit.text, []
    if hit.kind == "doc":
        return hit.text, []
    return _answer_from_record(hit, question, locale)


def _answer_from_record(hit: Hit, question: str, locale: str) -> tuple[str, list[str]]:
    # The venue's own name must not count as wording: 北京地铁博物馆 does not ask for 地铁.
    asked = match_fields(question.replace(hit.title, " "), list(hit.fields))
    if asked:
        sentences = [_field_sentence(hit, name, locale) for name in asked]
        return "".join(sentences) if locale == "zh-CN" else " ".join(sentences), asked

    scalar = [k for k, v in hit.fields.items() if not isinstance(v, list | dict)]
    shown = scalar[:MAX_SUMMARY_FIELDS]
    details = phrase("detail_separator", locale).join(
        f"{name}：{format_value(hit.fields[name], locale)}" for name in shown
    )
    return phrase("record_summary", locale, title=hit.title, details=details), shown


def _field_sentence(hit: Hit, name: str, locale: str) -> str:
    value = format_value(hit.fields[name], locale)
    if not value:
        return phrase("field_empty", locale, title=hit.title, field=name)
    return phrase("field_value", locale, title=hit.title, field=name, value=value)


def match_fields(question: str, field_names: Sequence[str]) -> list[str]:
    """Return the record fields the question asks for, in record order.

    Each field covers the characters of the question that its cues match. Fields are taken
    greedily, most characters first, while each adds at least two characters no taken field
    covers. So "电话和地址" returns both fields, "推荐菜…周边有酒店吗" returns 推荐菜 and
    周边酒店 but not 周边景点, and "多少钱" returns the price field.
    """
    text = question.lower()
    coverage = {name: _field_coverage(text, name) for name in field_names}
    ranked = sorted(
        (name for name in field_names if len(coverage[name]) >= MIN_CUE_CHARS),
        key=lambda name: -len(coverage[name]),
    )
    taken: set[str] = set()
    covered: set[int] = set()
    for name in ranked:
        if len(coverage[name] - covered) >= MIN_CUE_CHARS:
            taken.add(name)
            covered |= coverage[name]
    return [name for name in field_names if name in taken]


def _field_coverage(text: str, field_name: str) -> set[int]:
    """Return the positions of `text` that the field's cues match.

    A neighbour field (周边景点, 周边餐馆 …) needs a neighbourhood word as well, so
    "有什么好吃的" asks for 推荐菜 and "附近有什么好吃的" for 周边餐馆.
    """
    if NEIGHBOUR_KEY in field_name and not _covered(text, set(FIELD_CUES[NEIGHBOUR_KEY])):
        return set()
    return _covered(text, _cues_for(field_name))


def _covered(text: str, cues: set[str]) -> set[int]:
    """Return the positions of `text` inside an occurrence of any cue of two or more chars."""
    positions: set[int] = set()
    for cue in cues:
        if len(cue) < MIN_CUE_CHARS:
            continue
        start = text.find(cue)
        while start != -1:
            positions.update(range(start, start + len(cue)))
            start = text.find(cue, start + 1)
    return positions


def _cues_for(field_name: str) -> set[str]:
    name = field_name.lower()
    cues = {name}
    cues.update(name[i : i + 2] for i in range(len(name) - 1))
    for key, words in FIELD_CUES.items():
        if key in name:
            cues.update(words)
    return cues


def format_value(value: Any, locale: str) -> str:
    """Render a record field value as text; lists keep their first MAX_LIST_ITEMS items."""
    if isinstance(value, list):
        items = [format_value(v, locale) for v in value[:MAX_LIST_ITEMS]]
        return phrase("list_separator", locale).join(items)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if value is None:
        return ""
    return str(value)
