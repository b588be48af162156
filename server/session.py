"""One Converse conversation: turns in order, control messages ahead of data.

Three tasks run per session. The reader converts requests and handles control at once:
a cancel stops the running turn without waiting behind queued data. The audio task feeds
the caller's audio to the recognizer and turns each finished utterance into a turn; speech
that starts while an answer is being spoken is a barge-in that stops the answer's audio.
The turn worker answers turns one at a time in the shared worker pool. A failing turn
becomes an error event and the session goes on.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass, field

from asr_tts.recognizer import (
    PartialDue,
    RecognizerEvent,
    StreamingRecognizer,
    UtteranceEnded,
    VoicePaused,
    VoiceStarted,
)
from server.assistant import AnswerResult, AnswerTextDelta, Assistant, Question
from server.errors import InvalidArgumentError, KefuError
from server.events import (
    AnswerDeltaEvent,
    AnswerEvent,
    AudioFlushEvent,
    AudioInput,
    AudioOutEvent,
    CancelInput,
    EndOfUtteranceInput,
    ErrorEvent,
    ImageInput,
    SessionEvent,
    SessionInput,
    SessionOptions,
    SessionStartedEvent,
    SpeechActivityEvent,
    TextInput,
    TranscriptEvent,
    TurnEndEvent,
)
from server.logs import session_id_var
from server.status import field_of, status_code_of
from server.voice import VoiceEngines, speak

logger = logging.getLogger(__name__)


@dataclass
class _Turn:
    """A question waiting for the worker: typed text, or a final transcript."""

    number: int
    text: str
    spoken: bool = False
    image: bytes | None = None
    latency_ms: dict[str, float] = field(default_factory=dict)
    queued_at: float = field(default_factory=time.monotonic)


@dataclass
class _Running:
    """The turn the worker is answering."""

    number: int
    task: asyncio.Task
    cancel: threading.Event
    answer_id: str = ""
    end_reason: str = "cancelled"


class ConverseSession:
    """Runs the turns of one conversation."""

    def __init__(
        self,
        options: SessionOptions,
        assistant: Assistant,
        voice: VoiceEngines,
        executor: Executor,
    ) -> None:
        self.options = options
        self.assistant = assistant
        self.voice = voice
        self.executor = executor
        self.recognizer: StreamingRecognizer | None = None
        if options.input_audio is not None:
            self.recognizer = voice.open_recognizer(
                options.input_audio,
                options.endpointing,
                options.hotwords,
                options.outputs.partial_transcripts,
            )
        if options.outputs.audio:
            voice.require_tts("config.outputs.audio")
        self._events: asyncio.Queue[SessionEvent | None] = asyncio.Queue()
        self._turns: asyncio.Queue[_Turn | None] = asyncio.Queue()
        self._audio: asyncio.Queue[SessionInput | None] = asyncio.Queue()
        self._turn_counter = 0
        self._running: _Running | None = None
        # Monotonic time until which the client is still playing the last answer's audio.
        self._playback_until = 0.0
        self._last_answer_id = ""
        self._decode: asyncio.Future | None = None
        self._voice_turn = 0
        self._audio_failed = False
        self._image = None
        self._image_failed = False

    async def run(self, inputs: AsyncIterator[SessionInput]) -> AsyncIterator[SessionEvent]:
        """Consume inputs until the client half-closes; yield events until all turns end."""
        session_id_var.set(self.options.session_id)
        logger.info("session started: tenant=%s", self.options.tenant)
        unsupported = self.voice.unsupported_hotwords(self.options.hotwords)
        await self._emit(SessionStartedEvent(0, self.options.session_id, unsupported))
        tasks = [asyncio.create_task(self._read(inputs)), asyncio.create_task(self._work())]
        if self.recognizer is not None:
            tasks.append(asyncio.create_task(self._listen()))
        try:
            while (event := await self._events.get()) is not None:
                yield event
        finally:
            self._cancel_running("cancelled")
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            logger.info("session ended after %d turns", self._turn_counter)

    async def report_error(self, exc: KefuError) -> None:
        """Send an error event for a malformed request; the session goes on."""
        await self._emit(ErrorEvent(0, status_code_of(exc).name, str(exc), field_of(exc)))

    async def _emit(self, event: SessionEvent) -> None:
        await self._events.put(event)

    def _next_turn(self) -> int:
        self._turn_counter += 1
        return self._turn_counter

    # reader

    async def _read(self, inputs: AsyncIterator[SessionInput]) -> None:
        try:
            async for item in inputs:
                await self._dispatch(item)
        finally:
            target = self._audio if self.recognizer is not None else self._turns
            await target.put(None)

    async def _dispatch(self, item: SessionInput) -> None:
        if isinstance(item, CancelInput):
            self._cancel_running("cancelled")
        elif isinstance(item, TextInput):
            await self._turns.put(_Turn(self._next_turn(), item.text))
        elif isinstance(item, AudioInput | EndOfUtteranceInput):
            if self.recognizer is None:
                field_name = "audio" if isinstance(item, AudioInput) else "control"
                await self.report_error(
                    InvalidArgumentError(
                        field_name, "audio", "set config.input_audio before sending audio"
                    )
                )
            elif not (isinstance(item, AudioInput) and not item.data):
                await self._audio.put(item)
        elif isinstance(item, ImageInput):
            await self._add_image_chunk(item)

    async def _add_image_chunk(self, item: ImageInput) -> None:
        """Collect an image's chunks; the last one makes the turn (photo plus its text)."""
        vision = self.assistant.vision
        if vision is None:
            await self.report_error(
                InvalidArgumentError("image", "image", "image input is disabled on this server")
            )
            return
        if self._image is None:
            from vision.intake import ImageAssembler

            self._image = ImageAssembler(vision.limits)
            self._image_failed = False
        if not self._image_failed:
            try:
                self._image.add(item.data)
            except KefuError as exc:
                # The rest of this image's chunks are dropped; the stream goes on.
                self._image_failed = True
                await self.report_error(exc)
        if item.last:
            assembler, self._image = self._image, None
            if not self._image_failed:
                turn = _Turn(self._next_turn(), item.text, image=assembler.finish())
                await self._turns.put(turn)

    def _cancel_running(self, reason: str) -> None:
        running = self._running
        if running is not None and not running.task.done():
            logger.info("turn %d stopped: %s", running.number, reason)
            running.end_reason = reason
            running.cancel.set()
            running.task.cancel()

    # audio

    async def _listen(self) -> None:
        recognizer = self.recognizer
        assert recognizer is not None
        try:
            while (item := await self._audio.get()) is not None:
                if self._audio_failed:
                    continue
                if isinstance(item, EndOfUtteranceInput):
                    await self._on_recognizer_events(recognizer.end_utterance())
                    continue
                await self._on_recognizer_events(self._feed(recognizer.feed, item.data))
            if not self._audio_failed:
                await self._on_recognizer_events(self._feed(recognizer.end_of_stream))
        finally:
            await self._turns.put(None)

    def _feed(self, step: Callable[..., list[RecognizerEvent]], *args) -> list[RecognizerEvent]:
        """Run a cheap recognizer step; undecodable audio becomes one error event."""
        try:
            return step(*args)
        except KefuError as exc:
            # The stream's audio cannot be decoded; text turns still work.
            self._audio_failed = True
            prefixed = exc.with_prefix("config.") if isinstance(exc, InvalidArgumentError) else exc
            self._events.put_nowait(
                ErrorEvent(0, status_code_of(exc).name, str(prefixed), field_of(prefixed))
            )
            return []

    async def _on_recognizer_events(self, events: list[RecognizerEvent]) -> None:
        for event in events:
            if isinstance(event, VoiceStarted):
                await self._on_voice_started(event)
            elif isinstance(event, VoicePaused):
                self._start_decode(self.recognizer.speculate, None)
            elif isinstance(event, PartialDue):
                self._start_decode(self.recognizer.partial, self._emit_partial)
            elif isinstance(event, UtteranceEnded):
                await self._on_utterance_ended(event)

    async def _on_voice_started(self, event: VoiceStarted) -> None:
        self._voice_turn = self._next_turn()
        await self._emit(SpeechActivityEvent(self._voice_turn, "started", event.offset_ms))
        if not self.options.outputs.audio:
            return
        running = self._running
        if running is not None and not running.task.done():
            self._cancel_running("barge_in")
            await self._emit(AudioFlushEvent(running.number, running.answer_id))
        elif time.monotonic() < self._playback_until:
            self._playback_until = 0.0
            await self._emit(AudioFlushEvent(self._voice_turn - 1, self._last_answer_id))

    def _start_decode(self, decode: Callable, on_done: Callable | None) -> None:
        """Run one costly decode in the pool unless one is already running."""
        if self._decode is not None and not self._decode.done():
            return
        loop = asyncio.get_running_loop()
        self._decode = loop.run_in_executor(self.executor, decode)
        if on_done is not None:
            self._decode.add_done_callback(on_done)

    def _emit_partial(self, future: asyncio.Future) -> None:
        if future.cancelled() or future.exception() is not None:
            return
        result = future.result()
        if result.text:
            self._events.put_nowait(TranscriptEvent(self._voice_turn, result.text, False))

    async def _on_utterance_ended(self, event: UtteranceEnded) -> None:
        turn = self._voice_turn
        await self._emit(SpeechActivityEvent(turn, "ended", event.end_ms))
        started = time.monotonic()
        if self._decode is not None:
            await asyncio.gather(self._decode, return_exceptions=True)
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(self.executor, self.recognizer.finalize)
        except Exception as exc:
            logger.exception("turn %d: final recognition failed", turn)
            await self._fail_turn(turn, exc)
            return
        latency = {
            "endpointing": float(event.end_ms - event.last_voice_ms),
            "asr_final": round((time.monotonic() - started) * 1000, 3),
        }
        await self._emit(TranscriptEvent(turn, result.text, True, event.start_ms, event.end_ms))
        if not result.text:
            await self._emit(TurnEndEvent(turn, "no_speech", latency))
            return
        await self._turns.put(_Turn(turn, result.text, spoken=True, latency_ms=latency))

    # turns

    async def _work(self) -> None:
        try:
            while (turn := await self._turns.get()) is not None:
                await self._run(turn)
        finally:
            await self._events.put(None)

    async def _run(self, turn: _Turn) -> None:
        cancel = threading.Event()
        task = asyncio.create_task(self._answer(turn, cancel))
        running = _Running(turn.number, task, cancel)
        self._running = running
        try:
            await task
        except asyncio.CancelledError:
            if not cancel.is_set():
                raise
            await self._emit(TurnEndEvent(turn.number, running.end_reason, turn.latency_ms))
        except KefuError as exc:
            await self._fail_turn(turn.number, exc)
        except Exception as exc:
            logger.exception("turn %d failed", turn.number)
            await self._fail_turn(turn.number, exc)
        finally:
            self._running = None

    async def _fail_turn(self, turn: int, exc: BaseException) -> None:
        code = status_code_of(exc).name
        message = str(exc) if isinstance(exc, KefuError) else "internal error"
        if not isinstance(exc, InvalidArgumentError):
            logger.warning("turn %d failed: %s: %s", turn, code, message)
        await self._emit(ErrorEvent(turn, code, message, field_of(exc)))
        await self._emit(TurnEndEvent(turn, "error"))

    async def _answer(self, turn: _Turn, cancel: threading.Event) -> None:
        question = Question(
            tenant=self.options.tenant,
            text=turn.text,
            session_id=self.options.session_id,
            locale=self.options.locale,
            turn=turn.number,
            transcript=turn.text if turn.spoken else "",
            cancel=cancel,
            image=turn.image,
        )
        turn.latency_ms["queue"] = round((time.monotonic() - turn.queued_at) * 1000, 3)
        loop = asyncio.get_running_loop()

        def emit(event: SessionEvent) -> None:
            if not cancel.is_set():
                loop.call_soon_threadsafe(self._events.put_nowait, event)

        def run() -> None:
            session_id_var.set(self.options.session_id)
            _TurnRun(self, turn, question, cancel, emit, loop).run()

        await loop.run_in_executor(self.executor, run)

    def _note_playback(self, answer_id: str, until: float) -> None:
        self._last_answer_id = answer_id
        self._playback_until = until
        if self._running is not None:
            self._running.answer_id = answer_id


class _TurnRun:
    """The blocking part of one turn, run in a worker thread: answer, then speak it."""

    def __init__(
        self,
        session: ConverseSession,
        turn: _Turn,
        question: Question,
        cancel: threading.Event,
        emit: Callable[[SessionEvent], None],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.session = session
        self.turn = turn
        self.question = question
        self.cancel = cancel
        self.emit = emit
        self.loop = loop
        self.result: AnswerResult | None = None
        self.started = time.monotonic()
        self.first_text_at: float | None = None
        self.answer_id = ""

    def run(self) -> None:
        options = self.session.options
        pieces = self._text_pieces()
        if options.outputs.audio:
            self._speak(pieces)
        else:
            for _ in pieces:
                pass
        if self.cancel.is_set() or self.result is None:
            return
        latency = {**self.turn.latency_ms, **self.result.latency_ms}
        self.emit(TurnEndEvent(self.turn.number, "answered", latency))

    def _text_pieces(self) -> Iterator[str]:
        deltas = self.session.options.outputs.text_deltas
        for event in self.session.assistant.stream(self.question):
            if self.cancel.is_set():
                return
            if isinstance(event, AnswerTextDelta):
                if self.first_text_at is None:
                    self.first_text_at = time.monotonic()
                    self.answer_id = event.answer_id
                if deltas:
                    self.emit(AnswerDeltaEvent(self.turn.number, event.answer_id, event.text))
                yield event.text
            elif isinstance(event, AnswerResult):
                self.result = event
                self.emit(AnswerEvent(self.turn.number, event))

    def _speak(self, pieces: Iterator[str]) -> None:
        session = self.session
        tts = session.voice.require_tts("config.outputs.audio")
        playback_start = None
        for chunk in speak(tts, pieces, session.options.output_audio, self.cancel.is_set):
            now = time.monotonic()
            if playback_start is None:
                playback_start = now
                first_text = self.first_text_at or now
                self.turn.latency_ms["tts_first_chunk"] = round((now - first_text) * 1000, 3)
                self.turn.latency_ms["to_first_audio"] = round((now - self.started) * 1000, 3)
            answer_id = self.answer_id
            self.emit(AudioOutEvent(self.turn.number, answer_id, chunk.data, chunk.offset_ms))
            until = playback_start + (chunk.offset_ms + chunk.duration_ms) / 1000
            self.loop.call_soon_threadsafe(session._note_playback, answer_id, until)
