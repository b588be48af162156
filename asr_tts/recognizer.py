"""Streaming recognition of one caller's audio: decode, endpoint, transcribe.

`StreamingRecognizer.feed` is cheap (decoding, resampling and VAD) and returns typed events;
the costly decodes (`partial`, `speculate`, `finalize`) are separate calls that the server
runs in its worker pool. While one of them runs, new audio is held back and handed to the
ASR stream afterwards, so a decode never sees its buffer change under it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from asr_tts.asr import AsrEngine, AsrOptions, FinalResult, PartialResult
from asr_tts.audio import AudioDecoder, InputAudioFormat
from asr_tts.vad import (
    Endpointer,
    EndpointerConfig,
    SilenceStarted,
    SpeechEnded,
    SpeechResumed,
    SpeechStarted,
)

logger = logging.getLogger(__name__)

_MS_PER_SECOND = 1000
# Audio kept before speech starts, beyond the endpointer's pre-speech window.
_HISTORY_MARGIN_MS = 500


@dataclass(frozen=True)
class VoiceStarted:
    """The caller started speaking at `offset_ms` from the stream start."""

    offset_ms: int


@dataclass(frozen=True)
class VoicePaused:
    """The caller paused; a speculative final decode may start now."""

    offset_ms: int


@dataclass(frozen=True)
class PartialDue:
    """Enough new speech arrived for another partial transcript."""


@dataclass(frozen=True)
class UtteranceEnded:
    """The utterance is over; call `finalize` for its transcript.

    Attributes:
        start_ms, end_ms: the utterance's span from the stream start.
        last_voice_ms: end of the last voiced audio, before the closing silence.
        reason: silence, max_length or end_of_stream.
    """

    start_ms: int
    end_ms: int
    last_voice_ms: int
    reason: str


RecognizerEvent = VoiceStarted | VoicePaused | PartialDue | UtteranceEnded


@dataclass
class _Utterance:
    start_sample: int
    paused_at: int | None = None
    speculation_valid: bool = False
    samples_since_partial: int = 0
    ended: bool = False
    speculated_pause: int | None = None
    held: list[np.ndarray] = field(default_factory=list)


class StreamingRecognizer:
    """Recognition state of one audio stream; one instance per Converse or Recognize call.

    Args:
        input_format: the format the client declared.
        engine: the shared ASR engine.
        endpointing: end-of-utterance settings.
        options: language, hotwords and the partial interval (0 disables partials).
    """

    def __init__(
        self,
        input_format: InputAudioFormat,
        engine: AsrEngine,
        endpointing: EndpointerConfig,
        options: AsrOptions,
    ) -> None:
        self.sample_rate_hz = engine.sample_rate_hz
        self.decoder = AudioDecoder(input_format, output_sample_rate_hz=self.sample_rate_hz)
        self.endpointer = Endpointer(endpointing, sample_rate_hz=self.sample_rate_hz)
        self.options = options
        # The stream decodes partials only when asked, so `feed` never runs the model.
        stream_options = AsrOptions(options.language, options.hotwords, partial_interval_ms=0)
        self._stream = engine.open_stream(stream_options)
        self._history = np.zeros(0, dtype=np.float32)
        self._history_start = 0
        self._samples_seen = 0
        self._utterance: _Utterance | None = None
        self._busy = False
        self._lock = threading.Lock()
        # Stream position where the current endpointer started; an end of utterance from
        # the client replaces the endpointer, whose offsets then count from there.
        self._endpointer_origin = 0
        self._keep_samples = self._ms_to_samples(endpointing.pre_speech_ms + _HISTORY_MARGIN_MS)

    @property
    def in_utterance(self) -> bool:
        return self._utterance is not None

    def feed(self, data: bytes) -> list[RecognizerEvent]:
        """Take the next chunk of client bytes and return what happened in it.

        Raises:
            InvalidArgumentError: the audio contradicts the declared format.
        """
        samples = self.decoder.feed(data)
        return self._process(samples)

    def end_of_stream(self) -> list[RecognizerEvent]:
        """The client half-closed: flush the decoder and end an open utterance."""
        events = self._process(self.decoder.flush())
        return events + self._translate(self.endpointer.flush())

    def end_utterance(self) -> list[RecognizerEvent]:
        """The client sent end of utterance: end the open one now, if any."""
        if self._utterance is None:
            return []
        end = self._samples_seen
        utterance = self._utterance
        utterance.ended = True
        last_voice = utterance.paused_at if utterance.paused_at is not None else end
        self.endpointer = Endpointer(self.endpointer.config, sample_rate_hz=self.sample_rate_hz)
        self._endpointer_origin = end
        return [
            UtteranceEnded(self._ms(utterance.start_sample), self._ms(end), self._ms(last_voice),
                           "end_of_utterance")
        ]  # fmt: skip

    # costly calls, run in a worker thread one at a time per stream

    def partial(self) -> PartialResult:
        """Decode the open utterance for an interim transcript."""
        with self._busy_stream():
            return self._stream.partial()

    def speculate(self) -> FinalResult:
        """Decode the utterance as final while the endpointer still waits for silence."""
        with self._busy_stream():
            utterance = self._utterance
            pause = utterance.paused_at if utterance is not None else None
            result = self._stream.speculate()
            if utterance is not None:
                utterance.speculated_pause = pause
            return result

    def finalize(self) -> FinalResult:
        """Return the utterance's transcript, reusing the speculative decode when no speech
        came after it, and get ready for the next utterance."""
        with self._busy_stream():
            utterance = self._utterance
            # The speculation counts only if it ran for the pause that ended the utterance:
            # speech that resumed after it, or a pause it missed, needs a fresh decode.
            reuse = (
                utterance is not None
                and utterance.speculation_valid
                and utterance.speculated_pause is not None
                and utterance.speculated_pause == utterance.paused_at
            )
            result = self._stream.finalize(reuse_speculation=reuse)
            self._utterance = None
            return result

    @contextmanager
    def _busy_stream(self) -> Iterator[None]:
        with self._lock:
            self._busy = True
        try:
            yield
        finally:
            with self._lock:
                self._busy = False
                self._release_held()

    # event handling

    def _process(self, samples: np.ndarray) -> list[RecognizerEvent]:
        if not len(samples):
            return []
        self._remember(samples)
        events = self._translate(self.endpointer.feed(samples))
        if self._utterance is not None and not self._utterance.ended:
            self._add_to_utterance(samples, newly_started=any(
                isinstance(e, VoiceStarted) for e in events))  # fmt: skip
            if self._partial_due():
                events.append(PartialDue())
        return events

    def _translate(self, raw_events: list) -> list[RecognizerEvent]:
        events: list[RecognizerEvent] = []
        origin = self._endpointer_origin
        for raw in raw_events:
            if isinstance(raw, SpeechStarted):
                start = origin + raw.start_sample
                self._open_utterance(start)
                events.append(VoiceStarted(self._ms(start)))
            elif isinstance(raw, SilenceStarted) and self._utterance is not None:
                self._utterance.paused_at = origin + raw.end_sample
                self._utterance.speculation_valid = True
                events.append(VoicePaused(self._ms(origin + raw.end_sample)))
            elif isinstance(raw, SpeechResumed) and self._utterance is not None:
                self._utterance.paused_at = None
                self._utterance.speculation_valid = False
            elif isinstance(raw, SpeechEnded) and self._utterance is not None:
                self._utterance.ended = True
                last_voice = self._utterance.paused_at or origin + raw.end_sample
                events.append(
                    UtteranceEnded(
                        self._ms(self._utterance.start_sample),
                        self._ms(origin + raw.end_sample),
                        self._ms(last_voice),
                        str(raw.reason),
                    )
                )
        return events

    def _open_utterance(self, start_sample: int) -> None:
        self._utterance = _Utterance(start_sample)
        offset = max(0, start_sample - self._history_start)
        self._give(self._history[offset:])

    def _add_to_utterance(self, samples: np.ndarray, newly_started: bool) -> None:
        # A newly opened utterance already took these samples from the history.
        if not newly_started:
            self._give(samples)

    def _give(self, samples: np.ndarray) -> None:
        utterance = self._utterance
        if utterance is None or not len(samples):
            return
        utterance.samples_since_partial += len(samples)
        with self._lock:
            if self._busy:
                utterance.held.append(np.array(samples, dtype=np.float32))
            else:
                self._stream.accept(samples)

    def _release_held(self) -> None:
        utterance = self._utterance
        if utterance is None:
            return
        for samples in utterance.held:
            self._stream.accept(samples)
        utterance.held.clear()

    def _partial_due(self) -> bool:
        interval = self.options.partial_interval_ms
        utterance = self._utterance
        if not interval or utterance is None:
            return False
        if utterance.samples_since_partial < self._ms_to_samples(interval):
            return False
        utterance.samples_since_partial = 0
        return True

    def _remember(self, samples: np.ndarray) -> None:
        self._samples_seen += len(samples)
        history = np.concatenate([self._history, samples])
        drop = max(0, len(history) - self._keep_samples)
        self._history = history[drop:]
        self._history_start = self._samples_seen - len(self._history)

    def _ms(self, samples: int) -> int:
        return samples * _MS_PER_SECOND // self.sample_rate_hz

    def _ms_to_samples(self, ms: int) -> int:
        return ms * self.sample_rate_hz // _MS_PER_SECOND
