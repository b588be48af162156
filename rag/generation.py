"""Pieces shared by the LLM answer engines: generation options, the repetition guard and
the assembly of streamed model text into TextDelta events and one FinalAnswer."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from rag.answer import AnswerEvent, AnswerRequest, FinalAnswer, TextDelta, citation_of
from rag.knowledge import Hit, SearchResult
from rag.phrases import phrase
from rag.prompting import ChatPrompt, ReplyParser
from server.errors import InvalidArgumentError

logger = logging.getLogger(__name__)

# Both end tokens of Qwen chat models: instruct models end a turn with <|im_end|>, and
# base models or adapters trained without the chat template end with <|endoftext|>.
QWEN_STOP_TOKENS: tuple[str, ...] = ("<|im_end|>", "<|endoftext|>")

FINISH_REASONS: tuple[str, ...] = ("complete", "fallback", "length", "cancelled", "error")

ConfidenceScorer = Callable[[SearchResult], float]


@dataclass(frozen=True)
class GenerationOptions:
    """Sampling settings and limits of one generated answer.

    Attributes:
        max_new_tokens: cap on generated tokens; reaching it ends with finish_reason length.
        timeout_s: wall-clock cap on one answer in seconds, from the request to the last
            token; reaching it ends with finish_reason length, or error before any text.
        temperature: sampling temperature; 0 means greedy decoding.
        top_p: nucleus sampling mass, within (0, 1].
        top_k: sample among this many likeliest tokens; 0 means no limit.
        repetition_penalty: the transformers/vLLM repetition penalty; 1.0 is none.
        repeat_max_period: the repetition guard looks for loops of up to this many units
            (tokens for local models, characters for Triton).
        repeat_min_count: a loop must repeat this many times back to back to stop generation.
        repeat_min_span: and cover at least this many units, so "哈哈哈" does not count.
        stop_words: strings that end generation on servers that take stop strings.
        seed: sampling seed for reproducible answers; None draws a new one per answer.
    """

    max_new_tokens: int = 384
    timeout_s: float = 30.0
    temperature: float = 0.3
    top_p: float = 0.8
    top_k: int = 20
    repetition_penalty: float = 1.05
    repeat_max_period: int = 16
    repeat_min_count: int = 4
    repeat_min_span: int = 24
    stop_words: tuple[str, ...] = QWEN_STOP_TOKENS
    seed: int | None = None

    def __post_init__(self) -> None:
        _require(self.max_new_tokens >= 1, "max_new_tokens", self.max_new_tokens, "use 1 or more")
        _require(self.timeout_s > 0, "timeout_s", self.timeout_s, "use a positive number")
        _require(self.temperature >= 0, "temperature", self.temperature, "use 0 or more")
        _require(0 < self.top_p <= 1, "top_p", self.top_p, "use a value within (0, 1]")
        _require(self.top_k >= 0, "top_k", self.top_k, "use 0 (no limit) or more")
        _require(
            self.repetition_penalty > 0,
            "repetition_penalty",
            self.repetition_penalty,
            "use a positive number; 1.0 disables it",
        )
        _require(
            self.repeat_max_period >= 1,
            "repeat_max_period",
            self.repeat_max_period,
            "use 1 or more",
        )
        _require(
            self.repeat_min_count >= 2, "repeat_min_count", self.repeat_min_count, "use 2 or more"
        )
        _require(
            self.repeat_min_span >= 1, "repeat_min_span", self.repeat_min_span, "use 1 or more"
        )
        _require(
            all(isinstance(word, str) and word for word in self.stop_words),
            "stop_words",
            self.stop_words,
            "use non-empty strings",
        )

    def repetition_guard(self) -> RepetitionGuard:
        """Return a repetition guard with these options' limits."""
        return RepetitionGuard(self.repeat_max_period, self.repeat_min_count, self.repeat_min_span)


def _require(condition: bool, name: str, value: object, accepted: str) -> None:
    if not condition:
        raise InvalidArgumentError(f"generation.{name}", value, accepted)


@dataclass(frozen=True)
class RepetitionGuard:
    """Detects a generation loop: the same n-gram repeated back to back at the tail.

    Works on any sequence (token ids or text). A tail counts as a loop when, for some
    period n <= max_period, its last max(n * min_count, min_span) units repeat with
    period n.
    """

    max_period: int = 16
    min_count: int = 4
    min_span: int = 24

    def is_looping(self, units: Sequence) -> bool:
        """Return True when the end of `units` is a loop."""
        for period in range(1, self.max_period + 1):
            span = max(period * self.min_count, self.min_span)
            if len(units) < span:
                continue
            tail = units[len(units) - span :]
            if all(tail[i] == tail[i - period] for i in range(period, span)):
                return True
        return False


class ReplyStream:
    """Assembles one LLM answer from streamed raw model text.

    Engines call `feed` with each raw piece and send the TextDelta it returns, stop the
    model when `no_answer` becomes true, and end with the events of `finish`.
    """

    def __init__(
        self,
        request: AnswerRequest,
        prompt: ChatPrompt,
        engine: str,
        confidence: ConfidenceScorer | None = None,
    ) -> None:
        self.request = request
        self.prompt = prompt
        self.engine = engine
        self.confidence_scorer = confidence
        self.parser = ReplyParser(prompt.passages)

    @property
    def no_answer(self) -> bool:
        """True once the model has emitted NO_ANSWER_MARKER."""
        return self.parser.no_answer

    @property
    def sent_text(self) -> str:
        """The caller text sent so far."""
        return self.parser.text

    def feed(self, raw: str) -> TextDelta | None:
        """Add raw model text; return the delta to send, or None when all is held back."""
        ready = self.parser.feed(raw)
        return TextDelta(ready) if ready else None

    def finish(
        self, finish_reason: str, *, stop_reason: str = "", error: str = ""
    ) -> Iterator[AnswerEvent]:
        """Yield the last deltas and the FinalAnswer.

        Args:
            finish_reason: how generation ended: complete, length, cancelled or error.
                A reply with NO_ANSWER_MARKER becomes a fallback unless it was cancelled
                or failed.
            stop_reason: what stopped generation (end_token, max_new_tokens, time_limit,
                repetition, no_answer, cancelled), kept in `extra`.
            error: the failure message for finish_reason error, kept in `extra`.
        """
        if finish_reason not in FINISH_REASONS:
            raise ValueError(f"finish_reason {finish_reason!r} is not one of {FINISH_REASONS}")
        rest = self.parser.finish()
        if rest:
            yield TextDelta(rest)

        handoff_reason = ""
        if finish_reason == "error":
            handoff_reason = "engine_error"
        elif self.no_answer and finish_reason != "cancelled":
            finish_reason = "fallback"
            handoff_reason = "no_answer_in_context"
            yield TextDelta(self._fallback_text())

        yield self._final(finish_reason, handoff_reason, stop_reason, error)

    def _fallback_text(self) -> str:
        separator = "" if not self.parser.text or self.request.locale == "zh-CN" else " "
        text = separator + fallback_text(self.request)
        self.parser.text += text
        return text

    def _final(
        self, finish_reason: str, handoff_reason: str, stop_reason: str, error: str
    ) -> FinalAnswer:
        cited = [self.prompt.passages[pid] for pid in self.parser.cited_ids]
        extra: dict[str, object] = {"cited_ids": list(self.parser.cited_ids)}
        if stop_reason:
            extra["stop_reason"] = stop_reason
        if error:
            extra["error"] = error
        return FinalAnswer(
            text=self.parser.text,
            citations=tuple(citation_of(hit) for hit in cited),
            confidence=self._confidence(finish_reason, bool(cited)),
            intent=intent_of(cited[0]) if cited else "unknown",
            engine=self.engine,
            finish_reason=finish_reason,
            handoff_reason=handoff_reason,
            extra=extra,
        )

    def _confidence(self, finish_reason: str, has_citations: bool) -> float:
        if finish_reason in ("fallback", "error"):
            return 0.0
        if self.confidence_scorer is not None:
            return self.confidence_scorer(self.request.retrieval)
        # NOTE: without a retrieval scorer the confidence shows only whether the answer
        # cites a passage it was given. Pass the extractive engine's `confidence` method
        # for a calibrated value.
        return 1.0 if has_citations else 0.5


def no_passages_answer(request: AnswerRequest, engine: str) -> Iterator[AnswerEvent]:
    """Yield the fallback of a turn without retrieved passages, without running a model."""
    text = fallback_text(request)
    yield TextDelta(text)
    yield FinalAnswer(
        text=text,
        citations=(),
        confidence=0.0,
        intent="unknown",
        engine=engine,
        finish_reason="fallback",
        handoff_reason="no_answer_in_context",
        extra={"stop_reason": "no_passages"},
    )


def fallback_text(request: AnswerRequest) -> str:
    """Return the request's own fallback reply, or the locale's default fallback phrase."""
    return request.fallback_text or phrase("fallback", request.locale)


def intent_of(hit: Hit) -> str:
    """Return the intent of an answer built from `hit`: the FAQ category or the hit kind."""
    if hit.kind == "faq":
        return hit.category or "faq"
    return hit.kind
