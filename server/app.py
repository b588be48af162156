"""Wiring: build the components from settings and run the gRPC server."""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry.sdk.trace import TracerProvider

from kefu_api.v1 import (
    assistant_pb2,
    assistant_pb2_grpc,
    knowledge_pb2,
    knowledge_pb2_grpc,
    speech_pb2,
    speech_pb2_grpc,
)
from rag.embed import Embedder, create_embedder
from rag.engines import AnswerEngineConfig, create_answer_engine
from rag.guardrails import TenantRules
from rag.knowledge import KnowledgeBase
from rag.stores import open_store
from rag.tokenize import Tokenizer
from server.assistant import Assistant
from server.config import Settings
from server.dialogue import (
    DEFAULT_INTENTS_FILE,
    DialogueManager,
    IntentClassifier,
    SessionMemory,
    load_intent_examples,
)
from server.images import VisionEngines, build_vlm, vision_engines_from_settings
from server.services import Admission, AssistantService, KnowledgeService, SpeechService
from server.telemetry import create_tracer_provider
from server.tenants import TenantConfigs
from server.turnlog import TurnLog
from server.voice import VoiceEngines, build_voice_engines

logger = logging.getLogger(__name__)

SERVICE_NAMES = (
    assistant_pb2.DESCRIPTOR.services_by_name["Assistant"].full_name,
    knowledge_pb2.DESCRIPTOR.services_by_name["Knowledge"].full_name,
    speech_pb2.DESCRIPTOR.services_by_name["Speech"].full_name,
)


@dataclass
class Components:
    """Everything a running kefu process owns; `close` releases it in order."""

    settings: Settings
    knowledge: KnowledgeBase
    assistant: Assistant
    turn_log: TurnLog
    voice: VoiceEngines
    vision: VisionEngines
    executor: ThreadPoolExecutor
    tracer_provider: TracerProvider
    # False when the caller passed its own provider and shuts it down itself.
    owns_tracer_provider: bool = True

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.knowledge.store.close()
        self.vision.close()
        self.turn_log.close()
        if self.owns_tracer_provider:
            self.tracer_provider.shutdown()


@functools.cache
def shared_tokenizer() -> Tokenizer:
    """Return the process's tokenizer; jieba's dictionary is loaded once per process."""
    return Tokenizer()


@functools.cache
def shared_embedder(name: str) -> Embedder:
    """Return the process's embedder for a model name; models are read-only once loaded."""
    return create_embedder(name)


@functools.cache
def shared_ocr_engine(name: str):
    """Return the process's OCR engine; its models load once (about a second)."""
    if name != "rapidocr":
        return None
    from vision.ocr import RapidOcrEngine

    return RapidOcrEngine()


@functools.cache
def shared_voice_engines(
    asr_engine: str, tts_engine: str, model_dir: Path, funasr_model_dir: Path | None
) -> VoiceEngines:
    """Return the process's speech engines; one loaded model serves every stream."""
    return build_voice_engines(asr_engine, tts_engine, model_dir, funasr_model_dir)


def build_knowledge(settings: Settings) -> KnowledgeBase:
    """Open the store and load the tokenizer and embedding model.

    Raises:
        StoreLockedError: another process owns the embedded store.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = shared_tokenizer()
    for path in settings.user_dict:
        tokenizer.load_user_dict(path)
    embedder = shared_embedder(settings.embedding_model)
    store = open_store(
        data_dir=settings.data_dir,
        dense_dim=embedder.dim,
        qdrant_url=settings.qdrant_url,
        qdrant_api_key=settings.qdrant_api_key,
        vector_index=settings.vector_index,
        bm25_idf=settings.bm25_idf,
        hnsw_ef=settings.hnsw_ef,
    )
    return KnowledgeBase(store, embedder, tokenizer)


def build_components(
    settings: Settings, tracer_provider: TracerProvider | None = None
) -> Components:
    """Build every component from settings; bad settings fail here, at start-up."""
    # Whatever opened before a failure is closed again; on success the components own it.
    with ExitStack() as cleanup:
        knowledge = build_knowledge(settings)
        cleanup.callback(knowledge.store.close)
        # An ingestion that was interrupted may have left segments without their index;
        # build them now, before the server takes calls.
        knowledge.build_index()
        turn_log = TurnLog(settings.resolved_database_url)
        cleanup.callback(turn_log.close)
        voice = shared_voice_engines(
            settings.asr_engine,
            settings.tts_engine,
            settings.resolved_model_dir,
            settings.funasr_model_dir,
        )
        vision = vision_engines_from_settings(settings, ocr=shared_ocr_engine(settings.ocr_engine))
        cleanup.callback(vision.close)
        vision.vlm = build_vlm(
            settings.vlm_engine,
            settings.vlm_triton_url,
            settings.vlm_triton_model,
            settings.vlm_model_dir,
        )
        provider = tracer_provider or create_tracer_provider(settings.otlp_endpoint)
        engine_config = AnswerEngineConfig(
            name=settings.answer_engine,
            embedding_model=settings.embedding_model,
            confidence_threshold=settings.confidence_threshold,
            model_dir=settings.llm_model_dir,
            adapter_dir=settings.llm_adapter_dir,
            device=settings.llm_device,
            triton_url=settings.triton_url,
            triton_model=settings.triton_model,
            triton_backend=settings.triton_backend,
        )
        engine = create_answer_engine(engine_config, tokenizer=knowledge.tokenizer)
        engines = {"extractive": engine, settings.answer_engine: engine}
        if settings.answer_engine != "extractive":
            engines["extractive"] = create_answer_engine(
                replace(engine_config, name="extractive"), tokenizer=knowledge.tokenizer
            )
        dialogue = DialogueManager(
            knowledge.entities,
            IntentClassifier(
                knowledge.embedder,
                load_intent_examples(DEFAULT_INTENTS_FILE),
                tenant_dir=settings.intent_examples_dir,
            ),
            SessionMemory(settings.max_sessions, settings.session_ttl_s),
        )
        assistant = Assistant(
            knowledge,
            engine,
            dialogue,
            turn_log,
            provider.get_tracer("kefu"),
            rules=TenantRules(settings.compliance_dir),
            engines=engines,
            tenants=TenantConfigs(settings.tenant_config_dir, tuple(engines)),
            vision=vision,
            top_k=settings.top_k,
            max_question_chars=settings.max_question_chars,
        )
        executor = ThreadPoolExecutor(
            max_workers=settings.workers, thread_name_prefix="kefu-worker"
        )
        cleanup.pop_all()
        return Components(
            settings,
            knowledge,
            assistant,
            turn_log,
            voice,
            vision,
            executor,
            provider,
            tracer_provider is None,
        )


class KefuServer:
    """A started gRPC server with its health service; `stop` drains and closes."""

    def __init__(self, components: Components) -> None:
        self.components = components
        settings = components.settings
        size = settings.max_message_bytes
        self.server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", size),
                ("grpc.max_send_message_length", size),
            ]
        )
        admission = Admission(settings.max_streams, settings.max_voice_streams)
        assistant_pb2_grpc.add_AssistantServicer_to_server(
            AssistantService(
                components.assistant, components.voice, components.executor, admission
            ),
            self.server,
        )
        knowledge_pb2_grpc.add_KnowledgeServicer_to_server(
            KnowledgeService(components.knowledge, components.executor, components.vision),
            self.server,
        )
        speech_pb2_grpc.add_SpeechServicer_to_server(
            SpeechService(components.voice, components.executor, admission), self.server
        )
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server
        )
        self.port = self.server.add_insecure_port(f"{settings.host}:{settings.port}")

    async def start(self) -> None:
        await self.server.start()
        for name in ("", *SERVICE_NAMES):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        logger.info("kefu serving on %s:%d", self.components.settings.host, self.port)

    async def stop(self, grace_s: float | None = None) -> None:
        """Report NOT_SERVING, let calls in flight finish for `grace_s`, then close."""
        grace = self.components.settings.shutdown_grace_s if grace_s is None else grace_s
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        self.components.close()
        logger.info("kefu stopped")


async def serve(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT, then shut down gracefully."""
    server = KefuServer(build_components(settings))
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    logger.info("shutdown requested; draining for up to %.1f s", settings.shutdown_grace_s)
    await server.stop()


class ServerThread:
    """A kefu server running on its own event loop in a background thread.

    For `kefu demo` and tests, which call the server with blocking gRPC stubs.
    """

    def __init__(self, settings: Settings, tracer_provider: TracerProvider | None = None) -> None:
        import threading

        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="kefu-server")
        self._thread.start()
        try:
            self.server = self._call(self._start(settings, tracer_provider))
        except BaseException:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            raise
        self.port = self.server.port
        self.address = f"{settings.host}:{self.port}"

    async def _start(self, settings: Settings, provider: TracerProvider | None) -> KefuServer:
        server = KefuServer(build_components(settings, provider))
        await server.start()
        return server

    def _call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def stop(self, grace_s: float = 1.0) -> None:
        try:
            self._call(self.server.stop(grace_s))
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()
