"""faster-whisper backend: Whisper on CTranslate2, CPU, int8.

Whisper is not a streaming model, so a stream keeps the audio of the open utterance and
re-decodes all of it for each partial result (greedy, no timestamps) and once more with beam
search for the final result.

Whisper invents text on silence and noise. Three guards keep such audio from producing a
transcript: a VAD gate before decoding, the no-speech and log-probability thresholds, and
a list of phrases that Whisper produces from subtitle credits in its training data.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from asr_tts.asr import AsrEngine, AsrOptions, AsrSegment, AsrStream, FinalResult
from asr_tts.vad import WebRtcVad, speech_duration_ms
from asr_tts.whisper_model import prepare_whisper_base_model
from server.errors import ConfigError

logger = logging.getLogger(__name__)

_MS_PER_SECOND = 1000
_COMPUTE_TYPES = ("int8", "int8_float32", "float32")

# Phrases Whisper produces on silence, music or noise; they come from video subtitles
# ("subtitles by…", "please like and subscribe", "thanks for watching"). A segment that
# contains one is dropped. Kept narrow so real requests ("取消订阅") still pass.
HALLUCINATION_PATTERNS = tuple(
    re.compile(pattern, re.IGNORECASE)
    for pattern in (
        r"字幕\s*(by|由|提供|制作|志愿者|组|：|:)",
        r"(中文|简体|繁体)字幕",
        r"不吝点赞",
        r"点赞\s*订阅",
        r"订阅\s*(我的|我们的|本)?\s*频道",
        r"打赏支持",
        r"明镜(与|和)点点",
        r"amara\.?org",
        r"(谢谢|感谢)(大家|您|你)?的?(观看|收看|收听)",
        r"独播剧场",
        r"yoyo television",
        r"本(视频|节目|期)由",
    )
)


@dataclass(frozen=True)
class WhisperConfig:
    """Settings of the faster-whisper engine, read once at start-up.

    Attributes:
        model_cache_dir: writable folder where the wheel-shipped Whisper base model is
            joined on first use (ignored when `model_dir` is set).
        model_dir: a CTranslate2 Whisper model folder to load instead of Whisper base.
        cpu_threads: intra-op threads per decode (OpenMP).
        num_workers: decodes that may run in parallel from different threads.
        compute_type: CTranslate2 compute type: int8, int8_float32 or float32.
        beam_size: beam width of the final decode; partial decodes are greedy.
        no_speech_threshold: a segment whose no-speech probability is above this and whose
            average log-probability is below `log_prob_threshold` is dropped.
        log_prob_threshold: see `no_speech_threshold`.
        compression_ratio_threshold: segments more repetitive than this (gzip ratio) are
            dropped, a sign of a decoding loop.
        min_speech_ms: audio with less voiced time than this (WebRTC VAD) is not decoded.
        vad_aggressiveness: WebRTC VAD mode of that gate, 0 to 3.
        to_simplified: convert the output to Simplified Chinese (OpenCC t2s), because
            Whisper often writes Mandarin in Traditional characters.
    """

    model_cache_dir: Path | None = None
    model_dir: Path | None = None
    cpu_threads: int = 2
    num_workers: int = 1
    compute_type: str = "int8"
    beam_size: int = 5
    no_speech_threshold: float = 0.6
    log_prob_threshold: float = -1.0
    compression_ratio_threshold: float = 2.4
    min_speech_ms: int = 150
    vad_aggressiveness: int = 2
    to_simplified: bool = True

    def __post_init__(self) -> None:
        if self.model_cache_dir is None and self.model_dir is None:
            raise ConfigError(
                "whisper: set model_cache_dir (a writable folder for the joined Whisper base "
                "model, e.g. under the data dir) or model_dir (a CTranslate2 model folder)"
            )
        if self.model_dir is not None and not (Path(self.model_dir) / "model.bin").is_file():
            raise ConfigError(
                f"whisper.model_dir={self.model_dir} has no model.bin; point it at a "
                "CTranslate2 Whisper folder (ct2-transformers-converter output)"
            )
        if self.compute_type not in _COMPUTE_TYPES:
            raise ConfigError(
                f"whisper.compute_type={self.compute_type!r} is not supported on CPU; "
                f"use one of {', '.join(_COMPUTE_TYPES)}"
            )
        for name in ("cpu_threads", "num_workers", "beam_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"whisper.{name}={getattr(self, name)} must be 1 or more")
        if self.vad_aggressiveness not in range(4):
            raise ConfigError(f"whisper.vad_aggressiveness={self.vad_aggressiveness}: use 0 to 3")


class WhisperEngine(AsrEngine):
    """faster-whisper engine; one model serves every stream.

    faster-whisper 1.2.1 allows `transcribe` from several threads, and `num_workers` sets
    how many decodes run in parallel inside CTranslate2. Further calls wait for a worker.
    """

    name = "whisper"
    supports_hotwords = True

    def __init__(self, config: WhisperConfig) -> None:
        from faster_whisper import WhisperModel
        from opencc import OpenCC

        self.config = config
        model_dir = config.model_dir or prepare_whisper_base_model(config.model_cache_dir)
        started = time.monotonic()
        self._model = WhisperModel(
            str(model_dir),
            device="cpu",
            compute_type=config.compute_type,
            cpu_threads=config.cpu_threads,
            num_workers=config.num_workers,
            local_files_only=True,
        )
        self._to_simplified = OpenCC("t2s") if config.to_simplified else None
        # the OpenCC binding makes no thread-safety promise
        self._opencc_lock = threading.Lock()
        logger.info("loaded Whisper from %s in %.1f s", model_dir, time.monotonic() - started)

    def open_stream(self, options: AsrOptions | None = None) -> WhisperStream:
        """Create the state for one utterance stream."""
        return WhisperStream(self, options or AsrOptions())

    def transcribe_segments(
        self, audio: np.ndarray, options: AsrOptions, *, final: bool
    ) -> list[AsrSegment]:
        """Decode 16 kHz float32 mono audio and return the kept, cleaned segments.

        Args:
            audio: float32 mono at 16 kHz, shape (n,), n > 0.
            options: the stream's options (language, hotwords).
            final: beam search with timestamps when True, greedy without when False.
        """
        config = self.config
        segments, _ = self._model.transcribe(
            audio,
            language=options.language,
            task="transcribe",
            beam_size=config.beam_size if final else 1,
            # one temperature: the fallback would decode again at higher temperatures, which
            # costs time and samples freer text on noise
            temperature=0.0,
            compression_ratio_threshold=config.compression_ratio_threshold,
            log_prob_threshold=config.log_prob_threshold,
            no_speech_threshold=config.no_speech_threshold,
            condition_on_previous_text=False,
            without_timestamps=not final,
            hotwords=" ".join(options.hotwords) or None,
        )
        kept = [_to_asr_segment(segment) for segment in segments if self._keep(segment)]
        return [
            AsrSegment(self._simplify(segment.text), segment.start_ms, segment.end_ms)
            for segment in kept
        ]

    def _keep(self, segment: Any) -> bool:
        config = self.config
        if segment.compression_ratio > config.compression_ratio_threshold:
            return False
        if (
            segment.no_speech_prob > config.no_speech_threshold
            and segment.avg_logprob < config.log_prob_threshold
        ):
            return False
        if is_hallucination(segment.text):
            logger.debug("dropped a segment that matches a known Whisper hallucination")
            return False
        return True

    def _simplify(self, text: str) -> str:
        text = text.strip()
        if self._to_simplified is None:
            return text
        with self._opencc_lock:
            return self._to_simplified.convert(text)


def _to_asr_segment(segment: Any) -> AsrSegment:
    return AsrSegment(
        segment.text,
        round(segment.start * _MS_PER_SECOND),
        round(segment.end * _MS_PER_SECOND),
    )


def is_hallucination(text: str) -> bool:
    """Check whether a segment matches one of `HALLUCINATION_PATTERNS`."""
    compact = re.sub(r"\s+", "", text)
    return any(pattern.search(compact) for pattern in HALLUCINATION_PATTERNS)


def join_segment_texts(segments: list[AsrSegment]) -> str:
    """Join segment texts, with a space only between two Latin-script ends."""
    text = ""
    for segment in segments:
        if text and text[-1].isascii() and text[-1].isalnum() and segment.text[:1].isascii():
            text += " "
        text += segment.text
    return text


class WhisperStream(AsrStream):
    """One utterance stream on a shared `WhisperEngine`.

    NOTE: every decode runs the encoder over a padded 30 s window, so a partial costs about
    as much as a final one (1.5 to 1.8 s for 5.5 s of audio on 2 busy CPU cores). A
    `partial_interval_ms` shorter than that falls behind real time on such a machine.
    """

    def __init__(self, engine: WhisperEngine, options: AsrOptions) -> None:
        super().__init__(options, engine.sample_rate_hz)
        self._engine = engine
        self._vad = WebRtcVad(engine.config.vad_aggressiveness, engine.sample_rate_hz)

    def _has_speech(self, audio: np.ndarray) -> bool:
        min_speech_ms = self._engine.config.min_speech_ms
        voiced_ms = speech_duration_ms(audio, self._vad, stop_after_ms=min_speech_ms)
        return voiced_ms >= min_speech_ms

    def _decode_partial(self, audio: np.ndarray) -> str:
        if not self._has_speech(audio):
            return ""
        segments = self._engine.transcribe_segments(audio, self.options, final=False)
        return join_segment_texts(segments)

    def _decode_final(self, audio: np.ndarray) -> FinalResult:
        started = time.monotonic()
        audio_ms = len(audio) * _MS_PER_SECOND // self.sample_rate_hz
        segments: list[AsrSegment] = []
        if len(audio) and self._has_speech(audio):
            segments = self._engine.transcribe_segments(audio, self.options, final=True)
        decode_ms = round((time.monotonic() - started) * _MS_PER_SECOND)
        return FinalResult(join_segment_texts(segments), tuple(segments), audio_ms, decode_ms)
