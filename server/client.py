"""A small blocking client for the kefu services, used by the CLI and the demo."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc

from kefu_api.v1 import (
    assistant_pb2,
    assistant_pb2_grpc,
    common_pb2,
    knowledge_pb2,
    knowledge_pb2_grpc,
)
from rag.types import IngestReport, SkippedRow
from server.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    KefuError,
    NotFoundError,
    ResourceExhaustedError,
    UnavailableError,
)

_ERRORS = {
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
}


def answer_to_dict(answer: common_pb2.Answer) -> dict[str, Any]:
    """Return the JSON form of an answer that `kefu ask --json` prints."""
    result: dict[str, Any] = {
        "answer_id": answer.answer_id,
        "answer": answer.text,
        "citations": [
            {"doc_id": c.doc_id, "title": c.title, "score": round(c.score, 4), "source": c.source}
            for c in answer.citations
        ],
        "intent": answer.intent,
        "confidence": round(answer.confidence, 4),
        "handoff": answer.handoff,
    }
    if answer.handoff_reason:
        result["handoff_reason"] = answer.handoff_reason
    if answer.slots:
        slots: dict[str, list[str]] = {}
        for slot in answer.slots:
            slots.setdefault(slot.name, []).append(slot.value)
        result["slots"] = slots
    if answer.focus:
        result["focus"] = answer.focus
    if answer.transcript:
        result["transcript"] = answer.transcript
    if answer.image_text:
        result["image_text"] = answer.image_text
    if answer.image_product:
        result["image_product"] = answer.image_product
    return result


class KefuClient:
    """Blocking stubs over one channel to a kefu server."""

    def __init__(self, address: str, max_message_bytes: int = 32 * 1024 * 1024) -> None:
        self.address = address
        self.channel = grpc.insecure_channel(
            address,
            options=[
                ("grpc.max_send_message_length", max_message_bytes),
                ("grpc.max_receive_message_length", max_message_bytes),
            ],
        )
        self.assistant = assistant_pb2_grpc.AssistantStub(self.channel)
        self.knowledge = knowledge_pb2_grpc.KnowledgeStub(self.channel)

    def ask(
        self,
        tenant: str,
        text: str,
        session_id: str = "",
        locale: str = "",
        image: bytes | None = None,
    ) -> dict:
        request = assistant_pb2.AskRequest(
            tenant=tenant, text=text, session_id=session_id, locale=locale
        )
        if image is not None:
            request.image.data = image
        return answer_to_dict(self._call(self.assistant.Ask, request))

    def upsert_images(self, tenant: str, files: list[Path], manifest: Path | None) -> IngestReport:
        """Sync the tenant's catalog photos with `files` through Knowledge.UpsertImages."""
        request = knowledge_pb2.UpsertImagesRequest(
            tenant=tenant,
            images=[knowledge_pb2.ImageFile(name=f.name, content=f.read_bytes()) for f in files],
        )
        if manifest is not None:
            request.manifest = manifest.read_bytes()
            request.manifest_name = manifest.name
        return _report_of(self._call(self.knowledge.UpsertImages, request))

    def ask_audio(
        self, tenant: str, wav: bytes, session_id: str = "", locale: str = "", speak: bool = False
    ) -> tuple[dict, bytes]:
        """Send a recorded question through Converse; return the answer and its audio.

        The answer dict also has `transcript`. The audio is 16 kHz PCM16 without a header,
        empty unless `speak` is set.
        """
        pcm16 = common_pb2.AudioFormat(
            encoding=common_pb2.AUDIO_ENCODING_PCM16, sample_rate_hz=16000
        )
        config = assistant_pb2.SessionConfig(
            tenant=tenant,
            session_id=session_id,
            locale=locale,
            input_audio=common_pb2.AudioFormat(encoding=common_pb2.AUDIO_ENCODING_WAV),
            output_audio=pcm16 if speak else None,
            outputs=assistant_pb2.OutputOptions(audio=speak),
        )
        requests = [assistant_pb2.ConverseRequest(config=config)]
        requests += [
            assistant_pb2.ConverseRequest(audio=assistant_pb2.AudioChunk(data=wav[i : i + 32000]))
            for i in range(0, len(wav), 32000)
        ]
        answer, audio, transcript = None, bytearray(), ""
        try:
            for response in self.assistant.Converse(iter(requests), timeout=300):
                kind = response.WhichOneof("event")
                if kind == "transcript" and response.transcript.is_final:
                    transcript = response.transcript.text
                elif kind == "answer":
                    answer = answer_to_dict(response.answer)
                elif kind == "audio":
                    audio += response.audio.data
                elif kind == "error":
                    raise InvalidArgumentError(
                        response.error.field or "audio", "", response.error.message
                    )
        except grpc.RpcError as exc:
            raise _error_of(exc, self.address) from exc
        if answer is None:
            answer = {"answer": "", "citations": [], "intent": "", "confidence": 0.0,
                      "handoff": False}  # fmt: skip
        answer["transcript"] = transcript
        return answer, bytes(audio)

    def upsert_file(self, tenant: str, path: Path, title_field: str | None = None) -> IngestReport:
        request = knowledge_pb2.UpsertRequest(
            tenant=tenant,
            files=[
                knowledge_pb2.SourceFile(
                    name=path.name, content=path.read_bytes(), title_field=title_field or ""
                )
            ],
        )
        return _report_of(self._call(self.knowledge.Upsert, request))

    def _call(self, method, request):
        try:
            return method(request, timeout=300)
        except grpc.RpcError as exc:
            raise _error_of(exc, self.address) from exc

    def close(self) -> None:
        self.channel.close()


def _report_of(response: knowledge_pb2.UpsertResponse) -> IngestReport:
    skipped = tuple(SkippedRow(s.file, s.row or None, s.reason) for s in response.skipped)
    return IngestReport(
        added=response.added,
        updated=response.updated,
        unchanged=response.unchanged,
        deleted=response.deleted,
        skipped=skipped,
    )


def _error_of(exc: grpc.RpcError, address: str) -> KefuError:
    code = exc.code()
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidArgumentError("request", "", exc.details())
    if code == grpc.StatusCode.UNAVAILABLE:
        return UnavailableError(f"kefu server at {address} is unavailable: {exc.details()}")
    return _ERRORS.get(code, KefuError)(f"{code.name}: {exc.details()}")
