"""Audio input decoding and output encoding for phone and app streams.

Input: PCM16 LE (8, 16, 22.05, 24, 44.1 or 48 kHz), G.711 µ-law or A-law at 8 kHz, or a WAV
stream whose header sets the format. `AudioDecoder` turns chunks of any size into float32
mono at the ASR rate. Output: `AudioEncoder` turns synthesized float32 audio into PCM16 at
the rate the session requests, or 8 kHz G.711 frames of a fixed duration.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import soxr

from asr_tts import g711
from asr_tts.wav import SampleEncoding, WavStreamParser
from server.errors import FailedPreconditionError, InvalidArgumentError

logger = logging.getLogger(__name__)

ASR_SAMPLE_RATE_HZ = 16_000
G711_SAMPLE_RATE_HZ = 8_000
PCM16_SAMPLE_RATES_HZ = (8_000, 16_000, 22_050, 24_000, 44_100, 48_000)
DEFAULT_FRAME_MS = 20
MAX_CHANNELS = 8
# full scale of signed 16-bit PCM, the divisor that maps int16 onto [-1.0, 1.0)
_INT16_FULL_SCALE = 32768.0
_MS_PER_SECOND = 1000


class AudioEncoding(StrEnum):
    """Byte encodings a session can declare for its audio."""

    PCM16 = "pcm16"
    MULAW = "mulaw"
    ALAW = "alaw"
    WAV = "wav"


class ChannelMode(StrEnum):
    """Channel choice for multi-channel input: a down-mix or one named channel."""

    MIX = "mix"
    LEFT = "left"
    RIGHT = "right"


_RAW_SAMPLE_ENCODINGS = {
    AudioEncoding.PCM16: SampleEncoding.PCM_S16LE,
    AudioEncoding.MULAW: SampleEncoding.MULAW,
    AudioEncoding.ALAW: SampleEncoding.ALAW,
}
_ACCEPTED_ENCODINGS = ", ".join(encoding.value for encoding in AudioEncoding)
_ACCEPTED_PCM16_RATES = ", ".join(str(rate) for rate in PCM16_SAMPLE_RATES_HZ)


def _parse_encoding(field: str, value: AudioEncoding | str) -> AudioEncoding:
    try:
        return AudioEncoding(value)
    except ValueError:
        raise InvalidArgumentError(
            field, value, f"unknown audio encoding; accepted: {_ACCEPTED_ENCODINGS}"
        ) from None


def _check_raw_rate(field: str, encoding: AudioEncoding, sample_rate_hz: int) -> None:
    if encoding is AudioEncoding.PCM16 and sample_rate_hz not in PCM16_SAMPLE_RATES_HZ:
        raise InvalidArgumentError(
            field, sample_rate_hz, f"PCM16 audio must be one of {_ACCEPTED_PCM16_RATES} Hz"
        )
    if encoding in (AudioEncoding.MULAW, AudioEncoding.ALAW) and (
        sample_rate_hz != G711_SAMPLE_RATE_HZ
    ):
        raise InvalidArgumentError(
            field,
            sample_rate_hz,
            f"G.711 {encoding.value} audio is 8000 Hz; set sample_rate_hz to 8000 or leave it 0",
        )


@dataclass(frozen=True)
class InputAudioFormat:
    """The format a session declares for the audio it sends.

    Attributes:
        encoding: pcm16, mulaw, alaw or wav (accepts the enum or its string value).
        sample_rate_hz: required for pcm16; 0 means 8000 for G.711 and "from the header"
            for WAV. When set for WAV it must match the header.
        channels: interleaved channels for raw encodings (0 means 1); for WAV, 0 means
            "from the header", otherwise it must match the header.
        channel: which channel to keep: "mix" (down-mix, or one copy when all channels are
            identical), "left", "right", or a 0-based channel index.
    """

    encoding: AudioEncoding | str
    sample_rate_hz: int = 0
    channels: int = 0
    channel: ChannelMode | str | int = ChannelMode.MIX

    def __post_init__(self) -> None:
        encoding = _parse_encoding("input_audio.encoding", self.encoding)
        object.__setattr__(self, "encoding", encoding)
        if encoding in (AudioEncoding.MULAW, AudioEncoding.ALAW) and self.sample_rate_hz == 0:
            object.__setattr__(self, "sample_rate_hz", G711_SAMPLE_RATE_HZ)
        if encoding is not AudioEncoding.WAV:
            _check_raw_rate("input_audio.sample_rate_hz", encoding, self.sample_rate_hz)
            if self.channels == 0:
                object.__setattr__(self, "channels", 1)
        if not 0 <= self.channels <= MAX_CHANNELS:
            raise InvalidArgumentError(
                "input_audio.channels", self.channels, f"use 1 to {MAX_CHANNELS} (0 means unset)"
            )
        object.__setattr__(self, "channel", _parse_channel(self.channel, self.channels))


def _parse_channel(value: ChannelMode | str | int, channels: int) -> ChannelMode | int:
    if isinstance(value, bool):
        raise InvalidArgumentError("input_audio.channel", value, "use mix, left, right or an index")
    if isinstance(value, int):
        if value < 0 or (channels and value >= channels):
            raise InvalidArgumentError(
                "input_audio.channel",
                value,
                f"the channel index must be 0 to {max(channels - 1, 0)} for {channels} channels",
            )
        return value
    try:
        return ChannelMode(value)
    except ValueError:
        raise InvalidArgumentError(
            "input_audio.channel", value, "use mix, left, right or a 0-based channel index"
        ) from None


def samples_to_float32(data: bytes, sample_encoding: SampleEncoding) -> np.ndarray:
    """Convert interleaved sample bytes to float32 in [-1.0, 1.0].

    Args:
        data: whole samples only (a multiple of the sample size).
        sample_encoding: how each sample is stored.

    Returns:
        float32 array, one value per stored sample (channels still interleaved).
    """
    match sample_encoding:
        case SampleEncoding.PCM_S16LE:
            return np.frombuffer(data, dtype="<i2").astype(np.float32) / _INT16_FULL_SCALE
        case SampleEncoding.MULAW:
            return g711.mulaw_decode(data).astype(np.float32) / _INT16_FULL_SCALE
        case SampleEncoding.ALAW:
            return g711.alaw_decode(data).astype(np.float32) / _INT16_FULL_SCALE
        case SampleEncoding.PCM_U8:
            return (np.frombuffer(data, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
        case SampleEncoding.PCM_S24LE:
            triplets = np.frombuffer(data, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
            values = triplets[:, 0] | (triplets[:, 1] << 8) | (triplets[:, 2] << 16)
            values = np.where(values & 0x800000, values - 0x1000000, values)
            return values.astype(np.float32) / float(1 << 23)
        case SampleEncoding.PCM_S32LE:
            return (np.frombuffer(data, dtype="<i4") / float(1 << 31)).astype(np.float32)
        case SampleEncoding.FLOAT32LE:
            return np.frombuffer(data, dtype="<f4").astype(np.float32)
        case SampleEncoding.FLOAT64LE:
            return np.frombuffer(data, dtype="<f8").astype(np.float32)
    raise AssertionError(f"unhandled sample encoding {sample_encoding}")


def float_to_pcm16(samples: np.ndarray) -> np.ndarray:
    """Convert float audio in [-1.0, 1.0] to int16, clipping values outside that range."""
    scaled = np.rint(np.asarray(samples, dtype=np.float32) * _INT16_FULL_SCALE)
    return np.clip(scaled, -32768, 32767).astype(np.int16)


class StreamResampler:
    """A soxr resampler that keeps its filter state between chunks of one stream.

    Resampling each chunk on its own restarts the filter and clicks at chunk boundaries, so
    every stream owns one of these. soxr's HQ quality low-passes below the output Nyquist
    frequency, which removes aliasing when the rate goes down.
    """

    def __init__(self, input_rate_hz: int, output_rate_hz: int, quality: str = "HQ") -> None:
        self.input_rate_hz = input_rate_hz
        self.output_rate_hz = output_rate_hz
        self._stream = None
        if input_rate_hz != output_rate_hz:
            self._stream = soxr.ResampleStream(
                input_rate_hz, output_rate_hz, 1, dtype="float32", quality=quality
            )

    def process(self, samples: np.ndarray) -> np.ndarray:
        """Resample the next chunk: float32 mono at the input rate to the output rate."""
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        if self._stream is None:
            return samples
        return self._stream.resample_chunk(samples)

    def flush(self) -> np.ndarray:
        """Return the samples still held in the filter at the end of the stream."""
        if self._stream is None:
            return np.zeros(0, dtype=np.float32)
        return self._stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)


class ChannelSelector:
    """Reduce interleaved multi-channel audio to mono per the session's `channel` setting.

    In mix mode a block whose channels are all identical (dual mono, common on phone
    recorders) keeps one copy instead of averaging. `channels_identical` reports what has
    been seen so far: None before any multi-channel audio, then True until a block differs.
    """

    def __init__(self, channels: int, channel: ChannelMode | int) -> None:
        index = {ChannelMode.LEFT: 0, ChannelMode.RIGHT: 1}.get(channel, channel)
        if isinstance(index, int) and index >= channels:
            raise InvalidArgumentError(
                "input_audio.channel",
                channel.value if isinstance(channel, ChannelMode) else channel,
                f"the audio has {channels} channel(s); use mix or an index below {channels}",
            )
        self.channels = channels
        self._index = index if isinstance(index, int) else None
        self.channels_identical: bool | None = None

    def select(self, interleaved: np.ndarray) -> np.ndarray:
        """Return mono float32 from interleaved float32 samples (whole frames only)."""
        if self.channels == 1:
            return interleaved
        frames = interleaved.reshape(-1, self.channels)
        if self._index is not None:
            return np.ascontiguousarray(frames[:, self._index])
        if frames.shape[0] == 0:
            return np.zeros(0, dtype=np.float32)

        identical = bool(np.all(frames == frames[:, :1]))
        if identical:
            if self.channels_identical is None:
                self.channels_identical = True
            return np.ascontiguousarray(frames[:, 0])
        if self.channels_identical is not False:
            logger.info(
                "the %d input channels differ, so they are averaged; set channel to pick one",
                self.channels,
            )
            self.channels_identical = False
        return frames.mean(axis=1, dtype=np.float32)


@dataclass(frozen=True)
class StreamFormat:
    """The format of the sample bytes once the session config and any WAV header agree."""

    sample_encoding: SampleEncoding
    channels: int
    sample_rate_hz: int

    @property
    def frame_bytes(self) -> int:
        return self.channels * self.sample_encoding.bytes_per_sample


class AudioDecoder:
    """Decode one stream of caller audio into float32 mono at the ASR rate.

    Chunks may have any size: a chunk that ends inside a sample or a multi-channel frame
    (an odd byte count of PCM16, for example) leaves the remainder for the next chunk.
    Feeding the whole stream at once or in pieces gives the same samples.

    Args:
        input_format: the format the session declared.
        output_sample_rate_hz: rate of the returned samples; the ASR rate by default.
        resample_quality: soxr quality recipe ("HQ", "VHQ", "MQ", "LQ", "QQ").
    """

    def __init__(
        self,
        input_format: InputAudioFormat,
        *,
        output_sample_rate_hz: int = ASR_SAMPLE_RATE_HZ,
        resample_quality: str = "HQ",
    ) -> None:
        self.input_format = input_format
        self.output_sample_rate_hz = output_sample_rate_hz
        self._resample_quality = resample_quality
        self._wav_parser = WavStreamParser() if input_format.encoding is AudioEncoding.WAV else None
        self._pending = bytearray()
        self._finished = False
        self.stream_format: StreamFormat | None = None
        self._selector: ChannelSelector | None = None
        self._resampler: StreamResampler | None = None
        if self._wav_parser is None:
            self._start(
                StreamFormat(
                    _RAW_SAMPLE_ENCODINGS[input_format.encoding],
                    input_format.channels,
                    input_format.sample_rate_hz,
                )
            )

    @property
    def channels_identical(self) -> bool | None:
        """Whether all channels carried the same samples so far (None: mono or no audio)."""
        return None if self._selector is None else self._selector.channels_identical

    def feed(self, data: bytes) -> np.ndarray:
        """Decode the next chunk of the stream.

        Args:
            data: raw bytes as received, any length (zero included).

        Returns:
            float32 mono samples at `output_sample_rate_hz`, shape (n,); n may be 0.

        Raises:
            InvalidArgumentError: the WAV header is invalid or contradicts the session.
            FailedPreconditionError: `flush` was already called.
        """
        if self._finished:
            raise FailedPreconditionError("the audio decoder was flushed; open a new stream")
        if self._wav_parser is not None:
            data = self._wav_parser.feed(data)
            if self.stream_format is None and self._wav_parser.format is not None:
                self._start(self._format_from_header())
        if self.stream_format is None:
            return np.zeros(0, dtype=np.float32)

        self._pending += data
        usable = len(self._pending) - len(self._pending) % self.stream_format.frame_bytes
        if usable == 0:
            return np.zeros(0, dtype=np.float32)
        whole_frames = bytes(self._pending[:usable])
        del self._pending[:usable]
        return self._decode(whole_frames)

    def flush(self) -> np.ndarray:
        """End the stream and return the samples still held by the resampler.

        Returns:
            float32 mono samples at `output_sample_rate_hz`, shape (n,).

        Raises:
            InvalidArgumentError: a WAV stream ended before its header was complete.
        """
        if self._finished:
            return np.zeros(0, dtype=np.float32)
        self._finished = True
        if self._wav_parser is not None:
            self._wav_parser.finish()
        if self._pending:
            logger.debug("dropping %d bytes of an incomplete last sample", len(self._pending))
            self._pending.clear()
        return self._resampler.flush()

    def _start(self, stream_format: StreamFormat) -> None:
        self.stream_format = stream_format
        self._selector = ChannelSelector(stream_format.channels, self.input_format.channel)
        self._resampler = StreamResampler(
            stream_format.sample_rate_hz, self.output_sample_rate_hz, self._resample_quality
        )

    def _format_from_header(self) -> StreamFormat:
        header = self._wav_parser.format
        declared = self.input_format
        if declared.sample_rate_hz and declared.sample_rate_hz != header.sample_rate_hz:
            raise InvalidArgumentError(
                "input_audio.sample_rate_hz",
                declared.sample_rate_hz,
                f"the WAV header says {header.sample_rate_hz} Hz; set "
                f"{header.sample_rate_hz} or leave sample_rate_hz 0 to use the header",
            )
        if declared.channels and declared.channels != header.channels:
            raise InvalidArgumentError(
                "input_audio.channels",
                declared.channels,
                f"the WAV header says {header.channels} channel(s); set "
                f"{header.channels} or leave channels 0 to use the header",
            )
        return StreamFormat(header.sample_encoding, header.channels, header.sample_rate_hz)

    def _decode(self, whole_frames: bytes) -> np.ndarray:
        interleaved = samples_to_float32(whole_frames, self.stream_format.sample_encoding)
        mono = self._selector.select(interleaved)
        return self._resampler.process(mono)


def decode_audio(
    data: bytes, input_format: InputAudioFormat, output_sample_rate_hz: int = ASR_SAMPLE_RATE_HZ
) -> np.ndarray:
    """Decode a whole recording in one call; see `AudioDecoder` for the arguments."""
    decoder = AudioDecoder(input_format, output_sample_rate_hz=output_sample_rate_hz)
    return np.concatenate([decoder.feed(data), decoder.flush()])


@dataclass(frozen=True)
class OutputAudioFormat:
    """The format a session requests for synthesized audio.

    Attributes:
        encoding: pcm16, mulaw or alaw.
        sample_rate_hz: one of the PCM16 rates for pcm16; 0 or 8000 for G.711.
        frame_ms: duration of each frame sent to the caller, 10 to 120 ms.
        pad_last_frame: fill the last frame up to `frame_ms` with encoded silence
            (telephony needs fixed-size frames).
    """

    encoding: AudioEncoding | str
    sample_rate_hz: int = 0
    frame_ms: int = DEFAULT_FRAME_MS
    pad_last_frame: bool = True

    def __post_init__(self) -> None:
        encoding = _parse_encoding("output_audio.encoding", self.encoding)
        if encoding is AudioEncoding.WAV:
            raise InvalidArgumentError(
                "output_audio.encoding", encoding.value, "output must be pcm16, mulaw or alaw"
            )
        object.__setattr__(self, "encoding", encoding)
        if encoding is not AudioEncoding.PCM16 and self.sample_rate_hz == 0:
            object.__setattr__(self, "sample_rate_hz", G711_SAMPLE_RATE_HZ)
        _check_raw_rate("output_audio.sample_rate_hz", encoding, self.sample_rate_hz)
        if not 10 <= self.frame_ms <= 120 or (self.sample_rate_hz * self.frame_ms) % 1000:
            raise InvalidArgumentError(
                "output_audio.frame_ms",
                self.frame_ms,
                "use 10 to 120 ms, giving a whole number of samples per frame (20 is usual)",
            )

    @property
    def samples_per_frame(self) -> int:
        return self.sample_rate_hz * self.frame_ms // _MS_PER_SECOND


@dataclass(frozen=True)
class AudioFrame:
    """One frame of encoded output audio.

    Attributes:
        payload: encoded bytes, a full frame unless it is an unpadded last frame.
        encoding: encoding of `payload`.
        sample_rate_hz: sample rate of `payload`.
        num_samples: samples of synthesized audio in the frame, padding excluded.
    """

    payload: bytes
    encoding: AudioEncoding
    sample_rate_hz: int
    num_samples: int

    @property
    def duration_ms(self) -> float:
        """Duration of the synthesized audio in the frame, padding excluded."""
        return self.num_samples * _MS_PER_SECOND / self.sample_rate_hz


class AudioEncoder:
    """Encode synthesized float32 audio into fixed-duration frames for the caller.

    Args:
        output_format: the format the session requested.
        input_sample_rate_hz: rate of the float32 audio passed to `feed`.
        resample_quality: soxr quality recipe.
    """

    def __init__(
        self,
        output_format: OutputAudioFormat,
        *,
        input_sample_rate_hz: int,
        resample_quality: str = "HQ",
    ) -> None:
        self.output_format = output_format
        self._resampler = StreamResampler(
            input_sample_rate_hz, output_format.sample_rate_hz, resample_quality
        )
        self._pending = np.zeros(0, dtype=np.float32)
        self.samples_out = 0

    def feed(self, samples: np.ndarray) -> list[AudioFrame]:
        """Encode the next piece of audio.

        Args:
            samples: float32 mono at `input_sample_rate_hz`, shape (n,).

        Returns:
            The frames completed by this piece; samples short of a frame wait for more.
        """
        return self._take_frames(self._resampler.process(samples))

    def flush(self) -> list[AudioFrame]:
        """Encode the samples left in the resampler and the last, partial frame."""
        frames = self._take_frames(self._resampler.flush())
        if len(self._pending):
            frames.append(self._encode_frame(self._pending))
            self._pending = np.zeros(0, dtype=np.float32)
        return frames

    def _take_frames(self, resampled: np.ndarray) -> list[AudioFrame]:
        self._pending = np.concatenate([self._pending, resampled])
        frame_samples = self.output_format.samples_per_frame
        whole = len(self._pending) - len(self._pending) % frame_samples
        frames = [
            self._encode_frame(self._pending[start : start + frame_samples])
            for start in range(0, whole, frame_samples)
        ]
        self._pending = self._pending[whole:]
        return frames

    def _encode_frame(self, samples: np.ndarray) -> AudioFrame:
        fmt = self.output_format
        num_samples = len(samples)
        if fmt.pad_last_frame and num_samples < fmt.samples_per_frame:
            padding = np.zeros(fmt.samples_per_frame - num_samples, dtype=np.float32)
            samples = np.concatenate([samples, padding])
        pcm = float_to_pcm16(samples)
        match fmt.encoding:
            case AudioEncoding.MULAW:
                payload = g711.mulaw_encode(pcm)
            case AudioEncoding.ALAW:
                payload = g711.alaw_encode(pcm)
            case _:
                payload = pcm.astype("<i2").tobytes()
        self.samples_out += num_samples
        return AudioFrame(payload, fmt.encoding, fmt.sample_rate_hz, num_samples)
