from kefu_api.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OutputOptions(_message.Message):
    __slots__ = ("text_deltas", "audio", "partial_transcripts")
    TEXT_DELTAS_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_TRANSCRIPTS_FIELD_NUMBER: _ClassVar[int]
    text_deltas: bool
    audio: bool
    partial_transcripts: bool
    def __init__(self, text_deltas: _Optional[bool] = ..., audio: _Optional[bool] = ..., partial_transcripts: _Optional[bool] = ...) -> None: ...

class EndpointingConfig(_message.Message):
    __slots__ = ("silence_ms", "max_utterance_ms", "partial_interval_ms")
    SILENCE_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_UTTERANCE_MS_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    silence_ms: int
    max_utterance_ms: int
    partial_interval_ms: int
    def __init__(self, silence_ms: _Optional[int] = ..., max_utterance_ms: _Optional[int] = ..., partial_interval_ms: _Optional[int] = ...) -> None: ...

class SessionConfig(_message.Message):
    __slots__ = ("tenant", "session_id", "locale", "input_audio", "output_audio", "outputs", "endpointing", "hotwords")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    INPUT_AUDIO_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_AUDIO_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    ENDPOINTING_FIELD_NUMBER: _ClassVar[int]
    HOTWORDS_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    session_id: str
    locale: str
    input_audio: _common_pb2.AudioFormat
    output_audio: _common_pb2.AudioFormat
    outputs: OutputOptions
    endpointing: EndpointingConfig
    hotwords: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, tenant: _Optional[str] = ..., session_id: _Optional[str] = ..., locale: _Optional[str] = ..., input_audio: _Optional[_Union[_common_pb2.AudioFormat, _Mapping]] = ..., output_audio: _Optional[_Union[_common_pb2.AudioFormat, _Mapping]] = ..., outputs: _Optional[_Union[OutputOptions, _Mapping]] = ..., endpointing: _Optional[_Union[EndpointingConfig, _Mapping]] = ..., hotwords: _Optional[_Iterable[str]] = ...) -> None: ...

class TextInput(_message.Message):
    __slots__ = ("text",)
    TEXT_FIELD_NUMBER: _ClassVar[int]
    text: str
    def __init__(self, text: _Optional[str] = ...) -> None: ...

class AudioChunk(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class ImageChunk(_message.Message):
    __slots__ = ("data", "last", "text")
    DATA_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    last: bool
    text: str
    def __init__(self, data: _Optional[bytes] = ..., last: _Optional[bool] = ..., text: _Optional[str] = ...) -> None: ...

class Control(_message.Message):
    __slots__ = ("kind",)
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[Control.Kind]
        KIND_END_OF_UTTERANCE: _ClassVar[Control.Kind]
        KIND_CANCEL: _ClassVar[Control.Kind]
    KIND_UNSPECIFIED: Control.Kind
    KIND_END_OF_UTTERANCE: Control.Kind
    KIND_CANCEL: Control.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    kind: Control.Kind
    def __init__(self, kind: _Optional[_Union[Control.Kind, str]] = ...) -> None: ...

class ConverseRequest(_message.Message):
    __slots__ = ("config", "text", "audio", "image", "control")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    CONTROL_FIELD_NUMBER: _ClassVar[int]
    config: SessionConfig
    text: TextInput
    audio: AudioChunk
    image: ImageChunk
    control: Control
    def __init__(self, config: _Optional[_Union[SessionConfig, _Mapping]] = ..., text: _Optional[_Union[TextInput, _Mapping]] = ..., audio: _Optional[_Union[AudioChunk, _Mapping]] = ..., image: _Optional[_Union[ImageChunk, _Mapping]] = ..., control: _Optional[_Union[Control, _Mapping]] = ...) -> None: ...

class SessionStarted(_message.Message):
    __slots__ = ("session_id", "unsupported_hotwords")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    UNSUPPORTED_HOTWORDS_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    unsupported_hotwords: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, session_id: _Optional[str] = ..., unsupported_hotwords: _Optional[_Iterable[str]] = ...) -> None: ...

class Transcript(_message.Message):
    __slots__ = ("text", "is_final", "start_ms", "end_ms")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    IS_FINAL_FIELD_NUMBER: _ClassVar[int]
    START_MS_FIELD_NUMBER: _ClassVar[int]
    END_MS_FIELD_NUMBER: _ClassVar[int]
    text: str
    is_final: bool
    start_ms: int
    end_ms: int
    def __init__(self, text: _Optional[str] = ..., is_final: _Optional[bool] = ..., start_ms: _Optional[int] = ..., end_ms: _Optional[int] = ...) -> None: ...

class SpeechEvent(_message.Message):
    __slots__ = ("kind", "offset_ms")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[SpeechEvent.Kind]
        KIND_SPEECH_STARTED: _ClassVar[SpeechEvent.Kind]
        KIND_SPEECH_ENDED: _ClassVar[SpeechEvent.Kind]
    KIND_UNSPECIFIED: SpeechEvent.Kind
    KIND_SPEECH_STARTED: SpeechEvent.Kind
    KIND_SPEECH_ENDED: SpeechEvent.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    OFFSET_MS_FIELD_NUMBER: _ClassVar[int]
    kind: SpeechEvent.Kind
    offset_ms: int
    def __init__(self, kind: _Optional[_Union[SpeechEvent.Kind, str]] = ..., offset_ms: _Optional[int] = ...) -> None: ...

class AnswerDelta(_message.Message):
    __slots__ = ("answer_id", "text")
    ANSWER_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    answer_id: str
    text: str
    def __init__(self, answer_id: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class AudioOut(_message.Message):
    __slots__ = ("answer_id", "data", "offset_ms")
    ANSWER_ID_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    OFFSET_MS_FIELD_NUMBER: _ClassVar[int]
    answer_id: str
    data: bytes
    offset_ms: int
    def __init__(self, answer_id: _Optional[str] = ..., data: _Optional[bytes] = ..., offset_ms: _Optional[int] = ...) -> None: ...

class AudioFlush(_message.Message):
    __slots__ = ("answer_id",)
    ANSWER_ID_FIELD_NUMBER: _ClassVar[int]
    answer_id: str
    def __init__(self, answer_id: _Optional[str] = ...) -> None: ...

class TurnEnd(_message.Message):
    __slots__ = ("reason", "latency_ms")
    class LatencyMsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    REASON_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    reason: str
    latency_ms: _containers.ScalarMap[str, float]
    def __init__(self, reason: _Optional[str] = ..., latency_ms: _Optional[_Mapping[str, float]] = ...) -> None: ...

class ErrorEvent(_message.Message):
    __slots__ = ("code", "message", "field")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    field: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ..., field: _Optional[str] = ...) -> None: ...

class ConverseResponse(_message.Message):
    __slots__ = ("turn", "session_started", "transcript", "speech", "answer_delta", "answer", "audio", "audio_flush", "turn_end", "error")
    TURN_FIELD_NUMBER: _ClassVar[int]
    SESSION_STARTED_FIELD_NUMBER: _ClassVar[int]
    TRANSCRIPT_FIELD_NUMBER: _ClassVar[int]
    SPEECH_FIELD_NUMBER: _ClassVar[int]
    ANSWER_DELTA_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FLUSH_FIELD_NUMBER: _ClassVar[int]
    TURN_END_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    turn: int
    session_started: SessionStarted
    transcript: Transcript
    speech: SpeechEvent
    answer_delta: AnswerDelta
    answer: _common_pb2.Answer
    audio: AudioOut
    audio_flush: AudioFlush
    turn_end: TurnEnd
    error: ErrorEvent
    def __init__(self, turn: _Optional[int] = ..., session_started: _Optional[_Union[SessionStarted, _Mapping]] = ..., transcript: _Optional[_Union[Transcript, _Mapping]] = ..., speech: _Optional[_Union[SpeechEvent, _Mapping]] = ..., answer_delta: _Optional[_Union[AnswerDelta, _Mapping]] = ..., answer: _Optional[_Union[_common_pb2.Answer, _Mapping]] = ..., audio: _Optional[_Union[AudioOut, _Mapping]] = ..., audio_flush: _Optional[_Union[AudioFlush, _Mapping]] = ..., turn_end: _Optional[_Union[TurnEnd, _Mapping]] = ..., error: _Optional[_Union[ErrorEvent, _Mapping]] = ...) -> None: ...

class AskRequest(_message.Message):
    __slots__ = ("tenant", "text", "session_id", "locale", "image")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    text: str
    session_id: str
    locale: str
    image: _common_pb2.Image
    def __init__(self, tenant: _Optional[str] = ..., text: _Optional[str] = ..., session_id: _Optional[str] = ..., locale: _Optional[str] = ..., image: _Optional[_Union[_common_pb2.Image, _Mapping]] = ...) -> None: ...

class FeedbackRequest(_message.Message):
    __slots__ = ("answer_id", "rating", "comment")
    class Rating(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        RATING_UNSPECIFIED: _ClassVar[FeedbackRequest.Rating]
        RATING_UP: _ClassVar[FeedbackRequest.Rating]
        RATING_DOWN: _ClassVar[FeedbackRequest.Rating]
    RATING_UNSPECIFIED: FeedbackRequest.Rating
    RATING_UP: FeedbackRequest.Rating
    RATING_DOWN: FeedbackRequest.Rating
    ANSWER_ID_FIELD_NUMBER: _ClassVar[int]
    RATING_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    answer_id: str
    rating: FeedbackRequest.Rating
    comment: str
    def __init__(self, answer_id: _Optional[str] = ..., rating: _Optional[_Union[FeedbackRequest.Rating, str]] = ..., comment: _Optional[str] = ...) -> None: ...

class FeedbackResponse(_message.Message):
    __slots__ = ("feedback_id",)
    FEEDBACK_ID_FIELD_NUMBER: _ClassVar[int]
    feedback_id: str
    def __init__(self, feedback_id: _Optional[str] = ...) -> None: ...
