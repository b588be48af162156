"""The answer pipeline of one turn: validate, retrieve, answer, log.

Plain synchronous code that the gRPC layer runs in its worker pool; tests call it
directly. Each stage runs in an OpenTelemetry span carrying the tenant and session ids.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

from opentelemetry.trace import Tracer

from rag.answer import AnswerEngine, AnswerRequest, FinalAnswer, TextDelta
from rag.clean import normalize_text
from rag.knowledge import KnowledgeBase, validate_tenant
from rag.phrases import normalize_locale
from server.errors import InvalidArgumentError
from server.telemetry import ATTR_SESSION, ATTR_TENANT, ATTR_TURN
from server.turnlog import TurnLog, TurnRecord, mask_text

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


class Assistant:
    """Answers questions from a tenant's knowledge base and logs every turn."""

    def __init__(
        self,
        knowledge: KnowledgeBase,
        engine: AnswerEngine,
        turn_log: TurnLog,
        tracer: Tracer,
        *,
        top_k: int = 5,
        max_question_chars: int = 2000,
    ) -> None:
        self.knowledge = knowledge
        self.engine = engine
        self.turn_log = turn_log
        self.tracer = tracer
        self.top_k = top_k
        self.max_question_chars = max_question_chars

    def check_text(self, text: str, field_name: str = "text") -> str:
        """Return the normalized question, or raise InvalidArgumentError."""
        if len(text) > self.max_question_chars:
            raise InvalidArgumentError(
                field_name,
                text,
                f"a question has at most {self.max_question_chars} characters, got {len(text)}",
            )
        normalized = normalize_text(text)
        if not normalized:
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
        text = self.check_text(question.text)
        answer_id = uuid.uuid4().hex
        attributes = {
            ATTR_TENANT: question.tenant,
            ATTR_SESSION: question.session_id,
            ATTR_TURN: question.turn,
        }
        latency: dict[str, float] = {}

        started = time.perf_counter()
        with self.tracer.start_as_current_span("retrieval", attributes=attributes):
            retrieval = self.knowledge.search(question.tenant, text, top_k=self.top_k)
        latency["retrieval"] = _ms_since(started)

        started = time.perf_counter()
        final = None
        with self.tracer.start_as_current_span("answer", attributes=attributes) as span:
            request = AnswerRequest(question=text, retrieval=retrieval, locale=question.locale)
            for event in self.engine.stream(request):
                if isinstance(event, FinalAnswer):
                    final = event
                elif isinstance(event, TextDelta):
                    yield AnswerTextDelta(answer_id, event.text)
            span.set_attribute("kefu.engine", self.engine.name)
            span.set_attribute("kefu.confidence", final.confidence if final else 0.0)
        latency["answer"] = _ms_since(started)
        if final is None:
            raise AssertionError(f"engine {self.engine.name} ended without a final answer")

        result = AnswerResult(
            answer_id=answer_id,
            final=final,
            transcript=question.transcript,
            latency_ms=latency,
        )
        self._log_turn(question, result)
        yield result

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
            mask_text(question.text)[:80],
        )


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
