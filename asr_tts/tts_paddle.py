"""PaddleSpeech backend: FastSpeech2 + a vocoder from local model folders.

`paddlespeech` (about 2.7 GB installed) is kept out of kefu's extras, and its CLI downloads
models unless every file is passed in, so this engine takes the acoustic model and vocoder
folders from config and passes each file explicitly.

NOTE: this backend has not run on the project's machines (no paddlespeech, no models);
only its configuration checks are tested.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asr_tts.audio import InputAudioFormat, decode_audio
from asr_tts.tts import TtsEngine, TtsOptions
from server.errors import ConfigError, UnavailableError

logger = logging.getLogger(__name__)

_INSTALL_COMMAND = "pip install paddlespeech==1.5.0"


def _find_one(folder: Path, pattern: str, field_name: str) -> Path:
    matches = sorted(folder.glob(pattern))
    if not matches:
        raise ConfigError(
            f"paddlespeech.{field_name}={folder} has no file matching {pattern}; unpack the "
            "PaddleSpeech model archive (e.g. fastspeech2_csmsc, hifigan_csmsc) into it"
        )
    return matches[-1]


@dataclass(frozen=True)
class PaddleSpeechConfig:
    """Local PaddleSpeech model folders.

    Attributes:
        acoustic_model_dir: an unpacked FastSpeech2 archive (a .yaml config, a
            snapshot_iter_*.pdz checkpoint, speech_stats.npy, phone_id_map.txt).
        acoustic_model: the PaddleSpeech name of that model, e.g. fastspeech2_csmsc.
        vocoder_dir: an unpacked vocoder archive (.yaml, snapshot_iter_*.pdz, feats_stats.npy).
        vocoder: the PaddleSpeech name of that vocoder, e.g. hifigan_csmsc.
        sample_rate_hz: the rate the models were trained at (24000 for the CSMSC models).
    """

    acoustic_model_dir: Path
    vocoder_dir: Path
    acoustic_model: str = "fastspeech2_csmsc"
    vocoder: str = "hifigan_csmsc"
    sample_rate_hz: int = 24_000

    def __post_init__(self) -> None:
        for field_name in ("acoustic_model_dir", "vocoder_dir"):
            folder = Path(getattr(self, field_name))
            if not folder.is_dir():
                raise ConfigError(
                    f"paddlespeech.{field_name}={folder} is not a folder; unpack the "
                    "PaddleSpeech model archive there"
                )

    def model_files(self) -> dict[str, str]:
        """Return the file arguments of PaddleSpeech's TTSExecutor."""
        am_dir, voc_dir = Path(self.acoustic_model_dir), Path(self.vocoder_dir)
        files = {
            "am_config": _find_one(am_dir, "*.yaml", "acoustic_model_dir"),
            "am_ckpt": _find_one(am_dir, "snapshot_iter_*.pdz", "acoustic_model_dir"),
            "am_stat": _find_one(am_dir, "*stats.npy", "acoustic_model_dir"),
            "phones_dict": _find_one(am_dir, "phone_id_map.txt", "acoustic_model_dir"),
            "voc_config": _find_one(voc_dir, "*.yaml", "vocoder_dir"),
            "voc_ckpt": _find_one(voc_dir, "snapshot_iter_*.pdz", "vocoder_dir"),
            "voc_stat": _find_one(voc_dir, "*stats.npy", "vocoder_dir"),
        }
        return {name: str(path) for name, path in files.items()}


class PaddleSpeechEngine(TtsEngine):
    """PaddleSpeech TTSExecutor with every model file given, so it downloads nothing."""

    name = "paddlespeech"

    def __init__(self, config: PaddleSpeechConfig) -> None:
        files = config.model_files()
        try:
            from paddlespeech.cli.tts.infer import TTSExecutor
        except ImportError as error:
            raise ConfigError(
                f"the paddlespeech TTS engine needs paddlespeech; install it with: "
                f"{_INSTALL_COMMAND}"
            ) from error
        self.config = config
        self.sample_rate_hz = config.sample_rate_hz
        self._files = files
        self._executor = TTSExecutor()
        # the executor keeps per-call state, so calls are serialized
        self._lock = threading.Lock()

    def synthesize_spoken(self, spoken_text: str, options: TtsOptions) -> np.ndarray:
        """Synthesize one normalized sentence; `options` has no effect on this engine."""
        with tempfile.TemporaryDirectory() as folder, self._lock:
            output = Path(folder) / "sentence.wav"
            try:
                self._executor(
                    text=spoken_text,
                    am=self.config.acoustic_model,
                    voc=self.config.vocoder,
                    lang="zh",
                    device="cpu",
                    output=str(output),
                    **self._files,
                )
            except Exception as error:  # noqa: BLE001 - paddlespeech raises bare Exceptions
                raise UnavailableError(f"PaddleSpeech synthesis failed: {error}") from error
            wav_bytes = output.read_bytes()
        return decode_audio(
            wav_bytes, InputAudioFormat("wav"), output_sample_rate_hz=self.sample_rate_hz
        )
