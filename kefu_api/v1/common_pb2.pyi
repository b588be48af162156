from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AudioEncoding(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUDIO_ENCODING_UNSPECIFIED: _ClassVar[AudioEncoding]
    AUDIO_ENCODING_PCM16: _ClassVar[AudioEncoding]
    AUDIO_ENCODING_MULAW: _ClassVar[AudioEncoding]
    AUDIO_ENCODING_ALAW: _ClassVar[AudioEncoding]
    AUDIO_ENCODING_WAV: _ClassVar[AudioEncoding]

class ChannelSelection(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANNEL_SELECTION_UNSPECIFIED: _ClassVar[ChannelSelection]
    CHANNEL_SELECTION_DOWNMIX: _ClassVar[ChannelSelection]
    CHANNEL_SELECTION_LEFT: _ClassVar[ChannelSelection]
    CHANNEL_SELECTION_RIGHT: _ClassVar[ChannelSelection]

class FinishReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FINISH_REASON_UNSPECIFIED: _ClassVar[FinishReason]
    FINISH_REASON_COMPLETE: _ClassVar[FinishReason]
    FINISH_REASON_CANCELLED: _ClassVar[FinishReason]
    FINISH_REASON_LENGTH: _ClassVar[FinishReason]
    FINISH_REASON_FALLBACK: _ClassVar[FinishReason]
    FINISH_REASON_ERROR: _ClassVar[FinishReason]
AUDIO_ENCODING_UNSPECIFIED: AudioEncoding
AUDIO_ENCODING_PCM16: AudioEncoding
AUDIO_ENCODING_MULAW: AudioEncoding
AUDIO_ENCODING_ALAW: AudioEncoding
AUDIO_ENCODING_WAV: AudioEncoding
CHANNEL_SELECTION_UNSPECIFIED: ChannelSelection
CHANNEL_SELECTION_DOWNMIX: ChannelSelection
CHANNEL_SELECTION_LEFT: ChannelSelection
CHANNEL_SELECTION_RIGHT: ChannelSelection
FINISH_REASON_UNSPECIFIED: FinishReason
FINISH_REASON_COMPLETE: FinishReason
FINISH_REASON_CANCELLED: FinishReason
FINISH_REASON_LENGTH: FinishReason
FINISH_REASON_FALLBACK: FinishReason
FINISH_REASON_ERROR: FinishReason

class AudioFormat(_message.Message):
    __slots__ = ("encoding", "sample_rate_hz", "channels", "channel")
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    encoding: AudioEncoding
    sample_rate_hz: int
    channels: int
    channel: ChannelSelection
    def __init__(self, encoding: _Optional[_Union[AudioEncoding, str]] = ..., sample_rate_hz: _Optional[int] = ..., channels: _Optional[int] = ..., channel: _Optional[_Union[ChannelSelection, str]] = ...) -> None: ...

class Citation(_message.Message):
    __slots__ = ("doc_id", "title", "score", "kind", "source", "snippet")
    DOC_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SNIPPET_FIELD_NUMBER: _ClassVar[int]
    doc_id: str
    title: str
    score: float
    kind: str
    source: str
    snippet: str
    def __init__(self, doc_id: _Optional[str] = ..., title: _Optional[str] = ..., score: _Optional[float] = ..., kind: _Optional[str] = ..., source: _Optional[str] = ..., snippet: _Optional[str] = ...) -> None: ...

class Answer(_message.Message):
    __slots__ = ("answer_id", "text", "citations", "intent", "confidence", "handoff", "handoff_reason", "transcript", "engine", "finish_reason", "image_text", "image_product", "slots", "focus")
    ANSWER_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    CITATIONS_FIELD_NUMBER: _ClassVar[int]
    INTENT_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    HANDOFF_FIELD_NUMBER: _ClassVar[int]
    HANDOFF_REASON_FIELD_NUMBER: _ClassVar[int]
    TRANSCRIPT_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    IMAGE_TEXT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_PRODUCT_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    FOCUS_FIELD_NUMBER: _ClassVar[int]
    answer_id: str
    text: str
    citations: _containers.RepeatedCompositeFieldContainer[Citation]
    intent: str
    confidence: float
    handoff: bool
    handoff_reason: str
    transcript: str
    engine: str
    finish_reason: FinishReason
    image_text: str
    image_product: str
    slots: _containers.RepeatedCompositeFieldContainer[Slot]
    focus: str
    def __init__(self, answer_id: _Optional[str] = ..., text: _Optional[str] = ..., citations: _Optional[_Iterable[_Union[Citation, _Mapping]]] = ..., intent: _Optional[str] = ..., confidence: _Optional[float] = ..., handoff: _Optional[bool] = ..., handoff_reason: _Optional[str] = ..., transcript: _Optional[str] = ..., engine: _Optional[str] = ..., finish_reason: _Optional[_Union[FinishReason, str]] = ..., image_text: _Optional[str] = ..., image_product: _Optional[str] = ..., slots: _Optional[_Iterable[_Union[Slot, _Mapping]]] = ..., focus: _Optional[str] = ...) -> None: ...

class Slot(_message.Message):
    __slots__ = ("name", "value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: str
    def __init__(self, name: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class Image(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...
