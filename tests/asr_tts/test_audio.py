import numpy as np
import pytest

from asr_tts import g711
from asr_tts.audio import (
    AudioDecoder,
    AudioEncoder,
    ChannelMode,
    InputAudioFormat,
    OutputAudioFormat,
    decode_audio,
    float_to_pcm16,
)
from asr_tts.wav import SampleEncoding, build_wav_header
from server.errors import FailedPreconditionError, InvalidArgumentError


def tone(frequency_hz: float, rate_hz: int, seconds: float = 1.0, amplitude: float = 0.5):
    time_s = np.arange(int(rate_hz * seconds)) / rate_hz
    return (amplitude * np.sin(2 * np.pi * frequency_hz * time_s)).astype(np.float32)


def peak_frequency_hz(samples: np.ndarray, rate_hz: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate_hz)[np.argmax(spectrum)])


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))


def feed_in_random_chunks(decoder: AudioDecoder, data: bytes, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    parts, offset = [], 0
    while offset < len(data):
        size = int(rng.choice([1, 3, 7, 160, 321, int(rng.integers(1, 4000))]))
        parts.append(decoder.feed(data[offset : offset + size]))
        offset += size
    parts.append(decoder.flush())
    return np.concatenate(parts)


# --- input format validation ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"encoding": "opus"}, "input_audio.encoding"),
        ({"encoding": "pcm16", "sample_rate_hz": 11025}, "input_audio.sample_rate_hz"),
        ({"encoding": "pcm16"}, "input_audio.sample_rate_hz"),
        ({"encoding": "mulaw", "sample_rate_hz": 16000}, "input_audio.sample_rate_hz"),
        ({"encoding": "alaw", "sample_rate_hz": 16000}, "input_audio.sample_rate_hz"),
        ({"encoding": "pcm16", "sample_rate_hz": 16000, "channels": 9}, "input_audio.channels"),
        ({"encoding": "pcm16", "sample_rate_hz": 16000, "channel": 1}, "input_audio.channel"),
        (
            {"encoding": "pcm16", "sample_rate_hz": 16000, "channel": "center"},
            "input_audio.channel",
        ),
    ],
)
def test_input_format_rejects(kwargs, field):
    with pytest.raises(InvalidArgumentError) as raised:
        InputAudioFormat(**kwargs)
    assert raised.value.field == field


def test_input_format_error_lists_accepted_rates():
    with pytest.raises(InvalidArgumentError, match="8000, 16000, 22050, 24000, 44100, 48000"):
        InputAudioFormat("pcm16", 11025)


def test_input_format_g711_defaults_to_8k():
    assert InputAudioFormat("mulaw").sample_rate_hz == 8000
    assert InputAudioFormat("alaw").channels == 1


@pytest.mark.parametrize("rate_hz", [8000, 16000, 22050, 24000, 44100, 48000])
def test_decoder_pcm16_rates_give_16k(rate_hz):
    samples = tone(440, rate_hz)
    decoded = decode_audio(float_to_pcm16(samples).tobytes(), InputAudioFormat("pcm16", rate_hz))
    assert abs(decoded.size - 16000) <= 1
    assert abs(peak_frequency_hz(decoded, 16000) - 440) < 2


# --- chunking --------------------------------------------------------------------------------

STEREO_48K = float_to_pcm16(np.stack([tone(440, 48000), tone(660, 48000)], axis=1)).tobytes()
TONE_8K = float_to_pcm16(tone(440, 8000))
WAV_WITH_ODD_CHUNK = (
    build_wav_header(SampleEncoding.PCM_S16LE, 1, 22050, 0)[:36]
    + b"LIST\x03\x00\x00\x00abc\x00"
    + b"data"
    + (22050 * 2).to_bytes(4, "little")
    + float_to_pcm16(tone(440, 22050)).tobytes()
)
CHUNKING_CASES = {
    "pcm16-48k-stereo": (InputAudioFormat("pcm16", 48000, channels=2), STEREO_48K),
    "pcm16-8k": (InputAudioFormat("pcm16", 8000), TONE_8K.tobytes()),
    "mulaw": (InputAudioFormat("mulaw"), g711.mulaw_encode(TONE_8K)),
    "alaw": (InputAudioFormat("alaw"), g711.alaw_encode(TONE_8K)),
    "wav-22k-odd-list": (InputAudioFormat("wav"), WAV_WITH_ODD_CHUNK),
}


@pytest.mark.parametrize("case", sorted(CHUNKING_CASES))
@pytest.mark.parametrize("seed", [0, 1])
def test_decoder_random_chunks_match_one_shot(case, seed):
    input_format, data = CHUNKING_CASES[case]
    one_shot = decode_audio(data, input_format)
    chunked = feed_in_random_chunks(AudioDecoder(input_format), data, seed)
    assert chunked.size == one_shot.size
    np.testing.assert_array_equal(chunked, one_shot)


def test_decoder_carries_odd_byte():
    decoder = AudioDecoder(InputAudioFormat("pcm16", 16000))
    data = np.array([1000, -1000, 2000], dtype="<i2").tobytes()
    first = decoder.feed(data[:3])
    second = decoder.feed(data[3:])
    np.testing.assert_array_equal(
        np.concatenate([first, second]), [1000 / 32768, -1000 / 32768, 2000 / 32768]
    )


def test_decoder_feed_after_flush_rejected():
    decoder = AudioDecoder(InputAudioFormat("mulaw"))
    decoder.flush()
    with pytest.raises(FailedPreconditionError):
        decoder.feed(b"\xff")


def test_decoder_empty_stream():
    assert decode_audio(b"", InputAudioFormat("pcm16", 16000)).size == 0


# --- resampling ------------------------------------------------------------------------------


def test_resample_48k_to_16k_keeps_1khz():
    data = float_to_pcm16(tone(1000, 48000)).tobytes()
    decoded = decode_audio(data, InputAudioFormat("pcm16", 48000))
    assert abs(peak_frequency_hz(decoded, 16000) - 1000) < 2
    assert rms(decoded[800:-800]) == pytest.approx(rms(tone(1000, 16000)), rel=0.02)


def test_resample_16k_to_8k_removes_7khz():
    source = tone(7000, 16000)
    data = float_to_pcm16(source).tobytes()
    decoder = AudioDecoder(InputAudioFormat("pcm16", 16000), output_sample_rate_hz=8000)
    decoded = feed_in_random_chunks(decoder, data, seed=3)
    # without a low-pass, 7 kHz would fold to 1 kHz at 8 kHz
    attenuation_db = 20 * np.log10(rms(decoded) / rms(source))
    assert attenuation_db <= -40


def test_resample_chunked_has_no_boundary_clicks():
    data = float_to_pcm16(tone(440, 48000)).tobytes()
    decoder = AudioDecoder(InputAudioFormat("pcm16", 48000))
    # 10 ms chunks: a resampler restarted per chunk would add a transient at each boundary
    parts = [decoder.feed(data[i : i + 960]) for i in range(0, len(data), 960)]
    decoded = np.concatenate([*parts, decoder.flush()])[400:-400]
    reference = tone(440, 16000)
    largest_step = np.max(np.abs(np.diff(decoded)))
    assert largest_step <= np.max(np.abs(np.diff(reference))) * 1.05


# --- channels --------------------------------------------------------------------------------

LEFT, RIGHT = tone(440, 16000), tone(1200, 16000, amplitude=0.25)
STEREO_16K = float_to_pcm16(np.stack([LEFT, RIGHT], axis=1)).tobytes()


@pytest.mark.parametrize(
    ("channel", "expected_hz"),
    [(ChannelMode.LEFT, 440), ("right", 1200), (0, 440), (1, 1200)],
)
def test_stereo_channel_selection(channel, expected_hz):
    decoded = decode_audio(
        STEREO_16K, InputAudioFormat("pcm16", 16000, channels=2, channel=channel)
    )
    assert decoded.size == 16000
    assert abs(peak_frequency_hz(decoded, 16000) - expected_hz) < 2


def test_stereo_right_of_mono_rejected():
    with pytest.raises(InvalidArgumentError, match="1 channel"):
        AudioDecoder(InputAudioFormat("pcm16", 16000, channel="right"))


def test_stereo_mix_averages_different_channels():
    decoder = AudioDecoder(InputAudioFormat("pcm16", 16000, channels=2))
    decoded = np.concatenate([decoder.feed(STEREO_16K), decoder.flush()])
    expected = (float_to_pcm16(LEFT) / 32768 + float_to_pcm16(RIGHT) / 32768) / 2
    np.testing.assert_allclose(decoded, expected, atol=1e-6)
    assert decoder.channels_identical is False


def test_stereo_identical_channels_take_one():
    pcm = float_to_pcm16(LEFT)
    dual_mono = np.stack([pcm, pcm], axis=1).tobytes()
    decoder = AudioDecoder(InputAudioFormat("pcm16", 16000, channels=2))
    decoded = np.concatenate([decoder.feed(dual_mono), decoder.flush()])
    np.testing.assert_array_equal(decoded, pcm / np.float32(32768))
    assert decoder.channels_identical is True


def test_stereo_wav_channel_from_header():
    header = build_wav_header(SampleEncoding.PCM_S16LE, 2, 16000, len(STEREO_16K))
    decoded = decode_audio(header + STEREO_16K, InputAudioFormat("wav", channel="right"))
    assert abs(peak_frequency_hz(decoded, 16000) - 1200) < 2


# --- output ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "silence_byte"),
    [("mulaw", g711.MULAW_SILENCE_BYTE), ("alaw", g711.ALAW_SILENCE_BYTE)],
)
def test_output_g711_frames_are_160_bytes(encoding, silence_byte):
    synthesized = tone(440, 22050, seconds=1.013)
    encoder = AudioEncoder(OutputAudioFormat(encoding), input_sample_rate_hz=22050)
    frames = encoder.feed(synthesized[:5000]) + encoder.feed(synthesized[5000:]) + encoder.flush()
    assert {len(frame.payload) for frame in frames} == {160}
    assert frames[-1].num_samples < 160
    assert frames[-1].payload.endswith(bytes([silence_byte]) * (160 - frames[-1].num_samples))
    real_ms = sum(frame.duration_ms for frame in frames)
    assert real_ms == pytest.approx(1013, abs=0.2)
    assert len(frames) == 51


def test_output_pcm16_frames_at_requested_rate():
    encoder = AudioEncoder(OutputAudioFormat("pcm16", 16000), input_sample_rate_hz=22050)
    frames = encoder.feed(tone(440, 22050, seconds=0.5)) + encoder.flush()
    assert {len(frame.payload) for frame in frames} == {640}
    decoded = np.frombuffer(b"".join(frame.payload for frame in frames), dtype="<i2")
    assert abs(peak_frequency_hz(decoded[:8000].astype(np.float32), 16000) - 440) < 2
    assert encoder.samples_out == 8000


def test_output_without_padding_keeps_short_last_frame():
    output_format = OutputAudioFormat("mulaw", pad_last_frame=False)
    encoder = AudioEncoder(output_format, input_sample_rate_hz=8000)
    frames = encoder.feed(np.zeros(250, dtype=np.float32)) + encoder.flush()
    assert [len(frame.payload) for frame in frames] == [160, 90]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"encoding": "wav"}, "output_audio.encoding"),
        ({"encoding": "mulaw", "sample_rate_hz": 16000}, "output_audio.sample_rate_hz"),
        ({"encoding": "pcm16", "sample_rate_hz": 11025}, "output_audio.sample_rate_hz"),
        ({"encoding": "mulaw", "frame_ms": 5}, "output_audio.frame_ms"),
        ({"encoding": "pcm16", "sample_rate_hz": 22050, "frame_ms": 15}, "output_audio.frame_ms"),
    ],
)
def test_output_format_rejects(kwargs, field):
    with pytest.raises(InvalidArgumentError) as raised:
        OutputAudioFormat(**kwargs)
    assert raised.value.field == field
