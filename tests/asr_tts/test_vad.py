import time

import numpy as np
import pytest

from asr_tts.audio import InputAudioFormat, decode_audio
from asr_tts.vad import (
    Endpointer,
    EndpointerConfig,
    EndReason,
    SilenceStarted,
    SpeechEnded,
    SpeechResumed,
    SpeechStarted,
    WebRtcVad,
    iter_endpoint_events,
    speech_duration_ms,
)
from server.errors import InvalidArgumentError

from .conftest import shared_data_folder

RATE_HZ = 16000


def run_endpointer(samples, chunk_samples=1000, **config):
    endpointer = Endpointer(EndpointerConfig(**config))
    chunks = (samples[i : i + chunk_samples] for i in range(0, len(samples), chunk_samples))
    return list(iter_endpoint_events(chunks, endpointer))


def utterances(events):
    return [event for event in events if isinstance(event, SpeechEnded)]


@pytest.fixture
def funasr_speech() -> np.ndarray:
    wav = shared_data_folder("audio-zh-funasr-asr-example") / "asr_example.wav"
    return decode_audio(wav.read_bytes(), InputAudioFormat("wav"))


@pytest.fixture
def paddle_speech() -> np.ndarray:
    wav = shared_data_folder("audio-zh-paddlespeech-zh") / "zh.wav"
    return decode_audio(wav.read_bytes(), InputAudioFormat("wav"))


def test_endpointer_one_utterance_in_real_speech(funasr_speech):
    events = run_endpointer(funasr_speech)
    ended = utterances(events)
    assert len(ended) == 1
    assert isinstance(events[0], SpeechStarted)
    # published segmentation of this file: speech from 0.88 s to 5.195 s
    assert ended[0].start_sample <= int(0.88 * RATE_HZ)
    assert ended[0].end_sample >= int(5.0 * RATE_HZ)
    assert ended[0].end_sample <= len(funasr_speech)


def test_endpointer_event_order(funasr_speech):
    padded = np.concatenate([funasr_speech, np.zeros(RATE_HZ, dtype=np.float32)])
    events = run_endpointer(padded)
    kinds = [type(event) for event in events]
    assert kinds[0] is SpeechStarted
    assert kinds[-2:] == [SilenceStarted, SpeechEnded]
    assert utterances(events)[0].reason is EndReason.SILENCE


def test_endpointer_chunk_size_does_not_change_events(paddle_speech):
    assert run_endpointer(paddle_speech, 160) == run_endpointer(paddle_speech, 7777)


def test_endpointer_resumes_after_short_pause(paddle_speech):
    # the speaker pauses mid-sentence (near 2.4 s) for less than end_silence_ms
    tail = np.zeros(RATE_HZ, dtype=np.float32)
    events = run_endpointer(np.concatenate([paddle_speech, tail]))
    kinds = [type(event) for event in events]
    assert len(utterances(events)) == 1
    resumed_at = kinds.index(SpeechResumed)
    assert kinds[resumed_at - 1] is SilenceStarted


def test_endpointer_long_pause_splits(funasr_speech, paddle_speech):
    pause = np.zeros(int(1.5 * RATE_HZ), dtype=np.float32)
    events = run_endpointer(np.concatenate([funasr_speech, pause, paddle_speech]))
    ended = utterances(events)
    assert len(ended) == 2
    assert ended[0].end_sample <= ended[1].start_sample


def test_endpointer_max_utterance_length(funasr_speech):
    events = run_endpointer(funasr_speech, max_utterance_ms=2000)
    ended = utterances(events)
    assert len(ended) >= 2
    assert ended[0].reason is EndReason.MAX_LENGTH
    frame_samples = RATE_HZ * 30 // 1000
    assert all(e.end_sample - e.start_sample <= 2 * RATE_HZ + frame_samples for e in ended)


def test_endpointer_8k_phone_audio():
    wav = shared_data_folder("audio-en-8k-osr-harvard") / "OSR_us_000_0034_8k.wav"
    samples = decode_audio(wav.read_bytes(), InputAudioFormat("wav"), output_sample_rate_hz=8000)
    endpointer = Endpointer(EndpointerConfig(), sample_rate_hz=8000)
    events = endpointer.feed(samples) + endpointer.flush()
    # ten Harvard sentences; pauses under end_silence_ms merge some of them
    assert 5 <= len(utterances(events)) <= 10


def test_endpointer_ten_minutes_of_silence_is_cheap():
    ten_minutes = np.zeros(600 * RATE_HZ, dtype=np.float32)
    started = time.perf_counter()
    events = run_endpointer(ten_minutes, chunk_samples=RATE_HZ // 50)
    elapsed_s = time.perf_counter() - started
    assert events == []
    assert elapsed_s < 5


def test_endpointer_low_noise_gives_no_utterance():
    rng = np.random.default_rng(0)
    hiss = (rng.standard_normal(60 * RATE_HZ) * 1e-3).astype(np.float32)
    assert run_endpointer(hiss) == []


def test_endpointer_flush_closes_open_utterance(funasr_speech):
    endpointer = Endpointer()
    endpointer.feed(funasr_speech[: 3 * RATE_HZ])
    assert endpointer.in_speech
    (event,) = endpointer.flush()
    assert event.reason is EndReason.END_OF_STREAM
    assert event.end_sample <= 3 * RATE_HZ


def test_speech_duration_of_silence_is_zero():
    vad = WebRtcVad()
    assert speech_duration_ms(np.zeros(RATE_HZ, dtype=np.float32), vad) == 0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"speculative_silence_ms": 800}, "endpointer.speculative_silence_ms"),
        ({"aggressiveness": 4}, "endpointer.aggressiveness"),
        ({"frame_ms": 25}, "endpointer.frame_ms"),
        ({"end_silence_ms": 50}, "endpointer.end_silence_ms"),
        ({"max_utterance_ms": 500}, "endpointer.max_utterance_ms"),
    ],
)
def test_endpointer_config_rejects(kwargs, field):
    with pytest.raises(InvalidArgumentError) as raised:
        EndpointerConfig(**kwargs)
    assert raised.value.field == field
