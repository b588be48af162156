"""Speech engines of a kefu process and the per-turn speaking of answers.

The engines are loaded once at start-up and shared by every stream. Recognition state is
per stream (`asr_tts.recognizer.StreamingRecognizer`); synthesis is stateless per turn.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from asr_tts.asr import AsrEngine, AsrOptions
from asr_tts.audio import AudioEncoder, InputAudioFormat, OutputAudioFormat
from asr_tts.recognizer import StreamingRecognizer
from asr_tts.tts import TtsEngine
from asr_tts.vad import EndpointerConfig
from server.errors import ConfigError, InvalidArgumentError

logger = logging.getLogger(__name__)

# Audio sent per AudioOut message: whole 20 ms frames, about 200 ms per message.
FRAMES_PER_MESSAGE = 10
# Partials re-decode the open utterance; Whisper base needs 1.5 s or more for that on two
# CPU cores, so a shorter default would fall behind real time.
DEFAULT_PARTIAL_INTERVAL_MS = 2000
DEFAULT_SILENCE_MS = 600
DEFAULT_MAX_UTTERANCE_MS = 30_000


@dataclass(frozen=True)
class EndpointingOptions:
    """A session's endpointing request; zero values mean the defaults.

    Attributes:
        silence_ms: silence that ends the caller's turn, 100 to 5000.
        max_utterance_ms: longest utterance, 1000 to 120000.
        partial_interval_ms: audio between partial transcripts, 200 to 10000; -1 disables.
    """

    silence_ms: int = 0
    max_utterance_ms: int = 0
    partial_interval_ms: int = 0

    def __post_init__(self) -> None:
        _check_range("endpointing.silence_ms", self.silence_ms, 100, 5000)
        _check_range("endpointing.max_utterance_ms", self.max_utterance_ms, 1000, 120_000)
        if self.partial_interval_ms != -1:
            _check_range("endpointing.partial_interval_ms", self.partial_interval_ms, 200, 10_000)

    def endpointer_config(self) -> EndpointerConfig:
        silence = self.silence_ms or DEFAULT_SILENCE_MS
        return EndpointerConfig(
            end_silence_ms=silence,
            max_utterance_ms=self.max_utterance_ms or DEFAULT_MAX_UTTERANCE_MS,
            speculative_silence_ms=min(240, silence // 2),
            post_speech_ms=min(150, silence),
        )

    def partial_interval(self, requested: bool) -> int:
        """Return the partial interval in ms, 0 when partials are off or not requested."""
        if not requested or self.partial_interval_ms == -1:
            return 0
        return self.partial_interval_ms or DEFAULT_PARTIAL_INTERVAL_MS


def _check_range(field_name: str, value: int, low: int, high: int) -> None:
    if value != 0 and not low <= value <= high:
        raise InvalidArgumentError(field_name, value, f"use 0 (default) or {low} to {high}")


@dataclass
class VoiceEngines:
    """The shared recognizer and synthesizer; either may be None when disabled."""

    asr: AsrEngine | None
    tts: TtsEngine | None

    def require_asr(self, field_name: str) -> AsrEngine:
        if self.asr is None:
            raise InvalidArgumentError(
                field_name, "audio", "speech recognition is disabled on this server (asr_engine)"
            )
        return self.asr

    def require_tts(self, field_name: str) -> TtsEngine:
        if self.tts is None:
            raise InvalidArgumentError(
                field_name, True, "speech synthesis is disabled on this server (tts_engine)"
            )
        return self.tts

    def unsupported_hotwords(self, hotwords: Iterable[str]) -> tuple[str, ...]:
        """Return the hotwords the recognizer cannot use (all of them, or none)."""
        words = tuple(hotwords)
        if self.asr is None or self.asr.supports_hotwords:
            return ()
        return words

    def open_recognizer(
        self,
        input_format: InputAudioFormat,
        endpointing: EndpointingOptions,
        hotwords: tuple[str, ...],
        partials: bool,
        field_name: str = "config.input_audio",
    ) -> StreamingRecognizer:
        options = AsrOptions(
            language="zh",
            hotwords=hotwords,
            partial_interval_ms=endpointing.partial_interval(partials),
        )
        return StreamingRecognizer(
            input_format, self.require_asr(field_name), endpointing.endpointer_config(), options
        )

    def close(self) -> None:
        for engine in (self.asr, self.tts):
            if engine is not None:
                engine.close()


def build_voice_engines(
    asr_engine: str, tts_engine: str, model_dir: Path, funasr_model_dir: Path | None
) -> VoiceEngines:
    """Load the configured engines; `none` disables one.

    Raises:
        ConfigError: an unknown engine, a missing package (with the install command), or a
            missing model folder.
    """
    return VoiceEngines(
        asr=_build_asr(asr_engine, model_dir, funasr_model_dir),
        tts=_build_tts(tts_engine),
    )


def _build_asr(name: str, model_dir: Path, funasr_model_dir: Path | None) -> AsrEngine | None:
    if name == "none":
        return None
    try:
        from asr_tts.asr import create_asr_engine
        from asr_tts.asr_whisper import WhisperConfig
    except ImportError as exc:
        raise ConfigError(
            f"asr_engine={name!r} needs the voice extra: pip install 'kefu[voice]' ({exc})"
        ) from exc
    if name == "whisper":
        config = WhisperConfig(model_cache_dir=model_dir)
    elif name == "funasr":
        from asr_tts.asr_funasr import FunAsrConfig

        if funasr_model_dir is None:
            raise ConfigError("asr_engine='funasr' needs funasr_model_dir, a local model folder")
        config = FunAsrConfig(model_dir=funasr_model_dir)
    else:
        raise ConfigError(f"invalid asr_engine={name!r}: accepted values are whisper, funasr, none")
    logger.info("loading ASR engine %s", name)
    return create_asr_engine(name, config)


def _build_tts(name: str) -> TtsEngine | None:
    if name == "none":
        return None
    try:
        from asr_tts.tts import create_tts_engine
    except ImportError as exc:
        raise ConfigError(
            f"tts_engine={name!r} needs the voice extra: pip install 'kefu[voice]' ({exc})"
        ) from exc
    logger.info("loading TTS engine %s", name)
    return create_tts_engine(name)


@dataclass(frozen=True)
class SpokenChunk:
    """Encoded answer audio ready to send.

    Attributes:
        data: whole frames in the session's output format.
        offset_ms: position of the first sample in the answer's audio.
        duration_ms: synthesized audio in `data`, padding excluded.
    """

    data: bytes
    offset_ms: int
    duration_ms: float
    spoken_text: str = ""


def speak(
    tts: TtsEngine,
    text: str | Iterable[str],
    output: OutputAudioFormat,
    stop: Callable[[], bool] = lambda: False,
) -> Iterator[SpokenChunk]:
    """Synthesize text sentence by sentence and yield it as encoded chunks.

    Args:
        text: the answer, or its pieces as they stream.
        output: the caller's audio format.
        stop: checked between sentences and chunks; True ends the audio at once.
    """
    encoder = AudioEncoder(output, input_sample_rate_hz=tts.sample_rate_hz)
    offset_ms = 0.0
    pending: list = []
    spoken = ""
    for segment in tts.synthesize(text):
        if stop():
            return
        spoken = segment.spoken_text
        pending.extend(encoder.feed(segment.samples))
        while len(pending) >= FRAMES_PER_MESSAGE:
            chunk, pending = pending[:FRAMES_PER_MESSAGE], pending[FRAMES_PER_MESSAGE:]
            yield _chunk(chunk, offset_ms, spoken)
            offset_ms += sum(f.duration_ms for f in chunk)
            if stop():
                return
    pending.extend(encoder.flush())
    while pending and not stop():
        chunk, pending = pending[:FRAMES_PER_MESSAGE], pending[FRAMES_PER_MESSAGE:]
        yield _chunk(chunk, offset_ms, spoken)
        offset_ms += sum(f.duration_ms for f in chunk)


def _chunk(frames: list, offset_ms: float, spoken_text: str) -> SpokenChunk:
    return SpokenChunk(
        data=b"".join(f.payload for f in frames),
        offset_ms=round(offset_ms),
        duration_ms=sum(f.duration_ms for f in frames),
        spoken_text=spoken_text,
    )


def speak_to_pcm16(tts: TtsEngine, text: str) -> bytes:
    """Synthesize text at the engine's own rate as 16-bit PCM, for files."""
    output = OutputAudioFormat("pcm16", tts.sample_rate_hz, pad_last_frame=False)
    return b"".join(chunk.data for chunk in speak(tts, text, output))
