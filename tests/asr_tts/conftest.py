"""Fixtures shared by the asr_tts tests: real recordings and one Whisper engine."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from asr_tts.audio import InputAudioFormat, decode_audio

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@dataclass(frozen=True)
class Recording:
    """A real Mandarin recording with its reference transcript."""

    name: str
    wav_path: Path
    transcript: str

    def samples_16k(self) -> np.ndarray:
        return decode_audio(self.wav_path.read_bytes(), InputAudioFormat("wav"))


def _transcript_from_source(source_txt: Path) -> str:
    # SOURCE.txt has a line "transcript (expected, …): TEXT"
    for line in source_txt.read_text(encoding="utf-8").splitlines():
        if line.startswith("transcript") and ":" in line:
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no transcript line in {source_txt}")


def shared_data_folder(name: str) -> Path:
    """Return ../shared/data/NAME, or skip the test when it is absent."""
    folder = SHARED_DATA / name
    if not folder.is_dir():
        pytest.skip(f"real audio folder {folder} is absent (it sits beside the repository)")
    return folder


MANDARIN_RECORDINGS = {
    "funasr-example": ("audio-zh-funasr-asr-example", "asr_example.wav"),
    "paddlespeech-zh": ("audio-zh-paddlespeech-zh", "zh.wav"),
}


def load_mandarin_recording(name: str) -> Recording:
    """Return one of MANDARIN_RECORDINGS, or skip the test when its folder is absent."""
    folder_name, file_name = MANDARIN_RECORDINGS[name]
    folder = shared_data_folder(folder_name)
    transcript = _transcript_from_source(folder / "SOURCE.txt")
    return Recording(name, folder / file_name, transcript)


@pytest.fixture(params=sorted(MANDARIN_RECORDINGS))
def mandarin_recording(request: pytest.FixtureRequest) -> Recording:
    return load_mandarin_recording(request.param)


@pytest.fixture(scope="session")
def whisper_engine(tmp_path_factory: pytest.TempPathFactory):
    """One Whisper engine for the whole test session (loading takes about 2 s)."""
    from asr_tts.asr import create_asr_engine
    from asr_tts.asr_whisper import WhisperConfig

    cache_dir = tmp_path_factory.mktemp("whisper-cache")
    engine = create_asr_engine("whisper", WhisperConfig(model_cache_dir=cache_dir, cpu_threads=2))
    yield engine
    engine.close()
