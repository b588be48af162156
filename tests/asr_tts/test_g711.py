import numpy as np
import pytest

from asr_tts import g711

# (linear sample, code) pairs from the G.711 segment tables
MULAW_ENCODE_CASES = [(0, 0xFF), (-1, 0x7E), (1, 0xFF), (100, 0xF2), (-100, 0x72)]
MULAW_ENCODE_CASES += [(32767, 0x80), (-32768, 0x00)]
MULAW_DECODE_CASES = [(0x00, -32124), (0x80, 32124), (0xFF, 0), (0x7F, 0), (0xF2, 104)]
ALAW_ENCODE_CASES = [(0, 0xD5), (-1, 0x55), (100, 0xD3), (-100, 0x53)]
ALAW_ENCODE_CASES += [(32767, 0xAA), (-32768, 0x2A)]
ALAW_DECODE_CASES = [(0xD5, 8), (0x55, -8), (0xAA, 32256), (0x2A, -32256)]


@pytest.mark.parametrize(("sample", "code"), MULAW_ENCODE_CASES)
def test_mulaw_encode_known_values(sample, code):
    assert g711.mulaw_encode(np.array([sample], dtype=np.int16)) == bytes([code])


@pytest.mark.parametrize(("code", "sample"), MULAW_DECODE_CASES)
def test_mulaw_decode_known_values(code, sample):
    assert g711.mulaw_decode(bytes([code]))[0] == sample


@pytest.mark.parametrize(("sample", "code"), ALAW_ENCODE_CASES)
def test_alaw_encode_known_values(sample, code):
    assert g711.alaw_encode(np.array([sample], dtype=np.int16)) == bytes([code])


@pytest.mark.parametrize(("code", "sample"), ALAW_DECODE_CASES)
def test_alaw_decode_known_values(code, sample):
    assert g711.alaw_decode(bytes([code]))[0] == sample


def test_mulaw_codes_round_trip():
    codes = bytes(range(256))
    again = g711.mulaw_encode(g711.mulaw_decode(codes))
    # 0x7F is µ-law's negative zero: it decodes to 0, which encodes as 0xFF
    mismatches = [code for code, back in zip(codes, again, strict=True) if code != back]
    assert mismatches == [0x7F]


def test_alaw_codes_round_trip():
    codes = bytes(range(256))
    assert g711.alaw_encode(g711.alaw_decode(codes)) == codes


@pytest.mark.parametrize(
    ("encode", "decode"),
    [(g711.mulaw_encode, g711.mulaw_decode), (g711.alaw_encode, g711.alaw_decode)],
    ids=["mulaw", "alaw"],
)
def test_sine_round_trip_snr(encode, decode):
    time_s = np.arange(8000) / 8000
    sine = np.round(10000 * np.sin(2 * np.pi * 440 * time_s)).astype(np.int16)
    decoded = decode(encode(sine)).astype(np.float64)
    noise = decoded - sine
    snr_db = 10 * np.log10(np.sum(sine.astype(np.float64) ** 2) / np.sum(noise**2))
    # G.711 gives about 38 dB SNR for a loud sine
    assert snr_db > 33


def test_silence_bytes_decode_to_zero():
    assert g711.mulaw_decode(bytes([g711.MULAW_SILENCE_BYTE]))[0] == 0
    assert abs(int(g711.alaw_decode(bytes([g711.ALAW_SILENCE_BYTE]))[0])) <= 8
