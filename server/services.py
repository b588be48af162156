"""Thin gRPC servicers: convert, call the core in the worker pool, convert back."""

from __future__ import annotations

import asyncio
import functools
import logging
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import Any, TypeVar

import grpc

from asr_tts.recognizer import PartialDue, UtteranceEnded, VoicePaused, VoiceStarted
from kefu_api.v1 import (
    assistant_pb2,
    assistant_pb2_grpc,
    knowledge_pb2,
    knowledge_pb2_grpc,
    speech_pb2,
    speech_pb2_grpc,
)
from rag.clean import clean_items
from rag.knowledge import KnowledgeBase, validate_tenant
from rag.types import IngestReport
from server import convert
from server.assistant import Assistant, Question
from server.errors import InvalidArgumentError, KefuError, ResourceExhaustedError
from server.events import SessionInput, TranscriptEvent
from server.images import VisionEngines
from server.logs import session_id_var
from server.session import ConverseSession
from server.status import status_code_of
from server.voice import VoiceEngines, speak

logger = logging.getLogger(__name__)

T = TypeVar("T")

MAX_SYNTHESIS_CHARS = 2000


async def _abort(context: grpc.aio.ServicerContext, exc: BaseException) -> None:
    code = status_code_of(exc)
    if code == grpc.StatusCode.INTERNAL:
        logger.exception("request failed", exc_info=exc)
        await context.abort(code, "internal error; the server log has the details")
    await context.abort(code, str(exc))


class _Pool:
    """Runs blocking core calls in the bounded worker pool."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor

    async def run(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(func, *args, **kwargs))


class Admission:
    """Counts open streams and rejects new ones past the configured limits.

    Voice streams have their own, lower limit: each needs real-time recognition and
    synthesis, and admitting more than the CPUs sustain would make every call lag.
    """

    def __init__(self, max_streams: int, max_voice_streams: int) -> None:
        self.max_streams = max_streams
        self.max_voice_streams = max_voice_streams
        self.streams = 0
        self.voice_streams = 0

    def check_stream(self) -> None:
        if self.streams >= self.max_streams:
            raise ResourceExhaustedError(
                f"the server is at its limit of {self.max_streams} conversations; retry later"
            )

    def check_voice(self) -> None:
        if self.voice_streams >= self.max_voice_streams:
            raise ResourceExhaustedError(
                f"the server is at its limit of {self.max_voice_streams} voice conversations, "
                "the number it can recognize and speak in real time; retry later or use text"
            )


class AssistantService(assistant_pb2_grpc.AssistantServicer):
    def __init__(
        self, assistant: Assistant, voice: VoiceEngines, executor: Executor, admission: Admission
    ) -> None:
        self.assistant = assistant
        self.voice = voice
        self.pool = _Pool(executor)
        self.admission = admission

    async def Ask(self, request, context):
        try:
            question = Question(
                tenant=request.tenant,
                text=request.text,
                session_id=request.session_id,
                locale=request.locale,
                image=request.image.data if request.HasField("image") else None,
            )
            session_id_var.set(question.session_id or "-")
            result = await self.pool.run(self.assistant.ask, question)
        except Exception as exc:
            await _abort(context, exc)
        return convert.answer_to_proto(result)

    async def SubmitFeedback(self, request, context):
        try:
            rating = convert.rating_from_proto(request.rating)
            feedback_id = await self.pool.run(
                self.assistant.turn_log.add_feedback, request.answer_id, rating, request.comment
            )
        except Exception as exc:
            await _abort(context, exc)
        return assistant_pb2.FeedbackResponse(feedback_id=feedback_id)

    async def Converse(self, request_iterator, context):
        admission = self.admission
        try:
            admission.check_stream()
        except KefuError as exc:
            await _abort(context, exc)
        admission.streams += 1
        voice = False
        try:
            first = await anext(aiter(request_iterator), None)
            if first is None:
                return
            try:
                session = self._open_session(first)
                # Counted only once admitted: a rejected stream must not free a place.
                if session.options.input_audio is not None or session.options.outputs.audio:
                    admission.check_voice()
                    voice = True
            except KefuError as exc:
                await _abort(context, exc)
            admission.voice_streams += voice
            async for event in session.run(_inputs(request_iterator, session)):
                yield convert.event_to_proto(event)
        finally:
            admission.streams -= 1
            admission.voice_streams -= voice

    def _open_session(self, first: assistant_pb2.ConverseRequest) -> ConverseSession:
        if first.WhichOneof("request") != "config":
            raise InvalidArgumentError(
                "config", first.WhichOneof("request"), "the first request must be the config"
            )
        options = convert.session_options_from_proto(first.config)
        return ConverseSession(options, self.assistant, self.voice, self.pool.executor)


async def _inputs(request_iterator, session: ConverseSession) -> AsyncIterator[SessionInput]:
    """Convert requests; a malformed one becomes an error event, not a broken stream."""
    async for request in request_iterator:
        try:
            yield convert.session_input_from_proto(request)
        except InvalidArgumentError as exc:
            await session.report_error(exc)


class KnowledgeService(knowledge_pb2_grpc.KnowledgeServicer):
    def __init__(
        self, knowledge: KnowledgeBase, executor: Executor, vision: VisionEngines | None = None
    ) -> None:
        self.knowledge = knowledge
        self.pool = _Pool(executor)
        self.vision = vision

    async def Upsert(self, request, context):
        try:
            report = await self.pool.run(self._upsert, request)
        except Exception as exc:
            await _abort(context, exc)
        return convert.report_to_proto(report)

    def _upsert(self, request: knowledge_pb2.UpsertRequest) -> IngestReport:
        if not request.files and not request.documents:
            raise InvalidArgumentError("files", [], "send at least one file or document")
        report = IngestReport()
        for i, file in enumerate(request.files):
            if not Path(file.name).name:
                raise InvalidArgumentError(f"files[{i}].name", file.name, "a file name is required")
            report = report.merge(
                self.knowledge.ingest_file(
                    request.tenant,
                    Path(Path(file.name).name),
                    content=file.content,
                    title_field=file.title_field or None,
                )
            )
        if request.documents:
            items = [convert.document_from_proto(d, i) for i, d in enumerate(request.documents)]
            cleaned = clean_items(items)
            report = report.merge(self.knowledge.upsert_items(request.tenant, cleaned.items))
            report = report.merge(IngestReport(skipped=tuple(cleaned.skipped)))
        return report

    async def Delete(self, request, context):
        try:
            deleted = await self.pool.run(
                self.knowledge.delete,
                request.tenant,
                doc_ids=request.doc_ids,
                source=request.source,
            )
        except Exception as exc:
            await _abort(context, exc)
        return knowledge_pb2.DeleteResponse(deleted=deleted)

    async def Search(self, request, context):
        try:
            mode = convert.search_mode_from_proto(request.mode)
            result = await self.pool.run(
                self.knowledge.search,
                request.tenant,
                request.query,
                top_k=request.top_k or 5,
                mode=mode,
            )
        except Exception as exc:
            await _abort(context, exc)
        return knowledge_pb2.SearchResponse(hits=[convert.hit_to_proto(h) for h in result.hits])

    async def UpsertImages(self, request, context):
        try:
            report = await self.pool.run(self._upsert_images, request)
        except Exception as exc:
            await _abort(context, exc)
        return convert.report_to_proto(report)

    def _upsert_images(self, request: knowledge_pb2.UpsertImagesRequest) -> IngestReport:
        """Write the photos to a temporary folder and sync the catalog with it."""
        validate_tenant(request.tenant)
        matcher = self.vision.matcher if self.vision is not None else None
        if matcher is None:
            raise InvalidArgumentError("images", "", "image matching is disabled on this server")
        with tempfile.TemporaryDirectory(prefix="kefu-images-") as folder:
            root = Path(folder)
            for i, image in enumerate(request.images):
                name = Path(image.name).name
                if not name or name.startswith("."):
                    raise InvalidArgumentError(f"images[{i}].name", image.name, "a file name")
                (root / name).write_bytes(image.content)
            manifest = None
            if request.manifest:
                manifest_dir = Path(tempfile.mkdtemp(prefix="kefu-manifest-"))
                manifest = manifest_dir / Path(request.manifest_name or "manifest.csv").name
                manifest.write_bytes(request.manifest)
            try:
                return matcher.catalog.ingest_images(request.tenant, root, manifest)
            finally:
                if manifest is not None:
                    shutil.rmtree(manifest.parent, ignore_errors=True)

    async def Stats(self, request, context):
        try:
            stats = await self.pool.run(self.knowledge.stats, request.tenant)
        except Exception as exc:
            await _abort(context, exc)
        return knowledge_pb2.StatsResponse(
            faq=stats["faq"],
            doc=stats["doc"],
            record=stats["record"],
            passages=stats["passages"],
            sources=stats["sources"],
        )


class SpeechService(speech_pb2_grpc.SpeechServicer):
    """Speech recognition and synthesis without retrieval or answers."""

    def __init__(self, voice: VoiceEngines, executor: Executor, admission: Admission) -> None:
        self.voice = voice
        self.pool = _Pool(executor)
        self.admission = admission

    async def Recognize(self, request_iterator, context):
        try:
            self.admission.check_voice()
        except KefuError as exc:
            await _abort(context, exc)
        self.admission.voice_streams += 1
        try:
            async for response in self._recognize(request_iterator, context):
                yield response
        finally:
            self.admission.voice_streams -= 1

    async def _recognize(self, request_iterator, context):
        requests = aiter(request_iterator)
        first = await anext(requests, None)
        if first is None:
            return
        try:
            recognizer, unsupported = self._open_recognizer(first)
        except KefuError as exc:
            await _abort(context, exc)
        yield speech_pb2.RecognizeResponse(unsupported_hotwords=unsupported)
        try:
            async for request in requests:
                if request.WhichOneof("request") != "audio":
                    raise InvalidArgumentError(
                        "config", "second config", "send the config once, then audio chunks"
                    )
                for response in await self._handle(recognizer, recognizer.feed(request.audio.data)):
                    yield response
            for response in await self._handle(recognizer, recognizer.end_of_stream()):
                yield response
        except KefuError as exc:
            await _abort(context, exc)

    def _open_recognizer(self, first: speech_pb2.RecognizeRequest):
        if first.WhichOneof("request") != "config":
            raise InvalidArgumentError(
                "config", first.WhichOneof("request"), "the first request must be the config"
            )
        config = first.config
        if not config.HasField("audio"):
            raise InvalidArgumentError("config.audio", "unset", "set the audio format")
        input_format = convert.input_format_from_proto(config.audio, "config.audio")
        endpointing = convert.endpointing_from_proto(config.endpointing)
        hotwords = tuple(w.strip() for w in config.hotwords if w.strip())
        recognizer = self.voice.open_recognizer(
            input_format, endpointing, hotwords, config.partial_transcripts, "config.audio"
        )
        return recognizer, self.voice.unsupported_hotwords(hotwords)

    async def _handle(self, recognizer, events) -> list[speech_pb2.RecognizeResponse]:
        """Turn recognizer events into responses, running decodes in the worker pool."""
        responses = []
        for event in events:
            if isinstance(event, VoiceStarted):
                speech = convert.speech_to_proto("started", event.offset_ms)
                responses.append(speech_pb2.RecognizeResponse(speech=speech))
            elif isinstance(event, VoicePaused):
                await self.pool.run(recognizer.speculate)
            elif isinstance(event, PartialDue):
                partial = await self.pool.run(recognizer.partial)
                if partial.text:
                    transcript = TranscriptEvent(0, partial.text, False)
                    responses.append(self._transcript(transcript))
            elif isinstance(event, UtteranceEnded):
                speech = convert.speech_to_proto("ended", event.end_ms)
                responses.append(speech_pb2.RecognizeResponse(speech=speech))
                final = await self.pool.run(recognizer.finalize)
                transcript = TranscriptEvent(0, final.text, True, event.start_ms, event.end_ms)
                responses.append(self._transcript(transcript))
        return responses

    @staticmethod
    def _transcript(event: TranscriptEvent) -> speech_pb2.RecognizeResponse:
        return speech_pb2.RecognizeResponse(transcript=convert.transcript_to_proto(event))

    async def Synthesize(self, request, context):
        try:
            tts = self.voice.require_tts("audio")
            text = request.text.strip()
            if not 1 <= len(text) <= MAX_SYNTHESIS_CHARS:
                raise InvalidArgumentError(
                    "text", request.text, f"send 1 to {MAX_SYNTHESIS_CHARS} characters"
                )
            if not request.HasField("audio"):
                raise InvalidArgumentError("audio", "unset", "set the output audio format")
            output = convert.output_format_from_proto(request.audio, "audio")
        except KefuError as exc:
            await _abort(context, exc)

        queue: asyncio.Queue = asyncio.Queue()
        loop = asyncio.get_running_loop()
        stopped = threading.Event()

        def produce() -> None:
            try:
                for chunk in speak(tts, text, output, stopped.is_set):
                    loop.call_soon_threadsafe(queue.put_nowait, chunk)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        producer = loop.run_in_executor(self.pool.executor, produce)
        try:
            while (chunk := await queue.get()) is not None:
                yield speech_pb2.SynthesizeResponse(
                    data=chunk.data, offset_ms=chunk.offset_ms, normalized_text=chunk.spoken_text
                )
            await producer
        except KefuError as exc:
            await _abort(context, exc)
        finally:
            stopped.set()
