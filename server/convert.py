"""Conversion between protobuf messages and the plain typed objects of the core."""

from __future__ import annotations

import json
from dataclasses import replace

from kefu_api.v1 import assistant_pb2, common_pb2, knowledge_pb2
from rag.answer import Citation
from rag.knowledge import Hit
from rag.loaders import faq_item, record_item
from rag.types import IngestReport, SkippedRow, SourceItem
from server.assistant import AnswerResult
from server.errors import InvalidArgumentError
from server.session import (
    AnswerDeltaEvent,
    AnswerEvent,
    AudioInput,
    CancelInput,
    EndOfUtteranceInput,
    ErrorEvent,
    ImageInput,
    OutputOptions,
    SessionEvent,
    SessionInput,
    SessionOptions,
    SessionStartedEvent,
    TextInput,
    TurnEndEvent,
)

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
    )


def session_options_from_proto(config: assistant_pb2.SessionConfig) -> SessionOptions:
    outputs = OutputOptions(
        text_deltas=config.outputs.text_deltas,
        audio=config.outputs.audio,
        partial_transcripts=config.outputs.partial_transcripts,
    )
    return SessionOptions(
        tenant=config.tenant,
        session_id=config.session_id,
        locale=config.locale,
        outputs=outputs,
        hotwords=tuple(config.hotwords),
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
    elif isinstance(event, AnswerDeltaEvent):
        response.answer_delta.answer_id = event.answer_id
        response.answer_delta.text = event.text
    elif isinstance(event, AnswerEvent):
        response.answer.CopyFrom(answer_to_proto(event.result))
    elif isinstance(event, TurnEndEvent):
        response.turn_end.reason = event.reason
    elif isinstance(event, ErrorEvent):
        response.error.code = event.code
        response.error.message = event.message
        response.error.field = event.field
    else:
        raise TypeError(f"no protobuf form for session event {type(event).__name__}")
    return response


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
