"""The transformers engine behind a real server, selected by settings."""

from __future__ import annotations

import grpc

from kefu_api.v1 import assistant_pb2, assistant_pb2_grpc, common_pb2
from tests.conftest import ingest_samples, make_settings


def test_transformers_engine_answers_through_server(tmp_path, tiny_qwen_dir, tracer_provider):
    from server.app import ServerThread

    tenants = tmp_path / "tenants"
    tenants.mkdir()
    (tenants / "plain.yaml").write_text("answer_engine: extractive\n", "utf-8")
    (tenants / "shop.yaml").write_text(
        "persona:\n  brand: 云帆旗舰店\n  tone: 亲切\n  rules: [不承诺赔偿金额]\n", "utf-8"
    )
    settings = make_settings(
        tmp_path / "data",
        answer_engine="transformers",
        llm_model_dir=tiny_qwen_dir,
        tenant_config_dir=tenants,
    )
    server = ServerThread(settings, tracer_provider)
    try:
        ingest_samples(server.address, "shop")
        ingest_samples(server.address, "plain")
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
            plain = stub.Ask(assistant_pb2.AskRequest(tenant="plain", text="运费怎么算"))
    finally:
        server.stop()
    # A random tiny model writes nonsense, so only the pipeline's shape is checked: the
    # engine ran (or fell back to extractive after a failure) and every turn ended cleanly.
    for reply in (answer, follow_up):
        assert reply.answer_id
        assert reply.engine in ("transformers", "extractive")
        assert reply.finish_reason != common_pb2.FINISH_REASON_UNSPECIFIED
    # The tenant config picks the extractive engine for `plain`.
    assert plain.engine == "extractive"
    assert "99元包邮" in plain.text


def test_tenant_config_errors(tmp_path) -> None:
    import pytest

    from server.errors import ConfigError
    from server.tenants import TenantConfigs

    configs = TenantConfigs(tmp_path, ("extractive",))
    (tmp_path / "a.yaml").write_text("answer_engine: triton\n", "utf-8")
    with pytest.raises(ConfigError, match="answer_engine='triton'"):
        configs.for_tenant("a")
    (tmp_path / "b.yaml").write_text("engine: x\n", "utf-8")
    with pytest.raises(ConfigError, match="unknown keys"):
        configs.for_tenant("b")
    (tmp_path / "c.yaml").write_text("persona:\n  rules: 不承诺\n", "utf-8")
    with pytest.raises(ConfigError, match="persona.rules"):
        configs.for_tenant("c")
    assert configs.for_tenant("none").answer_engine == ""
