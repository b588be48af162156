from kefu_api.v1 import assistant_pb2 as _assistant_pb2
from kefu_api.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RecognizeConfig(_message.Message):
    __slots__ = ("tenant", "audio", "endpointing", "partial_transcripts", "hotwords")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    ENDPOINTING_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_TRANSCRIPTS_FIELD_NUMBER: _ClassVar[int]
    HOTWORDS_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    audio: _common_pb2.AudioFormat
    endpointing: _assistant_pb2.EndpointingConfig
    partial_transcripts: bool
    hotwords: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, tenant: _Optional[str] = ..., audio: _Optional[_Union[_common_pb2.AudioFormat, _Mapping]] = ..., endpointing: _Optional[_Union[_assistant_pb2.EndpointingConfig, _Mapping]] = ..., partial_transcripts: _Optional[bool] = ..., hotwords: _Optional[_Iterable[str]] = ...) -> None: ...

class RecognizeRequest(_message.Message):
    __slots__ = ("config", "audio")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    config: RecognizeConfig
    audio: _assistant_pb2.AudioChunk
    def __init__(self, config: _Optional[_Union[RecognizeConfig, _Mapping]] = ..., audio: _Optional[_Union[_assistant_pb2.AudioChunk, _Mapping]] = ...) -> None: ...

class RecognizeResponse(_message.Message):
    __slots__ = ("transcript", "speech", "unsupported_hotwords")
    TRANSCRIPT_FIELD_NUMBER: _ClassVar[int]
    SPEECH_FIELD_NUMBER: _ClassVar[int]
    UNSUPPORTED_HOTWORDS_FIELD_NUMBER: _ClassVar[int]
    transcript: _assistant_pb2.Transcript
    speech: _assistant_pb2.SpeechEvent
    unsupported_hotwords: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, transcript: _Optional[_Union[_assistant_pb2.Transcript, _Mapping]] = ..., speech: _Optional[_Union[_assistant_pb2.SpeechEvent, _Mapping]] = ..., unsupported_hotwords: _Optional[_Iterable[str]] = ...) -> None: ...

class SynthesizeRequest(_message.Message):
    __slots__ = ("text", "audio", "locale")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    text: str
    audio: _common_pb2.AudioFormat
    locale: str
    def __init__(self, text: _Optional[str] = ..., audio: _Optional[_Union[_common_pb2.AudioFormat, _Mapping]] = ..., locale: _Optional[str] = ...) -> None: ...

class SynthesizeResponse(_message.Message):
    __slots__ = ("data", "normalized_text", "offset_ms")
    DATA_FIELD_NUMBER: _ClassVar[int]
    NORMALIZED_TEXT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_MS_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    normalized_text: str
    offset_ms: int
    def __init__(self, data: _Optional[bytes] = ..., normalized_text: _Optional[str] = ..., offset_ms: _Optional[int] = ...) -> None: ...
