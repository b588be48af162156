"""Conversion between protobuf messages and the plain typed objects of the core."""

from __future__ import annotations

import json
from dataclasses import replace

from asr_tts.audio import InputAudioFormat, OutputAudioFormat
from kefu_api.v1 import assistant_pb2, common_pb2, knowledge_pb2
from rag.answer import Citation
from rag.knowledge import Hit
from rag.loaders import faq_item, record_item
from rag.types import IngestReport, SkippedRow, SourceItem
from server.assistant import AnswerResult
from server.errors import InvalidArgumentError
from server.events import (
    AnswerDeltaEvent,
    AnswerEvent,
    AudioFlushEvent,
    AudioInput,
    AudioOutEvent,
    CancelInput,
    EndOfUtteranceInput,
    ErrorEvent,
    ImageInput,
    OutputOptions,
    SessionEvent,
    SessionInput,
    SessionOptions,
    SessionStartedEvent,
    SpeechActivityEvent,
    TextInput,
    TranscriptEvent,
    TurnEndEvent,
)
from server.voice import EndpointingOptions

_FINISH_REASONS = {
    "complete": common_pb2.FINISH_REASON_COMPLETE,
    "cancelled": common_pb2.FINISH_REASON_CANCELLED,
    "length": common_pb2.FINISH_REASON_LENGTH,
    "fallback": common_pb2.FINISH_REASON_FALLBACK,
    "error": common_pb2.FINISH_REASON_ERROR,
}
_SEARCH_MODES = {
    knowledge_pb2.SEARCH_MODE_UNSPECIFIED: "hybrid",
    knowledge_pb2.SEARCH_MODE_HYBRID: "hybrid",
    knowledge_pb2.SEARCH_MODE_DENSE: "dense",
    knowledge_pb2.SEARCH_MODE_SPARSE: "sparse",
}
_RATINGS = {
    assistant_pb2.FeedbackRequest.RATING_UP: "up",
    assistant_pb2.FeedbackRequest.RATING_DOWN: "down",
}


def citation_to_proto(citation: Citation) -> common_pb2.Citation:
    return common_pb2.Citation(
        doc_id=citation.doc_id,
        title=citation.title,
        score=citation.score,
        kind=citation.kind,
        source=citation.source,
        snippet=citation.snippet,
    )


def answer_to_proto(result: AnswerResult) -> common_pb2.Answer:
    final = result.final
    return common_pb2.Answer(
        answer_id=result.answer_id,
        text=final.text,
        citations=[citation_to_proto(c) for c in final.citations],
        intent=final.intent,
        confidence=final.confidence,
        handoff=final.handoff,
        handoff_reason=final.handoff_reason,
        transcript=result.transcript,
        engine=final.engine,
        finish_reason=_FINISH_REASONS.get(
            final.finish_reason, common_pb2.FINISH_REASON_UNSPECIFIED
        ),
        slots=[
            common_pb2.Slot(name=name.removesuffix("s"), value=value)
            for name, values in result.slots.as_dict().items()
            for value in values
        ],
        focus=result.focus,
        image_text=result.image_text,
        image_product=result.image_product,
    )


_ENCODINGS = {
    common_pb2.AUDIO_ENCODING_PCM16: "pcm16",
    common_pb2.AUDIO_ENCODING_MULAW: "mulaw",
    common_pb2.AUDIO_ENCODING_ALAW: "alaw",
    common_pb2.AUDIO_ENCODING_WAV: "wav",
}
_CHANNELS = {
    common_pb2.CHANNEL_SELECTION_UNSPECIFIED: "mix",
    common_pb2.CHANNEL_SELECTION_DOWNMIX: "mix",
    common_pb2.CHANNEL_SELECTION_LEFT: "left",
    common_pb2.CHANNEL_SELECTION_RIGHT: "right",
}


def _encoding(audio: common_pb2.AudioFormat, field_name: str) -> str:
    if audio.encoding not in _ENCODINGS:
        raise InvalidArgumentError(
            f"{field_name}.encoding",
            common_pb2.AudioEncoding.Name(audio.encoding)
            if audio.encoding in common_pb2.AudioEncoding.values()
            else audio.encoding,
            "accepted: AUDIO_ENCODING_PCM16, _MULAW, _ALAW, _WAV (WAV for input only)",
        )
    return _ENCODINGS[audio.encoding]


def input_format_from_proto(
    audio: common_pb2.AudioFormat, field_name: str = "config.input_audio"
) -> InputAudioFormat:
    """Convert and validate the format of the caller's audio."""
    try:
        return InputAudioFormat(
            encoding=_encoding(audio, field_name),
            sample_rate_hz=audio.sample_rate_hz,
            channels=audio.channels,
            channel=_CHANNELS.get(audio.channel, "mix"),
        )
    except InvalidArgumentError as exc:
        raise _under(exc, field_name) from exc


def output_format_from_proto(
    audio: common_pb2.AudioFormat, field_name: str = "config.output_audio"
) -> OutputAudioFormat:
    """Convert and validate the format of spoken answers."""
    try:
        return OutputAudioFormat(
            encoding=_encoding(audio, field_name), sample_rate_hz=audio.sample_rate_hz
        )
    except InvalidArgumentError as exc:
        raise _under(exc, field_name) from exc


def _under(exc: InvalidArgumentError, field_name: str) -> InvalidArgumentError:
    # asr_tts names fields `input_audio.x`; the request field is `config.input_audio.x`.
    if exc.field.startswith(field_name):
        return exc
    leaf = exc.field.split(".", 1)[-1]
    return InvalidArgumentError(f"{field_name}.{leaf}", exc.value, exc.reason)


def endpointing_from_proto(endpointing) -> EndpointingOptions:
    try:
        return EndpointingOptions(
            silence_ms=endpointing.silence_ms,
            max_utterance_ms=endpointing.max_utterance_ms,
            partial_interval_ms=endpointing.partial_interval_ms,
        )
    except InvalidArgumentError as exc:
        raise exc.with_prefix("config.") from exc


def session_options_from_proto(config: assistant_pb2.SessionConfig) -> SessionOptions:
    outputs = OutputOptions(
        text_deltas=config.outputs.text_deltas,
        audio=config.outputs.audio,
        partial_transcripts=config.outputs.partial_transcripts,
    )
    input_audio = None
    if config.HasField("input_audio"):
        input_audio = input_format_from_proto(config.input_audio)
    output_audio = None
    if config.HasField("output_audio") or config.outputs.audio:
        output_audio = output_format_from_proto(config.output_audio)
    return SessionOptions(
        tenant=config.tenant,
        session_id=config.session_id,
        locale=config.locale,
        outputs=outputs,
        hotwords=tuple(config.hotwords),
        input_audio=input_audio,
        output_audio=output_audio,
        endpointing=endpointing_from_proto(config.endpointing),
    )


def session_input_from_proto(request: assistant_pb2.ConverseRequest) -> SessionInput:
    """Convert a request after the first; a second config is INVALID_ARGUMENT."""
    kind = request.WhichOneof("request")
    if kind == "text":
        return TextInput(request.text.text)
    if kind == "audio":
        return AudioInput(request.audio.data)
    if kind == "image":
        return ImageInput(request.image.data, request.image.last, request.image.text)
    if kind == "control":
        if request.control.kind == assistant_pb2.Control.KIND_CANCEL:
            return CancelInput()
        if request.control.kind == assistant_pb2.Control.KIND_END_OF_UTTERANCE:
            return EndOfUtteranceInput()
        raise InvalidArgumentError(
            "control.kind", request.control.kind, "accepted: KIND_END_OF_UTTERANCE, KIND_CANCEL"
        )
    if kind == "config":
        raise InvalidArgumentError(
            "config", "second config", "the config is sent once, as the first request"
        )
    raise InvalidArgumentError("request", "empty", "set one of text, audio, image or control")


def event_to_proto(event: SessionEvent) -> assistant_pb2.ConverseResponse:
    response = assistant_pb2.ConverseResponse(turn=event.turn)
    if isinstance(event, SessionStartedEvent):
        response.session_started.session_id = event.session_id
        response.session_started.unsupported_hotwords.extend(event.unsupported_hotwords)
    elif isinstance(event, TranscriptEvent):
        response.transcript.CopyFrom(transcript_to_proto(event))
    elif isinstance(event, SpeechActivityEvent):
        response.speech.CopyFrom(speech_to_proto(event.kind, event.offset_ms))
    elif isinstance(event, AnswerDeltaEvent):
        response.answer_delta.answer_id = event.answer_id
        response.answer_delta.text = event.text
    elif isinstance(event, AnswerEvent):
        response.answer.CopyFrom(answer_to_proto(event.result))
    elif isinstance(event, AudioOutEvent):
        response.audio.answer_id = event.answer_id
        response.audio.data = event.data
        response.audio.offset_ms = event.offset_ms
    elif isinstance(event, AudioFlushEvent):
        response.audio_flush.answer_id = event.answer_id
    elif isinstance(event, TurnEndEvent):
        response.turn_end.reason = event.reason
        response.turn_end.latency_ms.update(event.latency_ms)
    elif isinstance(event, ErrorEvent):
        response.error.code = event.code
        response.error.message = event.message
        response.error.field = event.field
    else:
        raise TypeError(f"no protobuf form for session event {type(event).__name__}")
    return response


def transcript_to_proto(event: TranscriptEvent) -> assistant_pb2.Transcript:
    return assistant_pb2.Transcript(
        text=event.text, is_final=event.is_final, start_ms=event.start_ms, end_ms=event.end_ms
    )


def speech_to_proto(kind: str, offset_ms: int) -> assistant_pb2.SpeechEvent:
    kinds = {
        "started": assistant_pb2.SpeechEvent.KIND_SPEECH_STARTED,
        "ended": assistant_pb2.SpeechEvent.KIND_SPEECH_ENDED,
    }
    return assistant_pb2.SpeechEvent(kind=kinds[kind], offset_ms=offset_ms)


def rating_from_proto(rating: int) -> str:
    if rating not in _RATINGS:
        raise InvalidArgumentError("rating", rating, "accepted ratings are RATING_UP, RATING_DOWN")
    return _RATINGS[rating]


def search_mode_from_proto(mode: int) -> str:
    if mode not in _SEARCH_MODES:
        raise InvalidArgumentError("mode", mode, "accepted modes are HYBRID, DENSE, SPARSE")
    return _SEARCH_MODES[mode]


def hit_to_proto(hit: Hit) -> knowledge_pb2.SearchHit:
    return knowledge_pb2.SearchHit(
        doc_id=hit.doc_id,
        title=hit.title,
        text=hit.text,
        score=hit.score,
        kind=hit.kind,
        source=hit.source,
        category=hit.category,
        fields_json=json.dumps(hit.fields, ensure_ascii=False) if hit.fields else "",
    )


def report_to_proto(report: IngestReport) -> knowledge_pb2.UpsertResponse:
    return knowledge_pb2.UpsertResponse(
        added=report.added,
        updated=report.updated,
        unchanged=report.unchanged,
        deleted=report.deleted,
        skipped=[
            knowledge_pb2.SkippedRow(file=s.file, row=s.row or 0, reason=s.reason)
            for s in report.skipped
        ],
    )


def document_from_proto(doc: knowledge_pb2.Document, index: int) -> SourceItem:
    """Convert an API document to a source item; `index` names it in errors."""
    where = f"documents[{index}]"
    if not doc.doc_id.strip():
        raise InvalidArgumentError(f"{where}.doc_id", doc.doc_id, "a document id is required")
    if doc.kind not in ("faq", "doc", "record"):
        raise InvalidArgumentError(f"{where}.kind", doc.kind, "accepted kinds are faq, doc, record")
    if not doc.title.strip():
        raise InvalidArgumentError(f"{where}.title", doc.title, "a title is required")
    fields = _parse_fields(doc.fields_json, f"{where}.fields_json") if doc.fields_json else {}
    if doc.kind == "record" and not fields:
        raise InvalidArgumentError(f"{where}.fields_json", doc.fields_json, "a record needs fields")
    if doc.kind != "record" and not doc.text.strip():
        raise InvalidArgumentError(f"{where}.text", doc.text, f"a {doc.kind} needs text")
    return _document_item(doc, fields)


def _document_item(doc: knowledge_pb2.Document, fields: dict) -> SourceItem:
    """Build the item exactly as the file loaders build one, then keep the API's own id."""
    source = doc.source or "api"
    if doc.kind == "faq":
        values = {"question": doc.title, "answer": doc.text, "category": doc.category}
        item = faq_item(values, source, row=0)
    elif doc.kind == "record":
        item = record_item({**fields, "title": doc.title}, source, row=0, title_field="title")
        if isinstance(item, SkippedRow):
            raise InvalidArgumentError("title", doc.title, item.reason)
    else:
        item = SourceItem(kind="doc", doc_id=doc.doc_id, title=doc.title, text=doc.text,
                          source=source, category=doc.category)  # fmt: skip
    return replace(item, doc_id=doc.doc_id, row=None, category=doc.category or item.category)


def _parse_fields(text: str, field_name: str) -> dict:
    try:
        fields = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgumentError(field_name, text, f"not valid JSON: {exc}") from exc
    if not isinstance(fields, dict):
        raise InvalidArgumentError(field_name, text, "fields must be a JSON object")
    return fields
