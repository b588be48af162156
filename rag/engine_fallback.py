"""An answer engine that falls back to a backup engine when the LLM engine fails.

The primary (LLM) engine runs in a worker thread so that its first delta can have a
deadline. When it fails, raises or passes that deadline before sending any text, the
backup engine (the extractive engine) answers the turn instead and a warning is logged.
Once text has reached the caller the turn cannot start over, so a later failure ends
the answer with finish_reason error and the engine_error phrase, which offers a human.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from rag.answer import AnswerEngine, AnswerEvent, AnswerRequest, FinalAnswer, TextDelta
from rag.phrases import phrase

logger = logging.getLogger(__name__)

# How often the consumer wakes up to relay the caller's cancellation to the primary.
POLL_INTERVAL_S = 0.05


@dataclass(frozen=True)
class _Failure:
    """The primary engine raised, or ended without a FinalAnswer."""

    message: str


class FallbackEngine:
    """Streams the primary engine's answer, or the backup engine's when the primary fails."""

    def __init__(
        self,
        primary: AnswerEngine,
        backup: AnswerEngine,
        *,
        first_delta_timeout_s: float = 8.0,
        join_timeout_s: float = 10.0,
    ) -> None:
        """Wrap `primary` with `backup`.

        Args:
            first_delta_timeout_s: time the primary has to send its first text, in
                seconds; after it the backup answers.
            join_timeout_s: time to wait for the primary's thread to end after it is
                cancelled, in seconds; a thread still running after it is logged and left.
        """
        if first_delta_timeout_s <= 0:
            raise ValueError(f"first_delta_timeout_s must be positive, got {first_delta_timeout_s}")
        self.primary = primary
        self.backup = backup
        self.name = primary.name
        self.first_delta_timeout_s = first_delta_timeout_s
        self.join_timeout_s = join_timeout_s

    def stream(self, request: AnswerRequest) -> Iterator[AnswerEvent]:
        """Stream one answer: TextDelta events, then one FinalAnswer."""
        primary_cancel = threading.Event()
        events: queue.Queue = queue.Queue()
        worker = threading.Thread(
            target=_pump,
            args=(self.primary, dataclasses.replace(request, cancel=primary_cancel), events),
            name="kefu-llm-primary",
            daemon=True,
        )
        worker.start()
        try:
            yield from self._relay(request, events, primary_cancel)
        finally:
            primary_cancel.set()
            worker.join(self.join_timeout_s)
            if worker.is_alive():
                logger.warning(
                    "%s engine still running %.1f s after cancellation; its thread is left "
                    "to finish",
                    self.primary.name, self.join_timeout_s,
                )  # fmt: skip

    def _relay(
        self, request: AnswerRequest, events: queue.Queue, primary_cancel: threading.Event
    ) -> Iterator[AnswerEvent]:
        deadline = time.monotonic() + self.first_delta_timeout_s
        sent: list[str] = []
        while True:
            if request.cancel is not None and request.cancel.is_set():
                primary_cancel.set()
            if not sent and time.monotonic() >= deadline:
                primary_cancel.set()
                message = f"no text within {self.first_delta_timeout_s} s"
                yield from self._backup_answer(request, message)
                return
            try:
                event = events.get(timeout=POLL_INTERVAL_S)
            except queue.Empty:
                continue

            if isinstance(event, TextDelta):
                sent.append(event.text)
                yield event
            elif isinstance(event, FinalAnswer) and event.finish_reason != "error":
                yield event
                return
            else:
                yield from self._failed(request, event, "".join(sent))
                return

    def _failed(
        self, request: AnswerRequest, event: FinalAnswer | _Failure, sent_text: str
    ) -> Iterator[AnswerEvent]:
        if isinstance(event, FinalAnswer):
            message = str(event.extra.get("error") or "the engine ended with an error")
        else:
            message = event.message
        if not sent_text:
            yield from self._backup_answer(request, message)
            return

        logger.warning(
            "%s engine failed after sending text: %s; ending the answer with a handoff",
            self.primary.name, message,
        )  # fmt: skip
        apology = phrase("engine_error", request.locale)
        separator = "" if request.locale == "zh-CN" else " "
        yield TextDelta(separator + apology)
        yield FinalAnswer(
            text=sent_text + separator + apology,
            citations=event.citations if isinstance(event, FinalAnswer) else (),
            confidence=0.0,
            intent=event.intent if isinstance(event, FinalAnswer) else "unknown",
            engine=self.primary.name,
            finish_reason="error",
            handoff_reason="engine_error",
            extra={"error": message},
        )

    def _backup_answer(self, request: AnswerRequest, reason: str) -> Iterator[AnswerEvent]:
        logger.warning(
            "%s engine failed before its first text (%s); answering with the %s engine",
            self.primary.name, reason, self.backup.name,
        )  # fmt: skip
        for event in self.backup.stream(request):
            if isinstance(event, FinalAnswer):
                extra = {
                    **event.extra,
                    "primary_engine": self.primary.name,
                    "primary_error": reason,
                }
                event = dataclasses.replace(event, extra=extra)
            yield event


def _pump(engine: AnswerEngine, request: AnswerRequest, events: queue.Queue) -> None:
    """Run the primary engine in the worker thread, putting its events on the queue."""
    stream = engine.stream(request)
    try:
        for event in stream:
            events.put(event)
            if isinstance(event, FinalAnswer):
                return
    except Exception as exc:  # noqa: BLE001 - any failure becomes the backup's turn
        logger.debug("%s engine raised", engine.name, exc_info=True)
        events.put(_Failure(f"{type(exc).__name__}: {exc}"))
        return
    finally:
        stream.close()
    events.put(_Failure("the engine ended without a final answer"))
