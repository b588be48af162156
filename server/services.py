"""Thin gRPC servicers: convert, call the core in the worker pool, convert back."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import Any, TypeVar

import grpc

from kefu_api.v1 import (
    assistant_pb2,
    assistant_pb2_grpc,
    knowledge_pb2,
    knowledge_pb2_grpc,
    speech_pb2_grpc,
)
from rag.clean import clean_items
from rag.knowledge import KnowledgeBase
from rag.types import IngestReport
from server import convert
from server.assistant import Assistant, Question
from server.errors import InvalidArgumentError, KefuError, ResourceExhaustedError
from server.logs import session_id_var
from server.session import ConverseSession, SessionInput
from server.status import status_code_of

logger = logging.getLogger(__name__)

T = TypeVar("T")


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


class AssistantService(assistant_pb2_grpc.AssistantServicer):
    def __init__(self, assistant: Assistant, executor: Executor, max_streams: int) -> None:
        self.assistant = assistant
        self.pool = _Pool(executor)
        self.max_streams = max_streams
        self.active_streams = 0

    async def Ask(self, request, context):
        try:
            question = Question(
                tenant=request.tenant,
                text=request.text,
                session_id=request.session_id,
                locale=request.locale,
            )
            if request.HasField("image"):
                raise InvalidArgumentError(
                    "image", f"{len(request.image.data)} bytes", "images await the OCR engine"
                )
            session_id_var.set(question.session_id or "-")
            result = await self.pool.run(self.assistant.ask, question)
        except KefuError as exc:
            await _abort(context, exc)
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
        if self.active_streams >= self.max_streams:
            await _abort(
                context,
                ResourceExhaustedError(
                    f"the server is at its limit of {self.max_streams} conversations; retry later"
                ),
            )
        self.active_streams += 1
        try:
            async for response in self._converse(request_iterator, context):
                yield response
        finally:
            self.active_streams -= 1

    async def _converse(self, request_iterator, context):
        first = await anext(aiter(request_iterator), None)
        if first is None:
            return
        try:
            if first.WhichOneof("request") != "config":
                raise InvalidArgumentError(
                    "config", first.WhichOneof("request"), "the first request must be the config"
                )
            options = convert.session_options_from_proto(first.config)
            if options.outputs.audio:
                raise InvalidArgumentError(
                    "config.outputs.audio", True, "audio output awaits the TTS engine"
                )
        except KefuError as exc:
            await _abort(context, exc)
        session = ConverseSession(options, self.assistant, self.pool.executor)
        async for event in session.run(_inputs(request_iterator, session)):
            yield convert.event_to_proto(event)


async def _inputs(request_iterator, session: ConverseSession) -> AsyncIterator[SessionInput]:
    """Convert requests; a malformed one becomes an error event, not a broken stream."""
    async for request in request_iterator:
        try:
            yield convert.session_input_from_proto(request)
        except InvalidArgumentError as exc:
            await session.report_error(exc)


class KnowledgeService(knowledge_pb2_grpc.KnowledgeServicer):
    def __init__(self, knowledge: KnowledgeBase, executor: Executor) -> None:
        self.knowledge = knowledge
        self.pool = _Pool(executor)

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
    """Speech recognition and synthesis; both await their engines."""

    async def Recognize(self, request_iterator, context):
        await context.abort(
            grpc.StatusCode.UNIMPLEMENTED,
            "Speech.Recognize awaits the ASR engine (faster-whisper with Whisper base)",
        )
        yield  # makes this an async generator, as the streaming signature requires

    async def Synthesize(self, request, context):
        await context.abort(
            grpc.StatusCode.UNIMPLEMENTED,
            "Speech.Synthesize awaits the TTS engine (espeak-ng with the cmn-latn-pinyin voice)",
        )
        yield
