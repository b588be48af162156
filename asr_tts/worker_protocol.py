"""Length-prefixed messages between kefu and a TTS worker process over stdin/stdout.

Every frame is a 4-byte big-endian length followed by that many bytes. A message is one
JSON frame, and a synthesis reply adds one binary frame of float32 little-endian samples:

    worker → kefu, once at start:  {"ready": true, "sample_rate_hz": 24000}
                                   or {"ready": false, "error": "..."}
    kefu → worker, per sentence:   {"id": 7, "text": "...", "speaking_rate": 1.0}
    worker → kefu, per sentence:   {"id": 7, "num_samples": N, "error": null} + samples
                                   or {"id": 7, "error": "..."} (no sample frame)

The worker exits when its stdin closes. This module uses only the standard library, so
the worker can import it from a venv that does not have kefu installed.
"""

from __future__ import annotations

import json
import struct
from typing import Any, BinaryIO

FRAME_HEADER = struct.Struct(">I")
# a 60 s sentence at 48 kHz float32 is 11.5 MB; larger frames mean a broken stream
MAX_FRAME_BYTES = 64 * 1024 * 1024


class ProtocolError(Exception):
    """The peer closed the stream or sent a malformed frame."""


def write_frame(stream: BinaryIO, payload: bytes) -> None:
    """Write one frame and flush."""
    stream.write(FRAME_HEADER.pack(len(payload)))
    stream.write(payload)
    stream.flush()


def write_message(stream: BinaryIO, message: dict[str, Any]) -> None:
    """Write one JSON frame."""
    write_frame(stream, json.dumps(message, ensure_ascii=False).encode("utf-8"))


def read_frame(stream: BinaryIO) -> bytes:
    """Read one frame from a blocking stream.

    Raises:
        ProtocolError: the stream ended inside a frame, or the length exceeds the limit.
    """
    header = _read_exactly(stream, FRAME_HEADER.size)
    (length,) = FRAME_HEADER.unpack(header)
    if length > MAX_FRAME_BYTES:
        raise ProtocolError(f"frame of {length} bytes exceeds {MAX_FRAME_BYTES}")
    return _read_exactly(stream, length)


def read_message(stream: BinaryIO) -> dict[str, Any]:
    """Read one JSON frame."""
    try:
        message = json.loads(read_frame(stream).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ProtocolError(f"malformed JSON frame: {error}") from error
    if not isinstance(message, dict):
        raise ProtocolError(f"expected a JSON object, got {type(message).__name__}")
    return message


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        block = stream.read(size - len(data))
        if not block:
            raise ProtocolError(f"stream closed after {len(data)} of {size} bytes")
        data += block
    return bytes(data)
