"""Streaming speech recognition: the engine interface, result types and the engine registry.

An `AsrEngine` loads the model once, and all streams of a process share it. Each call gets
its own `AsrStream`, which stores only that stream's audio and results. Streams take 16 kHz
float32 mono (what `asr_tts.audio.AudioDecoder` produces) for one utterance at a time:
the endpointer decides where utterances start and end, and the caller calls `finalize`
at each `SpeechEnded`.
"""

from __future__ import annotations

import importlib
import logging
import re
import unicodedata
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from asr_tts.audio import ASR_SAMPLE_RATE_HZ
from server.errors import ConfigError, InvalidArgumentError

logger = logging.getLogger(__name__)

_MS_PER_SECOND = 1000
MAX_HOTWORDS = 100
MAX_HOTWORD_CHARS = 32


@dataclass(frozen=True)
class AsrOptions:
    """Per-stream recognition options.

    Attributes:
        language: ISO 639-1 code of the spoken language ("zh" for Mandarin).
        hotwords: product names, brands and terms to bias recognition towards; engines
            whose `supports_hotwords` is False ignore them.
        partial_interval_ms: how much new audio triggers a partial re-decode; 0 disables
            partial results.
    """

    language: str = "zh"
    hotwords: tuple[str, ...] = ()
    partial_interval_ms: int = 1000

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z]{2,3}", self.language):
            raise InvalidArgumentError(
                "asr.language", self.language, "use an ISO 639-1 code such as zh or en"
            )
        if self.partial_interval_ms != 0 and not 200 <= self.partial_interval_ms <= 10_000:
            raise InvalidArgumentError(
                "asr.partial_interval_ms",
                self.partial_interval_ms,
                "use 0 (no partial results) or 200 to 10000 ms",
            )
        hotwords = tuple(word.strip() for word in self.hotwords if word.strip())
        if len(hotwords) > MAX_HOTWORDS:
            raise InvalidArgumentError(
                "asr.hotwords", len(hotwords), f"send at most {MAX_HOTWORDS} hotwords"
            )
        too_long = [word for word in hotwords if len(word) > MAX_HOTWORD_CHARS]
        if too_long:
            raise InvalidArgumentError(
                "asr.hotwords", too_long[0], f"each hotword is at most {MAX_HOTWORD_CHARS} chars"
            )
        object.__setattr__(self, "hotwords", hotwords)


@dataclass(frozen=True)
class AsrSegment:
    """A stretch of recognized text with its time span, in ms from the utterance start."""

    text: str
    start_ms: int
    end_ms: int


@dataclass(frozen=True)
class PartialResult:
    """An interim transcript of the utterance so far; a later result replaces it."""

    text: str
    audio_ms: int


@dataclass(frozen=True)
class FinalResult:
    """The transcript of a whole utterance.

    Attributes:
        text: the transcript, empty when the audio held no speech.
        segments: the transcript split into timed segments.
        audio_ms: duration of the decoded audio.
        decode_ms: wall time the decode took.
    """

    text: str
    segments: tuple[AsrSegment, ...]
    audio_ms: int
    decode_ms: int


class AsrStream(ABC):
    """Recognition state of one utterance stream; not shared between threads.

    Subclasses implement `_decode_partial` and `_decode_final`; this base class keeps the
    audio buffer, the partial-result schedule and the speculative final result.
    """

    def __init__(self, options: AsrOptions, sample_rate_hz: int = ASR_SAMPLE_RATE_HZ) -> None:
        self.options = options
        self.sample_rate_hz = sample_rate_hz
        self._chunks: list[np.ndarray] = []
        self._num_samples = 0
        self._samples_at_last_partial = 0
        self._speculation: tuple[int, FinalResult] | None = None

    @property
    def audio_ms(self) -> int:
        """Duration of the audio buffered for the open utterance."""
        return self._num_samples * _MS_PER_SECOND // self.sample_rate_hz

    def accept(self, samples: np.ndarray) -> PartialResult | None:
        """Add audio to the open utterance.

        Args:
            samples: float32 mono at `sample_rate_hz` (16 kHz), shape (n,).

        Returns:
            A partial result when partial results are on and `partial_interval_ms` of new
            audio arrived since the last one, else None.
        """
        samples = np.asarray(samples, dtype=np.float32)
        if samples.ndim != 1:
            raise InvalidArgumentError("asr.samples", samples.shape, "pass mono audio, shape (n,)")
        if len(samples):
            self._chunks.append(samples)
            self._num_samples += len(samples)

        interval_ms = self.options.partial_interval_ms
        if interval_ms == 0:
            return None
        new_samples = self._num_samples - self._samples_at_last_partial
        if new_samples * _MS_PER_SECOND < interval_ms * self.sample_rate_hz:
            return None
        return self.partial()

    def partial(self) -> PartialResult:
        """Re-decode the open utterance now and return the interim transcript."""
        self._samples_at_last_partial = self._num_samples
        text = self._decode_partial(self._audio()) if self._num_samples else ""
        return PartialResult(text, self.audio_ms)

    def speculate(self) -> FinalResult:
        """Decode the utterance as final without closing it.

        Call at `SilenceStarted`; if the utterance then ends without `SpeechResumed`,
        `finalize(reuse_speculation=True)` returns this result without decoding again.
        """
        result = self._decode_final(self._audio())
        self._speculation = (self._num_samples, result)
        return result

    def finalize(self, *, reuse_speculation: bool = False) -> FinalResult:
        """Close the utterance, return its transcript and clear the buffer for the next one.

        Args:
            reuse_speculation: return the result of the last `speculate` call if there was
                one (the caller knows the audio since then is silence).
        """
        if reuse_speculation and self._speculation is not None:
            result = self._speculation[1]
        else:
            result = self._decode_final(self._audio())
        self.reset()
        return result

    def reset(self) -> None:
        """Drop the buffered audio and any speculative result."""
        self._chunks.clear()
        self._num_samples = 0
        self._samples_at_last_partial = 0
        self._speculation = None

    def _audio(self) -> np.ndarray:
        if len(self._chunks) > 1:
            self._chunks = [np.concatenate(self._chunks)]
        return self._chunks[0] if self._chunks else np.zeros(0, dtype=np.float32)

    @abstractmethod
    def _decode_partial(self, audio: np.ndarray) -> str:
        """Return a quick transcript of float32 16 kHz audio of length > 0."""

    @abstractmethod
    def _decode_final(self, audio: np.ndarray) -> FinalResult:
        """Return the best transcript of float32 16 kHz audio of any length (0 included)."""


class AsrEngine(ABC):
    """A speech recognizer whose model is loaded once and shared by all streams.

    Attributes:
        name: the registry name.
        supports_hotwords: whether `AsrOptions.hotwords` has any effect; the server reports
            to the client when it has none.
        sample_rate_hz: rate of the audio its streams accept.
    """

    name: ClassVar[str]
    supports_hotwords: ClassVar[bool]
    sample_rate_hz: int = ASR_SAMPLE_RATE_HZ

    @abstractmethod
    def open_stream(self, options: AsrOptions | None = None) -> AsrStream:
        """Create the state for one utterance stream."""

    def close(self) -> None:  # noqa: B027 - optional hook, most engines hold nothing to free
        """Release the model."""


# registry name -> "module:class"; modules are imported only when their engine is created
_ENGINES = {
    "whisper": "asr_tts.asr_whisper:WhisperEngine",
    "funasr": "asr_tts.asr_funasr:FunAsrEngine",
}


def available_asr_engines() -> tuple[str, ...]:
    """Return the names `create_asr_engine` accepts."""
    return tuple(_ENGINES)


def create_asr_engine(name: str, config: Any) -> AsrEngine:
    """Create the engine registered as `name`.

    Args:
        name: one of `available_asr_engines()`.
        config: that engine's config object (`WhisperConfig`, `FunAsrConfig`).

    Raises:
        ConfigError: the name is unknown, or the engine cannot load.
    """
    target = _ENGINES.get(name)
    if target is None:
        raise ConfigError(
            f"unknown ASR engine {name!r}; available: {', '.join(available_asr_engines())}"
        )
    module_name, class_name = target.split(":")
    engine_class = getattr(importlib.import_module(module_name), class_name)
    return engine_class(config)


# Punctuation and symbols do not count as recognition errors; CJK and Latin letters do.
def strip_for_scoring(text: str) -> str:
    """Remove whitespace, punctuation and symbols, and lowercase Latin letters."""
    kept = [
        char.lower()
        for char in unicodedata.normalize("NFKC", text)
        if unicodedata.category(char)[0] in ("L", "N")
    ]
    return "".join(kept)


def character_error_rate(hypothesis: str, reference: str) -> float:
    """Compute the character error rate: edit distance over characters / reference length.

    Both strings are compared after `strip_for_scoring`. An empty reference gives 0.0 for
    an empty hypothesis and 1.0 otherwise.
    """
    hyp = strip_for_scoring(hypothesis)
    ref = strip_for_scoring(reference)
    if not ref:
        return 0.0 if not hyp else 1.0
    previous = list(range(len(hyp) + 1))
    for i, ref_char in enumerate(ref, start=1):
        current = [i] + [0] * len(hyp)
        for j, hyp_char in enumerate(hyp, start=1):
            substitution = previous[j - 1] + (ref_char != hyp_char)
            current[j] = min(previous[j] + 1, current[j - 1] + 1, substitution)
        previous = current
    return previous[-1] / len(ref)
