"""Engine registry, options, CER helper and the FunASR backend's configuration errors."""

import importlib.util

import numpy as np
import pytest

from asr_tts.asr import (
    AsrOptions,
    AsrStream,
    FinalResult,
    available_asr_engines,
    character_error_rate,
    create_asr_engine,
)
from asr_tts.asr_funasr import FunAsrConfig
from server.errors import ConfigError, InvalidArgumentError


@pytest.mark.parametrize(
    ("hypothesis", "reference", "expected"),
    [
        ("欢迎大家", "欢迎大家", 0.0),
        ("欢迎，大家！", "欢迎大家", 0.0),
        ("欢迎大", "欢迎大家", 0.25),
        ("欢迎大家们", "欢迎大家", 0.25),
        ("换迎大家", "欢迎大家", 0.25),
        ("", "欢迎大家", 1.0),
        ("", "", 0.0),
        ("NFC ok", "nfc OK", 0.0),
    ],
)
def test_character_error_rate(hypothesis, reference, expected):
    assert character_error_rate(hypothesis, reference) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"language": "Chinese"}, "asr.language"),
        ({"partial_interval_ms": 50}, "asr.partial_interval_ms"),
        ({"hotwords": ("x" * 40,)}, "asr.hotwords"),
        ({"hotwords": tuple(f"词{i}" for i in range(101))}, "asr.hotwords"),
    ],
)
def test_asr_options_reject(kwargs, field):
    with pytest.raises(InvalidArgumentError) as raised:
        AsrOptions(**kwargs)
    assert raised.value.field == field


def test_asr_options_strip_blank_hotwords():
    assert AsrOptions(hotwords=(" 达摩院 ", "", "  ")).hotwords == ("达摩院",)


class CountingStream(AsrStream):
    """A stream whose decoder reports how much audio it saw."""

    def _decode_partial(self, audio):
        return str(len(audio))

    def _decode_final(self, audio):
        return FinalResult(str(len(audio)), (), len(audio) // 16, 0)


def test_stream_partial_schedule():
    stream = CountingStream(AsrOptions(partial_interval_ms=500))
    results = [stream.accept(np.zeros(1600, dtype=np.float32)) for _ in range(12)]
    partials = [result.text for result in results if result is not None]
    # a partial every 500 ms of new audio: after 5 and 10 chunks of 100 ms
    assert partials == ["8000", "16000"]
    assert stream.finalize().text == "19200"
    assert stream.finalize().text == "0"


def test_stream_rejects_stereo_array():
    stream = CountingStream(AsrOptions())
    with pytest.raises(InvalidArgumentError, match="mono"):
        stream.accept(np.zeros((10, 2), dtype=np.float32))


def test_registry_unknown_engine():
    with pytest.raises(ConfigError, match="available: whisper, funasr"):
        create_asr_engine("kaldi", None)
    assert "whisper" in available_asr_engines()


def test_funasr_missing_model_folder(tmp_path):
    folder = tmp_path / "paraformer-zh-streaming"
    with pytest.raises(ConfigError) as raised:
        FunAsrConfig(model_dir=folder)
    message = str(raised.value)
    assert str(folder) in message
    assert (
        f"modelscope download --model iic/paraformer-zh-streaming --local_dir {folder}" in message
    )


def test_funasr_incomplete_vad_folder(tmp_path):
    model_dir = tmp_path / "paraformer"
    model_dir.mkdir()
    for name in ("config.yaml", "model.pt"):
        (model_dir / name).write_text("")
    vad_dir = tmp_path / "fsmn-vad"
    vad_dir.mkdir()
    (vad_dir / "config.yaml").write_text("")
    with pytest.raises(ConfigError, match="missing model.pt.*speech_fsmn_vad"):
        FunAsrConfig(model_dir=model_dir, vad_model_dir=vad_dir)


@pytest.mark.skipif(
    importlib.util.find_spec("funasr") is not None, reason="funasr is installed here"
)
def test_funasr_missing_package(tmp_path):
    for name in ("config.yaml", "model.pt"):
        (tmp_path / name).write_text("")
    with pytest.raises(ConfigError, match=r"pip install 'kefu\[funasr\]'"):
        create_asr_engine("funasr", FunAsrConfig(model_dir=tmp_path))
