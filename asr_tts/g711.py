"""G.711 µ-law and A-law codecs built on numpy lookup tables.

The tables follow ITU-T G.711 (the same segment layout as Sun's reference `g711.c`):
16-bit linear PCM in, 8-bit code out. Decoding is one table lookup per byte. Encoding is one
lookup per sample in a 65 536-entry table, indexed by the int16 value viewed as uint16.
"""

from __future__ import annotations

import numpy as np

# µ-law adds this bias (in 16-bit units) before taking the segment, so that small values land
# in segment 0. The encoder works on 14-bit values as G.711 defines it, with the bias and the
# clip level scaled down by 4.
_MULAW_BIAS = 0x84
_MULAW_BIAS_14BIT = _MULAW_BIAS >> 2
_MULAW_CLIP_14BIT = 8159
# A-law codes are stored with every other bit inverted (the "even bit" inversion).
_ALAW_XOR_MASK = 0x55

MULAW_SILENCE_BYTE = 0xFF
ALAW_SILENCE_BYTE = 0xD5


def _build_mulaw_decode_table() -> np.ndarray:
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = (((mantissa << 3) + _MULAW_BIAS) << exponent) - _MULAW_BIAS
    return np.where(codes & 0x80, -magnitude, magnitude).astype(np.int16)


def _build_alaw_decode_table() -> np.ndarray:
    codes = np.arange(256, dtype=np.int32) ^ _ALAW_XOR_MASK
    segment = (codes >> 4) & 0x07
    mantissa = (codes & 0x0F) << 4
    magnitude = np.where(segment == 0, mantissa + 8, mantissa + 0x108)
    magnitude = np.where(segment > 1, magnitude << np.maximum(segment - 1, 0), magnitude)
    return np.where(codes & 0x80, magnitude, -magnitude).astype(np.int16)


def _build_mulaw_encode_table() -> np.ndarray:
    pcm = np.arange(-32768, 32768, dtype=np.int32) >> 2
    sign = np.where(pcm < 0, 0x80, 0x00)
    magnitude = np.minimum(np.abs(pcm), _MULAW_CLIP_14BIT) + _MULAW_BIAS_14BIT

    # the segment is the position of the highest set bit above bit 5
    exponent = np.floor(np.log2(magnitude)).astype(np.int32) - 5
    mantissa = (magnitude >> (exponent + 1)) & 0x0F

    # the clipped maximum lands one past the last segment and takes the largest code
    overflow = exponent > 7
    exponent = np.where(overflow, 7, exponent)
    mantissa = np.where(overflow, 0x0F, mantissa)
    codes = ~(sign | (exponent << 4) | mantissa) & 0xFF
    return _reorder_for_uint16_index(codes.astype(np.uint8))


def _build_alaw_encode_table() -> np.ndarray:
    pcm = np.arange(-32768, 32768, dtype=np.int32) >> 3
    mask = np.where(pcm >= 0, 0xD5, _ALAW_XOR_MASK)
    magnitude = np.where(pcm >= 0, pcm, -pcm - 1)

    # segment 0 covers 0..31; each further segment doubles the range
    segment = np.clip(np.floor(np.log2(np.maximum(magnitude, 1))).astype(np.int32) - 4, 0, 8)
    shift = np.where(segment < 2, 1, segment)
    codes = (segment << 4) | ((magnitude >> shift) & 0x0F)
    codes = np.where(segment >= 8, 0x7F, codes) ^ mask
    return _reorder_for_uint16_index(codes.astype(np.uint8))


def _reorder_for_uint16_index(codes_from_minus_32768: np.ndarray) -> np.ndarray:
    # index 0..32767 are the non-negative int16 values, 32768..65535 the negative ones
    return np.roll(codes_from_minus_32768, -32768)


_MULAW_DECODE = _build_mulaw_decode_table()
_ALAW_DECODE = _build_alaw_decode_table()
_MULAW_ENCODE = _build_mulaw_encode_table()
_ALAW_ENCODE = _build_alaw_encode_table()


def mulaw_decode(codes: bytes | np.ndarray) -> np.ndarray:
    """Decode G.711 µ-law bytes.

    Args:
        codes: one byte per sample, any sample rate (G.711 is 8 kHz).

    Returns:
        int16 array with one sample per input byte.
    """
    return _MULAW_DECODE[np.frombuffer(codes, dtype=np.uint8)]


def alaw_decode(codes: bytes | np.ndarray) -> np.ndarray:
    """Decode G.711 A-law bytes into an int16 array, one sample per byte."""
    return _ALAW_DECODE[np.frombuffer(codes, dtype=np.uint8)]


def mulaw_encode(pcm: np.ndarray) -> bytes:
    """Encode int16 samples as G.711 µ-law, one byte per sample."""
    return _MULAW_ENCODE[np.asarray(pcm, dtype=np.int16).view(np.uint16)].tobytes()


def alaw_encode(pcm: np.ndarray) -> bytes:
    """Encode int16 samples as G.711 A-law, one byte per sample."""
    return _ALAW_ENCODE[np.asarray(pcm, dtype=np.int16).view(np.uint16)].tobytes()
