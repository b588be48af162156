"""Incremental RIFF/WAVE header parsing.

`WavStreamParser` takes a WAV file in chunks of any size and hands back the bytes of the
`data` chunk as they arrive, so a caller never needs the whole file in memory. It accepts
these header variants from phone platforms and recorders:

- 16-, 18- and 40-byte `fmt ` chunks, WAVE_FORMAT_EXTENSIBLE, µ-law and A-law;
- `fact`, `LIST` and other chunks before `data`, and odd-sized chunks with a pad byte;
- a `data` size of 0 or 0xFFFFFFFF, written by streaming writers that cannot seek back.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass
from enum import StrEnum

from server.errors import InvalidArgumentError

logger = logging.getLogger(__name__)

WAVE_FORMAT_PCM = 0x0001
WAVE_FORMAT_IEEE_FLOAT = 0x0003
WAVE_FORMAT_ALAW = 0x0006
WAVE_FORMAT_MULAW = 0x0007
WAVE_FORMAT_EXTENSIBLE = 0xFFFE

# the 14 bytes that follow the 2-byte format code in every KSDATAFORMAT_SUBTYPE GUID
_KSDATAFORMAT_GUID_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"

_RIFF_HEADER_BYTES = 12
_CHUNK_HEADER_BYTES = 8
# a fmt chunk is at most 40 bytes in practice; the cap bounds what one header can buffer
_MAX_FMT_CHUNK_BYTES = 1024
# writers that stream use these sizes to mean "until the end of the stream"
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)
_MIN_SAMPLE_RATE_HZ = 1000
_MAX_SAMPLE_RATE_HZ = 384_000
_MAX_CHANNELS = 32

HEADER_FIELD = "input_audio.wav_header"


class SampleEncoding(StrEnum):
    """The storage format of one sample of one channel in the data chunk."""

    PCM_U8 = "pcm_u8"
    PCM_S16LE = "pcm_s16le"
    PCM_S24LE = "pcm_s24le"
    PCM_S32LE = "pcm_s32le"
    FLOAT32LE = "float32le"
    FLOAT64LE = "float64le"
    MULAW = "mulaw"
    ALAW = "alaw"

    @property
    def bytes_per_sample(self) -> int:
        return _BYTES_PER_SAMPLE[self]


_BYTES_PER_SAMPLE = {
    SampleEncoding.PCM_U8: 1,
    SampleEncoding.PCM_S16LE: 2,
    SampleEncoding.PCM_S24LE: 3,
    SampleEncoding.PCM_S32LE: 4,
    SampleEncoding.FLOAT32LE: 4,
    SampleEncoding.FLOAT64LE: 8,
    SampleEncoding.MULAW: 1,
    SampleEncoding.ALAW: 1,
}

# (format code, bits per sample) -> sample encoding
_ENCODINGS = {
    (WAVE_FORMAT_PCM, 8): SampleEncoding.PCM_U8,
    (WAVE_FORMAT_PCM, 16): SampleEncoding.PCM_S16LE,
    (WAVE_FORMAT_PCM, 24): SampleEncoding.PCM_S24LE,
    (WAVE_FORMAT_PCM, 32): SampleEncoding.PCM_S32LE,
    (WAVE_FORMAT_IEEE_FLOAT, 32): SampleEncoding.FLOAT32LE,
    (WAVE_FORMAT_IEEE_FLOAT, 64): SampleEncoding.FLOAT64LE,
    (WAVE_FORMAT_MULAW, 8): SampleEncoding.MULAW,
    (WAVE_FORMAT_ALAW, 8): SampleEncoding.ALAW,
}
_ACCEPTED_FORMATS = (
    "PCM 8/16/24/32-bit, IEEE float 32/64-bit, µ-law or A-law 8-bit, "
    "plain or WAVE_FORMAT_EXTENSIBLE"
)


@dataclass(frozen=True)
class WavFormat:
    """The audio format that a WAV `fmt ` chunk declares."""

    sample_encoding: SampleEncoding
    channels: int
    sample_rate_hz: int
    block_align_bytes: int


class WavStreamParser:
    """Split a WAV byte stream into its format and the bytes of its `data` chunk.

    Feed the file in pieces of any size; `feed` returns the data-chunk bytes contained in
    each piece (possibly none while the header is still arriving). Bytes after the end of
    the `data` chunk, such as a trailing `LIST` chunk, are dropped.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._riff_checked = False
        self._skip_bytes = 0
        self._data_bytes_left: int | None = None
        self._data_done = False
        self.format: WavFormat | None = None

    @property
    def header_complete(self) -> bool:
        """True once the `data` chunk has started and `format` is set."""
        return self._data_bytes_left is not None

    def feed(self, data: bytes) -> bytes:
        """Consume the next piece of the file.

        Args:
            data: the next bytes of the WAV file, any length.

        Returns:
            The sample bytes of the `data` chunk found in this piece.

        Raises:
            InvalidArgumentError: the header is not a WAV header this parser accepts.
        """
        if self._data_done:
            return b""
        if self.header_complete:
            return self._take_data(bytes(data))

        self._buffer += data
        self._parse_header()
        if not self.header_complete:
            return b""
        rest = bytes(self._buffer)
        self._buffer.clear()
        return self._take_data(rest)

    def finish(self) -> None:
        """Check at the end of the stream that a complete header arrived.

        Raises:
            InvalidArgumentError: the stream ended before the `data` chunk started.
        """
        if self.header_complete:
            return
        raise InvalidArgumentError(
            HEADER_FIELD,
            bytes(self._buffer[:16]),
            "the WAV header is truncated: the stream ended before the data chunk "
            "(send the whole file, starting with RIFF....WAVE)",
        )

    def _take_data(self, data: bytes) -> bytes:
        if self._data_bytes_left is None or self._data_bytes_left < 0:
            return data
        if len(data) < self._data_bytes_left:
            self._data_bytes_left -= len(data)
            return data
        taken = data[: self._data_bytes_left]
        self._data_bytes_left = 0
        self._data_done = True
        return taken

    def _parse_header(self) -> None:
        if not self._riff_checked:
            if len(self._buffer) < _RIFF_HEADER_BYTES:
                return
            _check_riff_header(bytes(self._buffer[:_RIFF_HEADER_BYTES]))
            del self._buffer[:_RIFF_HEADER_BYTES]
            self._riff_checked = True

        while not self.header_complete:
            if self._skip_bytes:
                skipped = min(self._skip_bytes, len(self._buffer))
                del self._buffer[:skipped]
                self._skip_bytes -= skipped
                if self._skip_bytes:
                    return
            if len(self._buffer) < _CHUNK_HEADER_BYTES:
                return
            if not self._parse_chunk():
                return

    def _parse_chunk(self) -> bool:
        """Handle the chunk at the start of the buffer; False when more bytes are needed."""
        chunk_id = bytes(self._buffer[:4])
        (size,) = struct.unpack("<I", self._buffer[4:8])
        padded_size = size + (size & 1)

        if chunk_id == b"data":
            if self.format is None:
                raise InvalidArgumentError(
                    HEADER_FIELD, chunk_id, "the data chunk comes before the fmt chunk"
                )
            del self._buffer[:_CHUNK_HEADER_BYTES]
            self._data_bytes_left = -1 if size in _UNKNOWN_SIZES else size
            return True

        if chunk_id == b"fmt ":
            if size > _MAX_FMT_CHUNK_BYTES:
                raise InvalidArgumentError(
                    HEADER_FIELD, size, f"the fmt chunk is larger than {_MAX_FMT_CHUNK_BYTES} bytes"
                )
            if len(self._buffer) < _CHUNK_HEADER_BYTES + size:
                return False
            body = bytes(self._buffer[_CHUNK_HEADER_BYTES : _CHUNK_HEADER_BYTES + size])
            self.format = parse_fmt_chunk(body)
        else:
            logger.debug("skipping WAV chunk %r of %d bytes", chunk_id, size)

        del self._buffer[:_CHUNK_HEADER_BYTES]
        self._skip_bytes = padded_size
        return True


def _check_riff_header(header: bytes) -> None:
    riff_id, _, wave_id = struct.unpack("<4sI4s", header)
    if riff_id == b"RIFX":
        raise InvalidArgumentError(
            HEADER_FIELD, header, "big-endian RIFX files are not supported; convert to RIFF"
        )
    if riff_id not in (b"RIFF", b"RF64") or wave_id != b"WAVE":
        raise InvalidArgumentError(
            HEADER_FIELD,
            header,
            "not a WAV file: expected 'RIFF' (or 'RF64') followed by 'WAVE'",
        )


def parse_fmt_chunk(body: bytes) -> WavFormat:
    """Parse the body of a `fmt ` chunk.

    Args:
        body: the chunk content after its 8-byte chunk header, 16 bytes or more.

    Returns:
        The declared format, with WAVE_FORMAT_EXTENSIBLE resolved to its subformat.

    Raises:
        InvalidArgumentError: the chunk is short or declares a format that is not accepted.
    """
    if len(body) < 16:
        raise InvalidArgumentError(
            HEADER_FIELD, body, "the fmt chunk is shorter than 16 bytes (truncated WAV header)"
        )
    format_code, channels, sample_rate_hz, _, block_align, bits = struct.unpack(
        "<HHIIHH", body[:16]
    )
    if format_code == WAVE_FORMAT_EXTENSIBLE:
        format_code = _extensible_subformat(body)

    sample_encoding = _ENCODINGS.get((format_code, bits))
    if sample_encoding is None:
        raise InvalidArgumentError(
            HEADER_FIELD,
            f"format 0x{format_code:04x}, {bits} bits",
            f"unsupported WAV sample format; accepted: {_ACCEPTED_FORMATS}",
        )
    if not 1 <= channels <= _MAX_CHANNELS:
        raise InvalidArgumentError(
            HEADER_FIELD, channels, f"the WAV header declares {channels} channels; 1 to 32 work"
        )
    if not _MIN_SAMPLE_RATE_HZ <= sample_rate_hz <= _MAX_SAMPLE_RATE_HZ:
        raise InvalidArgumentError(
            HEADER_FIELD,
            sample_rate_hz,
            f"the WAV header declares {sample_rate_hz} Hz; "
            f"{_MIN_SAMPLE_RATE_HZ} to {_MAX_SAMPLE_RATE_HZ} Hz work",
        )

    expected_block_align = channels * sample_encoding.bytes_per_sample
    if block_align != expected_block_align:
        # some writers leave block_align wrong; the sample layout is what counts
        logger.warning(
            "WAV block_align is %d, expected %d for %d channels of %s; using %d",
            block_align,
            expected_block_align,
            channels,
            sample_encoding.value,
            expected_block_align,
        )
    return WavFormat(sample_encoding, channels, sample_rate_hz, expected_block_align)


def _extensible_subformat(body: bytes) -> int:
    if len(body) < 40:
        raise InvalidArgumentError(
            HEADER_FIELD,
            len(body),
            "a WAVE_FORMAT_EXTENSIBLE fmt chunk needs 40 bytes (truncated WAV header)",
        )
    subformat = body[24:40]
    if subformat[2:] != _KSDATAFORMAT_GUID_TAIL:
        raise InvalidArgumentError(
            HEADER_FIELD,
            subformat.hex(),
            f"unknown WAVE_FORMAT_EXTENSIBLE subformat GUID; accepted: {_ACCEPTED_FORMATS}",
        )
    (code,) = struct.unpack("<H", subformat[:2])
    return code


def build_wav_header(
    sample_encoding: SampleEncoding,
    channels: int,
    sample_rate_hz: int,
    data_bytes: int,
) -> bytes:
    """Build a canonical 44-byte (PCM/float) or 46-byte (G.711) WAV header.

    Args:
        sample_encoding: how samples are stored in the data chunk that follows.
        channels: interleaved channel count.
        sample_rate_hz: frames per second.
        data_bytes: size of the data chunk that follows the header.

    Returns:
        The header bytes, ending with the `data` chunk header.
    """
    code, bits = next(key for key, value in _ENCODINGS.items() if value == sample_encoding)
    block_align = channels * sample_encoding.bytes_per_sample
    fmt_body = struct.pack(
        "<HHIIHH", code, channels, sample_rate_hz, sample_rate_hz * block_align, block_align, bits
    )
    if code != WAVE_FORMAT_PCM:
        fmt_body += struct.pack("<H", 0)
    riff_size = 4 + (8 + len(fmt_body)) + 8 + data_bytes + (data_bytes & 1)
    return (
        struct.pack("<4sI4s", b"RIFF", riff_size, b"WAVE")
        + struct.pack("<4sI", b"fmt ", len(fmt_body))
        + fmt_body
        + struct.pack("<4sI", b"data", data_bytes)
    )
