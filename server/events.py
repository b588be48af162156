"""Typed inputs and events of a Converse session, and its validated options."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from asr_tts.audio import InputAudioFormat, OutputAudioFormat
from rag.knowledge import validate_tenant
from rag.phrases import normalize_locale
from server.assistant import AnswerResult
from server.errors import InvalidArgumentError
from server.voice import EndpointingOptions

MAX_HOTWORDS = 100
MAX_HOTWORD_CHARS = 32


@dataclass(frozen=True)
class OutputOptions:
    text_deltas: bool = False
    audio: bool = False
    partial_transcripts: bool = False


@dataclass(frozen=True)
class SessionOptions:
    """Validated first request of a conversation.

    Attributes:
        input_audio: format of the caller's audio; None when the client sends no audio.
        output_audio: format of spoken answers; required when `outputs.audio` is set.
    """

    tenant: str
    session_id: str
    locale: str = "zh-CN"
    outputs: OutputOptions = field(default_factory=OutputOptions)
    hotwords: tuple[str, ...] = ()
    input_audio: InputAudioFormat | None = None
    output_audio: OutputAudioFormat | None = None
    endpointing: EndpointingOptions = field(default_factory=EndpointingOptions)

    def __post_init__(self) -> None:
        validate_tenant(self.tenant, "config.tenant")
        object.__setattr__(self, "locale", normalize_locale(self.locale, "config.locale"))
        if not self.session_id:
            object.__setattr__(self, "session_id", uuid.uuid4().hex)
        if len(self.session_id) > 128:
            raise InvalidArgumentError("config.session_id", self.session_id, "at most 128 chars")
        if self.outputs.audio and self.output_audio is None:
            raise InvalidArgumentError(
                "config.output_audio", "unset", "set the output format when outputs.audio is on"
            )
        words = tuple(w.strip() for w in self.hotwords if w.strip())
        if len(words) > MAX_HOTWORDS or any(len(w) > MAX_HOTWORD_CHARS for w in words):
            raise InvalidArgumentError(
                "config.hotwords",
                list(words),
                f"at most {MAX_HOTWORDS} hotwords of at most {MAX_HOTWORD_CHARS} characters",
            )
        object.__setattr__(self, "hotwords", words)


# Inputs after the config.


@dataclass(frozen=True)
class TextInput:
    text: str


@dataclass(frozen=True)
class AudioInput:
    data: bytes


@dataclass(frozen=True)
class ImageInput:
    data: bytes
    last: bool
    text: str = ""


@dataclass(frozen=True)
class CancelInput:
    pass


@dataclass(frozen=True)
class EndOfUtteranceInput:
    pass


SessionInput = TextInput | AudioInput | ImageInput | CancelInput | EndOfUtteranceInput


# Events to the client. `turn` is 0 for session-level events.


@dataclass(frozen=True)
class SessionStartedEvent:
    turn: int
    session_id: str
    unsupported_hotwords: tuple[str, ...] = ()


@dataclass(frozen=True)
class TranscriptEvent:
    turn: int
    text: str
    is_final: bool
    start_ms: int = 0
    end_ms: int = 0


@dataclass(frozen=True)
class SpeechActivityEvent:
    """Voice activity: kind is `started` or `ended`."""

    turn: int
    kind: str
    offset_ms: int


@dataclass(frozen=True)
class AnswerDeltaEvent:
    turn: int
    answer_id: str
    text: str


@dataclass(frozen=True)
class AnswerEvent:
    turn: int
    result: AnswerResult


@dataclass(frozen=True)
class AudioOutEvent:
    turn: int
    answer_id: str
    data: bytes
    offset_ms: int


@dataclass(frozen=True)
class AudioFlushEvent:
    turn: int
    answer_id: str


@dataclass(frozen=True)
class TurnEndEvent:
    """The end of a turn: answered, cancelled, barge_in, no_speech or error.

    Attributes:
        latency_ms: duration of each stage of the turn, in milliseconds.
    """

    turn: int
    reason: str
    latency_ms: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ErrorEvent:
    turn: int
    code: str
    message: str
    field: str = ""


SessionEvent = (
    SessionStartedEvent
    | TranscriptEvent
    | SpeechActivityEvent
    | AnswerDeltaEvent
    | AnswerEvent
    | AudioOutEvent
    | AudioFlushEvent
    | TurnEndEvent
    | ErrorEvent
)
