"""The transformers engine behind a real server, selected by settings."""

from __future__ import annotations

import grpc

from kefu_api.v1 import assistant_pb2, assistant_pb2_grpc, common_pb2
from tests.conftest import ingest_samples, make_settings


def test_transformers_engine_answers_through_server(tmp_path, tiny_qwen_dir, tracer_provider):
    from server.app import ServerThread

    settings = make_settings(
        tmp_path / "data", answer_engine="transformers", llm_model_dir=tiny_qwen_dir
    )
    server = ServerThread(settings, tracer_provider)
    try:
        ingest_samples(server.address, "shop")
        with grpc.insecure_channel(server.address) as channel:
            stub = assistant_pb2_grpc.AssistantStub(channel)
            answer = stub.Ask(
                assistant_pb2.AskRequest(tenant="shop", text="运费怎么算", session_id="llm"),
                timeout=120,
            )
            follow_up = stub.Ask(
                assistant_pb2.AskRequest(tenant="shop", text="那退款呢", session_id="llm"),
                timeout=120,
            )
    finally:
        server.stop()
    # A random tiny model writes nonsense, so only the pipeline's shape is checked: the
    # engine ran (or fell back to extractive after a failure) and every turn ended cleanly.
    for reply in (answer, follow_up):
        assert reply.answer_id
        assert reply.engine in ("transformers", "extractive")
        assert reply.finish_reason != common_pb2.FINISH_REASON_UNSPECIFIED
