"""The answer pipeline of one turn: validate, retrieve, answer, log.

Plain synchronous code that the gRPC layer runs in its worker pool; tests call it
directly. Each stage runs in an OpenTelemetry span carrying the tenant and session ids.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace

from opentelemetry.trace import Span, Tracer

from rag.answer import AnswerEngine, AnswerRequest, FinalAnswer, TextDelta, match_fields
from rag.clean import normalize_text
from rag.guardrails import StreamingGuard, TenantRules, record_contacts
from rag.knowledge import KnowledgeBase, SearchResult, validate_tenant
from rag.phrases import normalize_locale, phrase
from server.dialogue import (
    LOW_CONFIDENCE_STREAK,
    OTHER_INTENT,
    DialogueManager,
    DialogueState,
    Slots,
    TurnPlan,
    is_anaphoric,
)
from server.errors import InvalidArgumentError
from server.images import ImageReading, PhotoAnswerEngine, VisionEngines, image_prefix
from server.pii import mask_pii
from server.telemetry import ATTR_SESSION, ATTR_TENANT, ATTR_TURN
from server.tenants import TenantConfigs
from server.turnlog import TurnLog, TurnRecord

logger = logging.getLogger(__name__)

MAX_SESSION_ID_CHARS = 128


@dataclass(frozen=True)
class Question:
    """One question of one turn.

    Attributes:
        text: the caller's words (typed, or the final transcript of speech).
        locale: `zh-CN` or `en-US`; validated on creation.
        turn: turn number within the session, from 1; 0 for a unary Ask.
        transcript: the final transcript when the question was spoken.
    """

    tenant: str
    text: str
    session_id: str
    locale: str = "zh-CN"
    turn: int = 0
    transcript: str = ""
    # Set by the session when the caller cancels or barges in; engines stop generating.
    cancel: threading.Event | None = field(default=None, compare=False)
    # Encoded photo sent with the question; the text may then be empty.
    image: bytes | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        validate_tenant(self.tenant)
        object.__setattr__(self, "locale", normalize_locale(self.locale))
        if len(self.session_id) > MAX_SESSION_ID_CHARS:
            raise InvalidArgumentError(
                "session_id", self.session_id, f"at most {MAX_SESSION_ID_CHARS} characters"
            )


@dataclass(frozen=True)
class AnswerTextDelta:
    """A piece of the answer text of the answer `answer_id`."""

    answer_id: str
    text: str


@dataclass(frozen=True)
class AnswerResult:
    """A finished answer with its id, as returned to clients."""

    answer_id: str
    final: FinalAnswer
    transcript: str = ""
    latency_ms: dict[str, float] = field(default_factory=dict)
    slots: Slots = field(default_factory=Slots)
    focus: str = ""
    image_text: str = ""
    image_product: str = ""


class Assistant:
    """Answers questions from a tenant's knowledge base and logs every turn."""

    def __init__(
        self,
        knowledge: KnowledgeBase,
        engine: AnswerEngine,
        dialogue: DialogueManager,
        turn_log: TurnLog,
        tracer: Tracer,
        *,
        rules: TenantRules | None = None,
        engines: dict[str, AnswerEngine] | None = None,
        tenants: TenantConfigs | None = None,
        vision: VisionEngines | None = None,
        top_k: int = 5,
        max_question_chars: int = 2000,
    ) -> None:
        self.knowledge = knowledge
        self.engine = engine
        # Engines a tenant config may pick by name; `engine` answers for everyone else.
        self.engines = engines or {engine.name: engine}
        self.tenants = tenants or TenantConfigs(None, tuple(self.engines))
        self.vision = vision
        self.dialogue = dialogue
        self.rules = rules or TenantRules(None)
        self.turn_log = turn_log
        self.tracer = tracer
        self.top_k = top_k
        self.max_question_chars = max_question_chars

    def check_text(self, text: str, field_name: str = "text", allow_empty: bool = False) -> str:
        """Return the normalized question, or raise InvalidArgumentError."""
        if len(text) > self.max_question_chars:
            raise InvalidArgumentError(
                field_name,
                text,
                f"a question has at most {self.max_question_chars} characters, got {len(text)}",
            )
        normalized = normalize_text(text)
        if not normalized and not allow_empty:
            raise InvalidArgumentError(field_name, text, "the question is empty")
        return normalized

    def ask(self, question: Question) -> AnswerResult:
        """Answer a question in one call."""
        for event in self.stream(question):
            if isinstance(event, AnswerResult):
                return event
        raise AssertionError("answer stream ended without a final answer")

    def stream(self, question: Question) -> Iterator[AnswerTextDelta | AnswerResult]:
        """Yield answer text deltas, then the AnswerResult once the turn is logged.

        Raises:
            InvalidArgumentError: the question is empty or too long.
            NotFoundError: the tenant has no knowledge.
        """
        text = self.check_text(question.text, allow_empty=question.image is not None)
        turn = _TurnContext(question, text, uuid.uuid4().hex)
        # NOTE: turns of one session are answered one at a time by Converse. Two
        # concurrent Ask calls with the same session id may interleave their updates.
        state = self.dialogue.memory.get(question.tenant, question.session_id)

        reading = None
        if question.image is not None:
            with self._stage("vision", turn):
                reading = self._read_image(question)
            turn.latency_ms.update(reading.latency_ms)
            if reading.product is not None:
                state.set_focus([reading.product.title])
            text = " ".join(p for p in (text, reading.query_text()) if p)

        if not text:
            final = self._image_unreadable(question.locale)
            yield AnswerTextDelta(turn.answer_id, final.text)
            plan = TurnPlan(text, OTHER_INTENT, 0.0, Slots(), ())
        else:
            plan, final = yield from self._answer(question, state, text, reading, turn)
        cited = [c.title for c in final.citations if c.kind == "record"]
        repeated = self.dialogue.record(
            state, text, plan, final.text, cited, final.handoff_reason == "low_confidence"
        )
        final = replace(final, intent=plan.intent, handoff_reason=repeated or final.handoff_reason)

        result = AnswerResult(
            answer_id=turn.answer_id,
            final=final,
            transcript=question.transcript,
            latency_ms=turn.latency_ms,
            slots=plan.slots.merge(reading.slots) if reading else plan.slots,
            focus=plan.focus_used,
            image_text=reading.text if reading else "",
            image_product=reading.product.title if reading and reading.product else "",
        )
        self._log_turn(question, result)
        yield result

    def _answer(
        self,
        question: Question,
        state: DialogueState,
        text: str,
        reading: ImageReading | None,
        turn: _TurnContext,
    ) -> Generator[AnswerTextDelta, None, tuple[TurnPlan, FinalAnswer]]:
        """Plan the turn, then hand off or retrieve and generate."""
        with self._stage("dialogue", turn):
            plan = self.dialogue.plan(state, text)
        if plan.handoff_reason:
            final = self._handoff_answer(plan, question.locale)
            yield AnswerTextDelta(turn.answer_id, final.text)
            return plan, final

        with self._stage("retrieval", turn):
            retrieval, plan = self._retrieve(question.tenant, text, plan)
        fallback = ""
        if state.low_confidence_streak + 1 >= LOW_CONFIDENCE_STREAK:
            fallback = phrase("handoff_repeated", question.locale)
        tenant = self.tenants.for_tenant(question.tenant)
        engine = self.engines.get(tenant.answer_engine, self.engine)
        if reading is not None and self.vision is not None and self.vision.vlm is not None:
            engine = PhotoAnswerEngine(self.vision.vlm, reading.image)
        request = AnswerRequest(
            text,
            retrieval,
            question.locale,
            fallback_text=fallback,
            history=tuple(state.history),
            system_prompt=tenant.persona.render(question.locale) if tenant.persona else "",
            cancel=question.cancel,
        )
        prefix = image_prefix(reading, question.locale) if reading else ""
        final = yield from self._generate(engine, request, turn, prefix)
        return plan, final

    def _read_image(self, question: Question) -> ImageReading:
        if self.vision is None:
            raise InvalidArgumentError("image", "image", "image input is disabled on this server")
        return self.vision.read(question.tenant, question.image)

    def _image_unreadable(self, locale: str) -> FinalAnswer:
        return FinalAnswer(
            text=phrase("image_nothing", locale),
            citations=(),
            confidence=0.0,
            intent=OTHER_INTENT,
            engine="vision",
            finish_reason="fallback",
        )

    def _retrieve(self, tenant: str, text: str, plan: TurnPlan) -> tuple[SearchResult, TurnPlan]:
        """Search with the planned query; drop the focus entity when it does not fit.

        A follow-up query is completed with the entity in focus. That guess holds when the
        entity's record comes first and the question asks for one of its fields or points
        back to it ("它", "这家"); otherwise the question is searched as asked.
        """
        retrieval = self.knowledge.search(tenant, plan.query, top_k=self.top_k)
        if not plan.focus_used:
            return retrieval, plan
        hits = retrieval.hits
        if hits and hits[0].title == plan.focus_used and refers_to_record(text, hits[0].fields):
            return retrieval, plan
        retrieval = self.knowledge.search(tenant, text, top_k=self.top_k)
        return retrieval, replace(plan, focus_used="")

    def _generate(
        self, engine: AnswerEngine, request: AnswerRequest, turn: _TurnContext, prefix: str = ""
    ) -> Generator[AnswerTextDelta, None, FinalAnswer]:
        """Stream `prefix` and the engine's answer through the compliance guard, sentence by
        sentence; the prefix says what a photo showed."""
        records = [h for h in request.retrieval.hits if h.kind == "record"]
        published = record_contacts(item for h in records for item in h.fields.items())
        guard = StreamingGuard(
            self.rules.for_tenant(turn.question.tenant), request.locale, also_allowed=published
        )
        released: list[str] = []
        for sentence in guard.feed(prefix):
            released.append(sentence)
            yield AnswerTextDelta(turn.answer_id, sentence)
        final = None
        with self._stage("answer", turn) as span:
            for event in engine.stream(request):
                if isinstance(event, FinalAnswer):
                    final = event
                elif isinstance(event, TextDelta):
                    for sentence in guard.feed(event.text):
                        released.append(sentence)
                        yield AnswerTextDelta(turn.answer_id, sentence)
            for sentence in guard.finish():
                released.append(sentence)
                yield AnswerTextDelta(turn.answer_id, sentence)
            span.set_attribute("kefu.engine", engine.name)
            span.set_attribute("kefu.confidence", final.confidence if final else 0.0)
        if final is None:
            raise AssertionError(f"engine {engine.name} ended without a final answer")
        for event in guard.events:
            logger.warning(
                "turn %d: compliance %s (%s, rule %s): %s",
                turn.question.turn, event.action, event.kind, event.rule_id, event.sentence,
            )  # fmt: skip
        return replace(final, text="".join(released))

    def _handoff_answer(self, plan: TurnPlan, locale: str) -> FinalAnswer:
        key = "handoff_complaint" if plan.handoff_reason == "complaint" else "handoff_human"
        return FinalAnswer(
            text=phrase(key, locale),
            citations=(),
            confidence=1.0,
            intent=plan.intent,
            engine="dialogue",
            handoff_reason=plan.handoff_reason,
        )

    @contextmanager
    def _stage(self, name: str, turn: _TurnContext) -> Iterator[Span]:
        """Run one stage in a span and record its latency in milliseconds."""
        started = time.perf_counter()
        with self.tracer.start_as_current_span(name, attributes=turn.attributes) as span:
            yield span
        turn.latency_ms[name] = round((time.perf_counter() - started) * 1000, 3)

    def _log_turn(self, question: Question, result: AnswerResult) -> None:
        final = result.final
        self.turn_log.record_turn(
            TurnRecord(
                answer_id=result.answer_id,
                tenant=question.tenant,
                session_id=question.session_id,
                question=question.text,
                answer=final.text,
                citations=[asdict(c) for c in final.citations],
                intent=final.intent,
                slots=result.slots.as_dict(),
                confidence=final.confidence,
                handoff=final.handoff,
                engine=final.engine,
                latency_ms=result.latency_ms,
            )
        )
        logger.info(
            "turn %d answered: answer_id=%s intent=%s confidence=%.2f handoff=%s question=%r",
            question.turn,
            result.answer_id,
            final.intent,
            final.confidence,
            final.handoff,
            mask_pii(question.text)[:80],
        )


@dataclass
class _TurnContext:
    question: Question
    text: str
    answer_id: str
    latency_ms: dict[str, float] = field(default_factory=dict)

    @property
    def attributes(self) -> dict[str, str | int]:
        return {
            ATTR_TENANT: self.question.tenant,
            ATTR_SESSION: self.question.session_id,
            ATTR_TURN: self.question.turn,
        }


def refers_to_record(question: str, fields: dict) -> bool:
    """Return True when a question asks for one of a record's fields or points back to it."""
    return bool(match_fields(question, list(fields))) or is_anaphoric(question)
