"""Voice activity detection and end-of-utterance detection.

`WebRtcVad` classifies fixed-length frames as speech or not. `Endpointer` turns those
decisions into typed events for one stream: `SpeechStarted`, `SilenceStarted` (where a
speculative final decode may begin), `SpeechResumed` (the speculation is void),
`SpeechEnded` (end of utterance, with sample offsets). The endpointer keeps no audio, only
offsets and a partial frame, so an endless stream of silence costs one VAD call per frame.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import numpy as np
import webrtcvad

from asr_tts.audio import ASR_SAMPLE_RATE_HZ, float_to_pcm16
from server.errors import InvalidArgumentError

logger = logging.getLogger(__name__)

WEBRTC_FRAME_MS = (10, 20, 30)
WEBRTC_SAMPLE_RATES_HZ = (8_000, 16_000, 32_000, 48_000)
_MS_PER_SECOND = 1000


class VoiceActivityDetector(Protocol):
    """Classifies one frame of audio as speech or not."""

    sample_rate_hz: int
    frame_ms: int

    def is_speech(self, frame: np.ndarray) -> bool:
        """Classify one frame: float32 mono, exactly `frame_ms` long at `sample_rate_hz`."""
        ...


class WebRtcVad:
    """The WebRTC VAD (GMM based) from the `webrtcvad-wheels` package.

    Args:
        aggressiveness: 0 (keeps the most audio as speech) to 3 (filters noise hardest).
        sample_rate_hz: 8000, 16000, 32000 or 48000.
        frame_ms: 10, 20 or 30.
    """

    def __init__(
        self, aggressiveness: int = 2, sample_rate_hz: int = ASR_SAMPLE_RATE_HZ, frame_ms: int = 30
    ) -> None:
        if aggressiveness not in range(4):
            raise InvalidArgumentError("vad.aggressiveness", aggressiveness, "use 0, 1, 2 or 3")
        if sample_rate_hz not in WEBRTC_SAMPLE_RATES_HZ:
            raise InvalidArgumentError(
                "vad.sample_rate_hz", sample_rate_hz, "WebRTC VAD works at 8000/16000/32000/48000"
            )
        if frame_ms not in WEBRTC_FRAME_MS:
            raise InvalidArgumentError("vad.frame_ms", frame_ms, "WebRTC VAD takes 10, 20 or 30")
        self.sample_rate_hz = sample_rate_hz
        self.frame_ms = frame_ms
        self._vad = webrtcvad.Vad(aggressiveness)

    def is_speech(self, frame: np.ndarray) -> bool:
        """Classify one frame: float32 mono, `frame_ms` long at `sample_rate_hz`."""
        return self._vad.is_speech(float_to_pcm16(frame).tobytes(), self.sample_rate_hz)


def speech_duration_ms(
    samples: np.ndarray, vad: VoiceActivityDetector, *, stop_after_ms: int | None = None
) -> int:
    """Measure how much of a buffer the VAD classifies as speech.

    Args:
        samples: float32 mono at `vad.sample_rate_hz`.
        vad: the detector to use.
        stop_after_ms: return as soon as this much speech is found (saves time on long
            buffers when only a threshold matters).

    Returns:
        Voiced duration in ms, a multiple of `vad.frame_ms`.
    """
    frame_samples = vad.sample_rate_hz * vad.frame_ms // _MS_PER_SECOND
    voiced_ms = 0
    for start in range(0, len(samples) - frame_samples + 1, frame_samples):
        if vad.is_speech(samples[start : start + frame_samples]):
            voiced_ms += vad.frame_ms
            if stop_after_ms is not None and voiced_ms >= stop_after_ms:
                break
    return voiced_ms


@dataclass(frozen=True)
class EndpointerConfig:
    """Per-session end-of-utterance settings.

    Attributes:
        end_silence_ms: silence after speech that ends the utterance.
        max_utterance_ms: an utterance this long is ended even while speech continues.
        aggressiveness: WebRTC VAD mode, 0 to 3.
        speculative_silence_ms: silence after which `SilenceStarted` fires, so a final
            decode can start before `end_silence_ms` is reached; must be shorter.
        speech_start_ms: voiced audio needed within the start window to declare speech
            (filters clicks and short noises).
        pre_speech_ms: audio before the detected start that the utterance includes, so the
            first syllable is not clipped.
        post_speech_ms: audio after the last voiced frame that the utterance includes,
            because the VAD often calls a fading last syllable silence.
        frame_ms: VAD frame length, 10, 20 or 30.
    """

    end_silence_ms: int = 700
    max_utterance_ms: int = 15_000
    aggressiveness: int = 2
    speculative_silence_ms: int = 240
    speech_start_ms: int = 150
    pre_speech_ms: int = 300
    post_speech_ms: int = 150
    frame_ms: int = 30

    def __post_init__(self) -> None:
        if self.frame_ms not in WEBRTC_FRAME_MS:
            raise InvalidArgumentError("endpointer.frame_ms", self.frame_ms, "use 10, 20 or 30")
        if self.aggressiveness not in range(4):
            raise InvalidArgumentError(
                "endpointer.aggressiveness", self.aggressiveness, "use 0, 1, 2 or 3"
            )
        if not 100 <= self.end_silence_ms <= 10_000:
            raise InvalidArgumentError(
                "endpointer.end_silence_ms", self.end_silence_ms, "use 100 to 10000 ms"
            )
        if not 1_000 <= self.max_utterance_ms <= 120_000:
            raise InvalidArgumentError(
                "endpointer.max_utterance_ms", self.max_utterance_ms, "use 1000 to 120000 ms"
            )
        if not 0 < self.speculative_silence_ms < self.end_silence_ms:
            raise InvalidArgumentError(
                "endpointer.speculative_silence_ms",
                self.speculative_silence_ms,
                f"use more than 0 and less than end_silence_ms ({self.end_silence_ms})",
            )
        if not self.frame_ms <= self.speech_start_ms <= 1_000:
            raise InvalidArgumentError(
                "endpointer.speech_start_ms",
                self.speech_start_ms,
                f"use {self.frame_ms} (one frame) to 1000 ms",
            )
        if not 0 <= self.pre_speech_ms <= 2_000:
            raise InvalidArgumentError(
                "endpointer.pre_speech_ms", self.pre_speech_ms, "use 0 to 2000 ms"
            )
        if not 0 <= self.post_speech_ms <= self.end_silence_ms:
            raise InvalidArgumentError(
                "endpointer.post_speech_ms",
                self.post_speech_ms,
                f"use 0 to end_silence_ms ({self.end_silence_ms})",
            )


class EndReason(StrEnum):
    """The cause of an utterance's end."""

    SILENCE = "silence"
    MAX_LENGTH = "max_length"
    END_OF_STREAM = "end_of_stream"


@dataclass(frozen=True)
class SpeechStarted:
    """Speech began; the utterance starts at `start_sample` (pre-speech audio included)."""

    start_sample: int


@dataclass(frozen=True)
class SilenceStarted:
    """Speech paused for `speculative_silence_ms`; speech ran until `end_sample`."""

    start_sample: int
    end_sample: int


@dataclass(frozen=True)
class SpeechResumed:
    """Speech came back before the utterance ended; drop any speculative decode."""

    sample: int


@dataclass(frozen=True)
class SpeechEnded:
    """The utterance covers samples [start_sample, end_sample) of the stream."""

    start_sample: int
    end_sample: int
    reason: EndReason


EndpointEvent = SpeechStarted | SilenceStarted | SpeechResumed | SpeechEnded

# consecutive voiced frames that cancel a pause after `SilenceStarted`; single voiced
# frames inside a pause are usually breath or clicks
_RESUME_MS = 90


class Endpointer:
    """Detect utterances in one stream of audio and report them as events.

    Sample offsets count from the first sample passed to `feed`, at `sample_rate_hz`.

    Args:
        config: the session's endpointing settings.
        sample_rate_hz: rate of the audio passed to `feed`, 8000 or 16000 (or 32000/48000).
        vad: the frame classifier; a `WebRtcVad` built from `config` when None.
    """

    def __init__(
        self,
        config: EndpointerConfig | None = None,
        *,
        sample_rate_hz: int = ASR_SAMPLE_RATE_HZ,
        vad: VoiceActivityDetector | None = None,
    ) -> None:
        self.config = config or EndpointerConfig()
        self.sample_rate_hz = sample_rate_hz
        if vad is None:
            vad = WebRtcVad(self.config.aggressiveness, sample_rate_hz, self.config.frame_ms)
        self._vad = vad
        frame_ms = self._vad.frame_ms
        self._frame_samples = sample_rate_hz * frame_ms // _MS_PER_SECOND
        self._start_frames = -(-self.config.speech_start_ms // frame_ms)
        self._speculative_frames = -(-self.config.speculative_silence_ms // frame_ms)
        self._end_frames = -(-self.config.end_silence_ms // frame_ms)
        self._resume_frames = -(-_RESUME_MS // frame_ms)
        self._max_samples = self._ms_to_samples(self.config.max_utterance_ms)

        self._pending = np.zeros(0, dtype=np.float32)
        self._position = 0
        self._window: deque[bool] = deque(maxlen=2 * self._start_frames)
        self._in_speech = False
        self._start_sample = 0
        self._last_voiced_end = 0
        self._previous_end = 0
        self._silent_frames = 0
        self._voiced_run = 0
        self._speculating = False

    @property
    def in_speech(self) -> bool:
        """True between `SpeechStarted` and `SpeechEnded`."""
        return self._in_speech

    def feed(self, samples: np.ndarray) -> list[EndpointEvent]:
        """Classify the next chunk of audio.

        Args:
            samples: float32 mono at `sample_rate_hz`, any length.

        Returns:
            The events this chunk caused, in stream order.
        """
        if len(self._pending):
            samples = np.concatenate([self._pending, samples])
        whole = len(samples) - len(samples) % self._frame_samples
        events: list[EndpointEvent] = []
        for start in range(0, whole, self._frame_samples):
            voiced = self._vad.is_speech(samples[start : start + self._frame_samples])
            self._position += self._frame_samples
            self._step(voiced, events)
        self._pending = np.array(samples[whole:], dtype=np.float32)
        return events

    def flush(self) -> list[EndpointEvent]:
        """End the stream: close an open utterance with `EndReason.END_OF_STREAM`."""
        stream_end = self._position + len(self._pending)
        self._pending = np.zeros(0, dtype=np.float32)
        if not self._in_speech:
            return []
        end = min(stream_end, self._last_voiced_end + self._post_speech_samples())
        return [self._end_utterance(end, EndReason.END_OF_STREAM)]

    def _step(self, voiced: bool, events: list[EndpointEvent]) -> None:
        if self._in_speech:
            self._step_in_speech(voiced, events)
        else:
            self._step_idle(voiced, events)

    def _step_idle(self, voiced: bool, events: list[EndpointEvent]) -> None:
        self._window.append(voiced)
        if sum(self._window) < self._start_frames:
            return
        # speech starts at the first voiced frame still in the window
        first_voiced = next(index for index, flag in enumerate(self._window) if flag)
        frames_back = len(self._window) - first_voiced
        speech_start = self._position - frames_back * self._frame_samples
        start = max(
            self._previous_end, speech_start - self._ms_to_samples(self.config.pre_speech_ms)
        )
        self._begin_utterance(start, events)

    def _step_in_speech(self, voiced: bool, events: list[EndpointEvent]) -> None:
        if self._position - self._start_sample >= self._max_samples:
            end = self._position
            events.append(self._end_utterance(end, EndReason.MAX_LENGTH))
            if voiced:
                self._begin_utterance(end, events)
            return

        if voiced:
            self._on_voiced_frame(events)
            return
        self._voiced_run = 0
        self._silent_frames += 1
        if self._silent_frames == self._speculative_frames:
            self._speculating = True
            events.append(SilenceStarted(self._start_sample, self._last_voiced_end))
        if self._silent_frames >= self._end_frames:
            end = self._last_voiced_end + self._post_speech_samples()
            events.append(self._end_utterance(end, EndReason.SILENCE))

    def _on_voiced_frame(self, events: list[EndpointEvent]) -> None:
        if not self._speculating:
            self._silent_frames = 0
            self._last_voiced_end = self._position
            return
        # after SilenceStarted, only a run of voiced frames counts as speech again
        self._voiced_run += 1
        self._silent_frames += 1
        if self._voiced_run < self._resume_frames:
            return
        self._speculating = False
        self._silent_frames = 0
        self._voiced_run = 0
        self._last_voiced_end = self._position
        events.append(SpeechResumed(self._position - self._resume_frames * self._frame_samples))

    def _begin_utterance(self, start: int, events: list[EndpointEvent]) -> None:
        self._in_speech = True
        self._start_sample = start
        self._last_voiced_end = self._position
        self._silent_frames = 0
        self._voiced_run = 0
        self._speculating = False
        self._window.clear()
        events.append(SpeechStarted(start))

    def _end_utterance(self, end: int, reason: EndReason) -> SpeechEnded:
        event = SpeechEnded(self._start_sample, end, reason)
        logger.debug("utterance [%d, %d) ended: %s", event.start_sample, end, reason.value)
        self._in_speech = False
        self._speculating = False
        self._previous_end = end
        self._window.clear()
        return event

    def _post_speech_samples(self) -> int:
        return self._ms_to_samples(self.config.post_speech_ms)

    def _ms_to_samples(self, duration_ms: int) -> int:
        return self.sample_rate_hz * duration_ms // _MS_PER_SECOND


def iter_endpoint_events(
    chunks: Iterable[np.ndarray], endpointer: Endpointer
) -> Iterator[EndpointEvent]:
    """Feed float32 chunks through `endpointer` and yield its events, flush included."""
    for chunk in chunks:
        yield from endpointer.feed(chunk)
    yield from endpointer.flush()
