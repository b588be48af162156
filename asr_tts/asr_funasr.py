"""FunASR backend: Paraformer-zh-streaming with fsmn-vad and ct-punc, from local folders.

`funasr` belongs to the optional `funasr` extra and is imported only when this engine is
created. The models are never downloaded at run time: each one must already be in a local
folder (fetched once with `modelscope download` where the operator has network).

NOTE: this backend has not run on the project's machines, which have neither `funasr` nor
the models. Only its configuration checks and error paths are tested. The streaming calls
follow FunASR's documented `AutoModel.generate(cache=..., is_final=..., chunk_size=...)`.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from asr_tts.asr import AsrEngine, AsrOptions, AsrSegment, AsrStream, FinalResult
from server.errors import ConfigError

logger = logging.getLogger(__name__)

_MS_PER_SECOND = 1000
# files every FunASR model folder has
_REQUIRED_MODEL_FILES = ("config.yaml", "model.pt")
_MODELSCOPE_IDS = {
    "model_dir": "iic/paraformer-zh-streaming",
    "vad_model_dir": "iic/speech_fsmn_vad_zh-cn-16k-common-pytorch",
    "punc_model_dir": "iic/punc_ct-transformer_zh-cn-common-vocab272727-pytorch",
}
# Paraformer streaming settings: [lookback, chunk, lookahead] in 60 ms encoder frames, so a
# chunk of 10 is 600 ms of audio (9600 samples at 16 kHz)
_CHUNK_SIZE = (0, 10, 5)
_ENCODER_CHUNK_LOOK_BACK = 4
_DECODER_CHUNK_LOOK_BACK = 1
_SAMPLES_PER_ENCODER_FRAME = 960


@dataclass(frozen=True)
class FunAsrConfig:
    """Local model folders and threads of the FunASR engine.

    Attributes:
        model_dir: Paraformer-zh-streaming folder.
        vad_model_dir: fsmn-vad folder, or None to decode without a VAD gate. With it,
            audio without speech gives an empty transcript, and the segment spans the speech.
        punc_model_dir: ct-punc folder, or None to return text without punctuation.
        cpu_threads: torch intra-op threads (FunASR's `ncpu`).
    """

    model_dir: Path
    vad_model_dir: Path | None = None
    punc_model_dir: Path | None = None
    cpu_threads: int = 2

    def __post_init__(self) -> None:
        for field_name in ("model_dir", "vad_model_dir", "punc_model_dir"):
            folder = getattr(self, field_name)
            if folder is not None:
                check_model_folder(field_name, Path(folder))
        if self.cpu_threads < 1:
            raise ConfigError(f"funasr.cpu_threads={self.cpu_threads} must be 1 or more")


def check_model_folder(field_name: str, folder: Path) -> None:
    """Raise ConfigError naming the download command when a model folder is incomplete."""
    missing = [name for name in _REQUIRED_MODEL_FILES if not (folder / name).is_file()]
    if not missing:
        return
    model_id = _MODELSCOPE_IDS[field_name]
    raise ConfigError(
        f"funasr.{field_name}={folder} is missing {', '.join(missing)}; download the model "
        f"once where there is network: modelscope download --model {model_id} "
        f"--local_dir {folder}"
    )


def _import_automodel() -> Any:
    try:
        from funasr import AutoModel
    except ImportError as error:
        raise ConfigError(
            "the funasr ASR engine needs the funasr package, which is not installed; "
            "install it with: pip install 'kefu[funasr]'"
        ) from error
    return AutoModel


class FunAsrEngine(AsrEngine):
    """Paraformer-zh-streaming engine; one set of models serves every stream.

    Streaming state lives in each stream's `cache` dict. The torch modules are shared,
    and FunASR does not document concurrent `generate` calls, so calls are serialized.
    """

    name = "funasr"
    # paraformer-zh-streaming has no hotword input (SeACo-Paraformer, offline, has one)
    supports_hotwords = False

    def __init__(self, config: FunAsrConfig) -> None:
        auto_model = _import_automodel()
        started = time.monotonic()
        common = {"device": "cpu", "ncpu": config.cpu_threads, "disable_update": True}
        self._streaming = auto_model(model=str(config.model_dir), **common)
        self._vad = None
        self._punc = None
        if config.vad_model_dir is not None:
            self._vad = auto_model(model=str(config.vad_model_dir), **common)
        if config.punc_model_dir is not None:
            self._punc = auto_model(model=str(config.punc_model_dir), **common)
        self._lock = threading.Lock()
        logger.info("loaded FunASR models in %.1f s", time.monotonic() - started)

    def open_stream(self, options: AsrOptions | None = None) -> FunAsrStream:
        """Create the state for one utterance stream."""
        return FunAsrStream(self, options or AsrOptions())

    def decode_chunk(self, chunk: np.ndarray, cache: dict, *, is_final: bool) -> str:
        """Run one streaming step on 16 kHz float32 audio and return the new text."""
        with self._lock:
            result = self._streaming.generate(
                input=chunk,
                cache=cache,
                is_final=is_final,
                chunk_size=list(_CHUNK_SIZE),
                encoder_chunk_look_back=_ENCODER_CHUNK_LOOK_BACK,
                decoder_chunk_look_back=_DECODER_CHUNK_LOOK_BACK,
            )
        return "".join(item.get("text", "") for item in result)

    def speech_spans_ms(self, audio: np.ndarray) -> list[tuple[int, int]] | None:
        """Return fsmn-vad speech spans in ms, or None when no VAD model is configured."""
        if self._vad is None:
            return None
        with self._lock:
            result = self._vad.generate(input=audio)
        spans = result[0].get("value", []) if result else []
        return [(int(start), int(end)) for start, end in spans]

    def punctuate(self, text: str) -> str:
        """Add punctuation with ct-punc when it is configured."""
        if self._punc is None or not text:
            return text
        with self._lock:
            result = self._punc.generate(input=text)
        return result[0].get("text", text) if result else text


class FunAsrStream(AsrStream):
    """One utterance stream on a shared `FunAsrEngine`.

    Audio goes through the model in 600 ms steps as it arrives, so partial results cost
    no re-decode. `partial_interval_ms` still sets how often they are returned.
    """

    def __init__(self, engine: FunAsrEngine, options: AsrOptions) -> None:
        super().__init__(options, engine.sample_rate_hz)
        self._engine = engine
        self._cache: dict = {}
        self._decoded_samples = 0
        self._text = ""
        self._step_samples = _CHUNK_SIZE[1] * _SAMPLES_PER_ENCODER_FRAME

    def _decode_partial(self, audio: np.ndarray) -> str:
        while len(audio) - self._decoded_samples >= self._step_samples:
            chunk = audio[self._decoded_samples : self._decoded_samples + self._step_samples]
            self._text += self._engine.decode_chunk(chunk, self._cache, is_final=False)
            self._decoded_samples += self._step_samples
        return self._text

    def _decode_final(self, audio: np.ndarray) -> FinalResult:
        started = time.monotonic()
        audio_ms = len(audio) * _MS_PER_SECOND // self.sample_rate_hz
        spans = self._engine.speech_spans_ms(audio) if len(audio) else []
        text = ""
        if spans is None or spans:
            self._decode_partial(audio)
            # the last step runs on a copy, so a speculative final leaves the stream open
            cache = copy.deepcopy(self._cache)
            rest = audio[self._decoded_samples :]
            tail = self._engine.decode_chunk(rest, cache, is_final=True)
            text = self._engine.punctuate(self._text + tail)

        start_ms, end_ms = (spans[0][0], spans[-1][1]) if spans else (0, audio_ms)
        segments = (AsrSegment(text, start_ms, end_ms),) if text else ()
        decode_ms = round((time.monotonic() - started) * _MS_PER_SECOND)
        return FinalResult(text, segments, audio_ms, decode_ms)

    def reset(self) -> None:
        """Drop the buffered audio and the streaming model state."""
        super().reset()
        self._cache = {}
        self._decoded_samples = 0
        self._text = ""
