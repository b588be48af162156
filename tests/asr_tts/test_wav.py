import struct

import numpy as np
import pytest

from asr_tts import g711
from asr_tts.audio import AudioDecoder, InputAudioFormat, decode_audio
from asr_tts.wav import WAVE_FORMAT_EXTENSIBLE, SampleEncoding, WavStreamParser, build_wav_header
from server.errors import InvalidArgumentError

from .conftest import shared_data_folder

PCM_SUBFORMAT_GUID = struct.pack("<H", 1) + bytes.fromhex("000000001000800000aa00389b71")


def chunk(chunk_id: bytes, body: bytes) -> bytes:
    """A RIFF chunk with its pad byte when the body has an odd size."""
    return struct.pack("<4sI", chunk_id, len(body)) + body + (b"\0" if len(body) % 2 else b"")


def riff(*chunks: bytes) -> bytes:
    body = b"WAVE" + b"".join(chunks)
    return struct.pack("<4sI", b"RIFF", len(body)) + body


def fmt_body(code: int, channels: int, rate_hz: int, bits: int, extra: bytes = b"") -> bytes:
    block_align = channels * bits // 8
    return (
        struct.pack("<HHIIHH", code, channels, rate_hz, rate_hz * block_align, block_align, bits)
        + extra
    )


def tone_pcm16(rate_hz: int = 16000, seconds: float = 0.5) -> np.ndarray:
    time_s = np.arange(int(rate_hz * seconds)) / rate_hz
    return np.round(8000 * np.sin(2 * np.pi * 440 * time_s)).astype(np.int16)


TONE = tone_pcm16()
EXPECTED = TONE.astype(np.float32) / 32768


def decode_wav(data: bytes, **format_args) -> np.ndarray:
    return decode_audio(data, InputAudioFormat("wav", **format_args))


def test_wav_plain_16_byte_fmt():
    data = riff(chunk(b"fmt ", fmt_body(1, 1, 16000, 16)), chunk(b"data", TONE.tobytes()))
    np.testing.assert_array_equal(decode_wav(data), EXPECTED)


def test_wav_18_byte_fmt_and_fact_chunk():
    fmt18 = fmt_body(1, 1, 16000, 16, extra=struct.pack("<H", 0))
    fact = chunk(b"fact", struct.pack("<I", len(TONE)))
    data = riff(chunk(b"fmt ", fmt18), fact, chunk(b"data", TONE.tobytes()))
    np.testing.assert_array_equal(decode_wav(data), EXPECTED)


def test_wav_extensible_pcm():
    extension = struct.pack("<HHI", 22, 16, 0x4) + PCM_SUBFORMAT_GUID
    body = fmt_body(WAVE_FORMAT_EXTENSIBLE, 1, 16000, 16, extra=extension)
    data = riff(chunk(b"fmt ", body), chunk(b"data", TONE.tobytes()))
    np.testing.assert_array_equal(decode_wav(data), EXPECTED)


def test_wav_extensible_unknown_guid_rejected():
    extension = struct.pack("<HHI", 22, 16, 0x4) + b"\x01" * 16
    body = fmt_body(WAVE_FORMAT_EXTENSIBLE, 1, 16000, 16, extra=extension)
    with pytest.raises(InvalidArgumentError, match="subformat"):
        decode_wav(riff(chunk(b"fmt ", body), chunk(b"data", TONE.tobytes())))


@pytest.mark.parametrize(
    ("code", "encode", "decode"),
    [(7, g711.mulaw_encode, g711.mulaw_decode), (6, g711.alaw_encode, g711.alaw_decode)],
    ids=["mulaw", "alaw"],
)
def test_wav_g711(code, encode, decode):
    tone_8k = tone_pcm16(8000)
    codes = encode(tone_8k)
    data = riff(chunk(b"fmt ", fmt_body(code, 1, 8000, 8, b"\0\0")), chunk(b"data", codes))
    expected = decode(codes).astype(np.float32) / 32768
    # 0.5 s at 8 kHz resampled to the 16 kHz ASR rate
    assert decode_wav(data, sample_rate_hz=8000).size == 8000
    decoder = AudioDecoder(InputAudioFormat("wav"), output_sample_rate_hz=8000)
    decoded = np.concatenate([decoder.feed(data), decoder.flush()])
    np.testing.assert_array_equal(decoded, expected)


def test_wav_odd_chunks_and_trailing_list():
    odd_list = chunk(b"LIST", b"INFOx")  # 5 bytes + pad byte
    codes = g711.mulaw_encode(tone_pcm16(8000)[:4001])  # odd data size + pad byte
    data = riff(
        chunk(b"fmt ", fmt_body(7, 1, 8000, 8, b"\0\0")),
        odd_list,
        chunk(b"data", codes),
        chunk(b"LIST", b"INFOtrailing metadata"),
    )
    decoder = AudioDecoder(InputAudioFormat("wav"), output_sample_rate_hz=8000)
    decoded = np.concatenate([decoder.feed(data), decoder.flush()])
    np.testing.assert_array_equal(decoded, g711.mulaw_decode(codes).astype(np.float32) / 32768)


def test_wav_streaming_data_size_unknown():
    header = riff(chunk(b"fmt ", fmt_body(1, 1, 16000, 16)))
    data = header + struct.pack("<4sI", b"data", 0xFFFFFFFF) + TONE.tobytes()
    np.testing.assert_array_equal(decode_wav(data), EXPECTED)


@pytest.mark.parametrize(
    "sample_encoding",
    [
        SampleEncoding.PCM_S24LE,
        SampleEncoding.PCM_S32LE,
        SampleEncoding.FLOAT32LE,
        SampleEncoding.PCM_U8,
    ],
    ids=["pcm24", "pcm32", "float32", "pcm8"],
)
def test_wav_other_sample_formats(sample_encoding):
    values = EXPECTED.astype(np.float64)
    match sample_encoding:
        case SampleEncoding.PCM_S24LE:
            ints = np.round(values * (1 << 23)).astype("<i4")
            payload = b"".join(int(v).to_bytes(3, "little", signed=True) for v in ints)
        case SampleEncoding.PCM_S32LE:
            payload = np.round(values * (1 << 31)).astype("<i4").tobytes()
        case SampleEncoding.FLOAT32LE:
            payload = values.astype("<f4").tobytes()
        case SampleEncoding.PCM_U8:
            payload = (np.round(values * 128) + 128).clip(0, 255).astype(np.uint8).tobytes()
    header = build_wav_header(sample_encoding, 1, 16000, len(payload))
    tolerance = 1 / 128 if sample_encoding is SampleEncoding.PCM_U8 else 1e-6
    np.testing.assert_allclose(decode_wav(header + payload), EXPECTED, atol=tolerance)


@pytest.mark.parametrize("cut", [0, 4, 11, 20, 30, 43])
def test_wav_truncated_header(cut):
    data = build_wav_header(SampleEncoding.PCM_S16LE, 1, 16000, 0)[:cut]
    with pytest.raises(InvalidArgumentError, match="truncated") as raised:
        decode_wav(data)
    assert raised.value.field == "input_audio.wav_header"


def test_wav_short_fmt_chunk_rejected():
    data = riff(chunk(b"fmt ", fmt_body(1, 1, 16000, 16)[:12]), chunk(b"data", TONE.tobytes()))
    with pytest.raises(InvalidArgumentError, match="shorter than 16 bytes"):
        decode_wav(data)


def test_wav_header_rate_contradicts_session():
    data = build_wav_header(SampleEncoding.PCM_S16LE, 1, 16000, TONE.nbytes) + TONE.tobytes()
    with pytest.raises(InvalidArgumentError) as raised:
        decode_wav(data, sample_rate_hz=8000)
    assert raised.value.field == "input_audio.sample_rate_hz"
    assert raised.value.value == 8000
    assert "16000" in str(raised.value)


def test_wav_header_channels_contradict_session():
    data = build_wav_header(SampleEncoding.PCM_S16LE, 1, 16000, TONE.nbytes) + TONE.tobytes()
    with pytest.raises(InvalidArgumentError) as raised:
        decode_wav(data, channels=2)
    assert raised.value.field == "input_audio.channels"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (b"RIFX\0\0\0\0WAVE", "big-endian"),
        (b"OggS\0\0\0\0\0\0\0\0", "not a WAV file"),
    ],
)
def test_wav_not_riff_rejected(header, message):
    with pytest.raises(InvalidArgumentError, match=message):
        WavStreamParser().feed(header)


def test_wav_unsupported_format_lists_accepted():
    data = riff(chunk(b"fmt ", fmt_body(2, 1, 16000, 4)), chunk(b"data", b"\0" * 10))
    with pytest.raises(InvalidArgumentError, match="accepted: PCM"):
        decode_wav(data)


def test_wav_data_before_fmt_rejected():
    with pytest.raises(InvalidArgumentError, match="before the fmt chunk"):
        decode_wav(riff(chunk(b"data", TONE.tobytes()), chunk(b"fmt ", fmt_body(1, 1, 16000, 16))))


def test_wav_real_file_18_byte_fmt():
    wav_path = shared_data_folder("audio-en-vosk-digits") / "test.wav"
    samples = decode_wav(wav_path.read_bytes())
    # 265,914 bytes of which 265,856 are 16 kHz PCM16: 8.308 s
    assert samples.size == 132_928
    assert np.abs(samples).max() > 0.05
