"""One Converse conversation: turns in order, control messages ahead of data.

The session reads typed inputs, runs each turn's pipeline in the shared worker pool and
emits typed events. A cancel stops the current turn at once and never waits behind
queued data; a failing turn becomes an error event and the session goes on.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import Executor
from dataclasses import dataclass, field

from rag.phrases import normalize_locale
from server.assistant import AnswerResult, AnswerTextDelta, Assistant, Question
from server.errors import InvalidArgumentError, KefuError, UnimplementedError
from server.logs import session_id_var
from server.status import field_of, status_code_of

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutputOptions:
    text_deltas: bool = False
    audio: bool = False
    partial_transcripts: bool = False


@dataclass(frozen=True)
class SessionOptions:
    """Validated first request of a conversation."""

    tenant: str
    session_id: str
    locale: str = "zh-CN"
    outputs: OutputOptions = field(default_factory=OutputOptions)
    hotwords: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        from rag.knowledge import validate_tenant

        validate_tenant(self.tenant, "config.tenant")
        object.__setattr__(self, "locale", normalize_locale(self.locale, "config.locale"))
        if not self.session_id:
            object.__setattr__(self, "session_id", uuid.uuid4().hex)


# Inputs after the config.


@dataclass(frozen=True)
class TextInput:
    text: str


@dataclass(frozen=True)
class AudioInput:
    data: bytes


@dataclass(frozen=True)
class ImageInput:
    data: bytes
    last: bool
    text: str = ""


@dataclass(frozen=True)
class CancelInput:
    pass


@dataclass(frozen=True)
class EndOfUtteranceInput:
    pass


SessionInput = TextInput | AudioInput | ImageInput | CancelInput | EndOfUtteranceInput


# Events to the client. `turn` is 0 for session-level events.


@dataclass(frozen=True)
class SessionStartedEvent:
    turn: int
    session_id: str
    unsupported_hotwords: tuple[str, ...] = ()


@dataclass(frozen=True)
class AnswerDeltaEvent:
    turn: int
    answer_id: str
    text: str


@dataclass(frozen=True)
class AnswerEvent:
    turn: int
    result: AnswerResult


@dataclass(frozen=True)
class TurnEndEvent:
    turn: int
    reason: str


@dataclass(frozen=True)
class ErrorEvent:
    turn: int
    code: str
    message: str
    field: str = ""


SessionEvent = SessionStartedEvent | AnswerDeltaEvent | AnswerEvent | TurnEndEvent | ErrorEvent


class ConverseSession:
    """Runs the turns of one conversation."""

    def __init__(self, options: SessionOptions, assistant: Assistant, executor: Executor) -> None:
        self.options = options
        self.assistant = assistant
        self.executor = executor
        self._events: asyncio.Queue[SessionEvent | None] = asyncio.Queue()
        self._turns: asyncio.Queue[SessionInput | None] = asyncio.Queue()
        self._turn_number = 0
        self._current: asyncio.Task | None = None
        self._cancel_flag = threading.Event()

    async def run(self, inputs: AsyncIterator[SessionInput]) -> AsyncIterator[SessionEvent]:
        """Consume inputs until the client half-closes; yield events until all turns end."""
        session_id_var.set(self.options.session_id)
        logger.info("session started: tenant=%s", self.options.tenant)
        await self._events.put(SessionStartedEvent(turn=0, session_id=self.options.session_id))
        reader = asyncio.create_task(self._read(inputs))
        worker = asyncio.create_task(self._work())
        try:
            while (event := await self._events.get()) is not None:
                yield event
        finally:
            for task in (reader, worker):
                task.cancel()
            await asyncio.gather(reader, worker, return_exceptions=True)
            logger.info("session ended after %d turns", self._turn_number)

    async def report_error(self, exc: KefuError) -> None:
        """Send an error event for a malformed request; the session goes on."""
        await self._events.put(ErrorEvent(0, status_code_of(exc).name, str(exc), field_of(exc)))

    async def _read(self, inputs: AsyncIterator[SessionInput]) -> None:
        try:
            async for item in inputs:
                if isinstance(item, CancelInput):
                    self._cancel_current()
                    continue
                await self._turns.put(item)
        finally:
            await self._turns.put(None)

    def _cancel_current(self) -> None:
        # Control first: the running turn stops now, whatever is queued behind it.
        if self._current is not None and not self._current.done():
            logger.info("turn %d cancelled by the client", self._turn_number)
            self._cancel_flag.set()
            self._current.cancel()

    async def _work(self) -> None:
        try:
            while (item := await self._turns.get()) is not None:
                self._turn_number += 1
                self._cancel_flag = threading.Event()
                self._current = asyncio.create_task(self._run_turn(self._turn_number, item))
                try:
                    await self._current
                except asyncio.CancelledError:
                    if not self._cancel_flag.is_set():
                        raise
                    await self._events.put(TurnEndEvent(self._turn_number, "cancelled"))
        finally:
            await self._events.put(None)

    async def _run_turn(self, turn: int, item: SessionInput) -> None:
        try:
            if isinstance(item, TextInput):
                await self._answer_text(turn, item.text)
            elif isinstance(item, AudioInput | EndOfUtteranceInput):
                raise UnimplementedError(
                    "speech input awaits the ASR engine (faster-whisper), not yet served"
                )
            elif isinstance(item, ImageInput):
                raise UnimplementedError("image input awaits the OCR engine, not yet served")
        except KefuError as exc:
            await self._fail_turn(turn, exc)
        except Exception as exc:
            logger.exception("turn %d failed", turn)
            await self._fail_turn(turn, exc)

    async def _fail_turn(self, turn: int, exc: BaseException) -> None:
        code = status_code_of(exc).name
        message = str(exc) if isinstance(exc, KefuError) else "internal error"
        if not isinstance(exc, InvalidArgumentError):
            logger.warning("turn %d failed: %s: %s", turn, code, message)
        await self._events.put(ErrorEvent(turn, code, message, field_of(exc)))
        await self._events.put(TurnEndEvent(turn, "error"))

    async def _answer_text(self, turn: int, text: str) -> None:
        question = Question(
            tenant=self.options.tenant,
            text=text,
            session_id=self.options.session_id,
            locale=self.options.locale,
            turn=turn,
        )
        loop = asyncio.get_running_loop()
        cancel = self._cancel_flag
        deltas = self.options.outputs.text_deltas

        def emit(event: SessionEvent) -> None:
            if not cancel.is_set():
                loop.call_soon_threadsafe(self._events.put_nowait, event)

        def run() -> None:
            session_id_var.set(self.options.session_id)
            for event in self.assistant.stream(question):
                if cancel.is_set():
                    return
                if isinstance(event, AnswerTextDelta):
                    if deltas:
                        emit(AnswerDeltaEvent(turn, event.answer_id, event.text))
                elif isinstance(event, AnswerResult):
                    emit(AnswerEvent(turn, event))
                    emit(TurnEndEvent(turn, "answered"))

        await loop.run_in_executor(self.executor, run)
