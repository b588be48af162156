"""The gRPC services over a real server on port 0 with the sample knowledge base."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from kefu_api.v1 import (
    assistant_pb2,
    assistant_pb2_grpc,
    knowledge_pb2,
    knowledge_pb2_grpc,
    speech_pb2,
    speech_pb2_grpc,
)
from server.turnlog import TurnLog
from tests.conftest import ingest_samples


@pytest.fixture
def channel(running_server) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(running_server.address) as channel:
        yield channel


@pytest.fixture
def assistant(channel) -> assistant_pb2_grpc.AssistantStub:
    return assistant_pb2_grpc.AssistantStub(channel)


@pytest.fixture
def knowledge(channel) -> knowledge_pb2_grpc.KnowledgeStub:
    return knowledge_pb2_grpc.KnowledgeStub(channel)


def ask(stub, text: str, tenant: str = "shop", **kwargs):
    return stub.Ask(assistant_pb2.AskRequest(tenant=tenant, text=text, **kwargs), timeout=30)


# Ask


def test_ask_faq_with_citation(assistant) -> None:
    answer = ask(assistant, "运费怎么算？")
    assert "99元包邮" in answer.text
    assert answer.citations[0].doc_id == "FAQ-005"
    assert answer.citations[0].source == "faq.csv"
    assert answer.intent == "shipping"
    assert answer.confidence >= 0.4
    assert not answer.handoff
    assert answer.answer_id


def test_ask_sku_finds_product(assistant) -> None:
    answer = ask(assistant, "AB-1299-X多少钱")
    assert answer.citations[0].doc_id == "云帆AB-1299-X无线降噪耳机"
    assert "¥1,299.00" in answer.text


def test_ask_traditional_script(assistant) -> None:
    answer = ask(assistant, "發票抬頭寫錯了怎麼辦")
    assert answer.citations[0].doc_id == "FAQ-016"


def test_ask_document_passage(assistant) -> None:
    answer = ask(assistant, "耳机拆封了还能无理由退货吗")
    assert answer.citations[0].source == "returns_policy.md"
    assert "卫生" in answer.text


def test_ask_unrelated_hands_off(assistant) -> None:
    answer = ask(assistant, "你们卖不卖二手汽车？")
    assert answer.handoff
    assert answer.handoff_reason == "low_confidence"
    assert "人工客服" in answer.text
    assert not answer.citations


def test_ask_english_fallback(assistant) -> None:
    answer = ask(assistant, "你们卖不卖二手汽车？", locale="en-US")
    assert answer.text.startswith("Sorry")


@pytest.mark.parametrize(
    ("request_kwargs", "field"),
    [
        ({"text": ""}, "text"),
        ({"text": "   \n\t "}, "text"),
        ({"text": "运" * 100_000}, "text"),
        ({"text": "运费", "tenant": "bad tenant!"}, "tenant"),
        ({"text": "运费", "tenant": ""}, "tenant"),
        ({"text": "运费", "locale": "fr-FR"}, "locale"),
    ],
)
def test_ask_invalid_argument(assistant, request_kwargs, field) -> None:
    kwargs = {"tenant": "shop", **request_kwargs}
    with pytest.raises(grpc.RpcError) as info:
        assistant.Ask(assistant_pb2.AskRequest(**kwargs), timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"invalid {field}=" in info.value.details()
    # The server keeps serving.
    assert "99元包邮" in ask(assistant, "运费怎么算").text


def test_ask_unknown_tenant_not_found(assistant) -> None:
    with pytest.raises(grpc.RpcError) as info:
        ask(assistant, "运费怎么算", tenant="nobody")
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert "nobody" in info.value.details()
    assert "kefu ingest" in info.value.details()


def test_message_over_size_limit(settings_factory, tracer_provider) -> None:
    from server.app import ServerThread
    from server.config import MIB

    server = ServerThread(settings_factory(max_message_bytes=MIB), tracer_provider)
    try:
        with grpc.insecure_channel(server.address) as channel:
            stub = knowledge_pb2_grpc.KnowledgeStub(channel)
            big = knowledge_pb2.SourceFile(name="big.txt", content=b"x" * (2 * MIB))
            with pytest.raises(grpc.RpcError) as info:
                stub.Upsert(knowledge_pb2.UpsertRequest(tenant="t", files=[big]), timeout=30)
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            small = knowledge_pb2.SourceFile(
                name="faq.csv", content="问题,答案\n运费怎么算,满99包邮\n".encode()
            )
            reply = stub.Upsert(knowledge_pb2.UpsertRequest(tenant="t", files=[small]), timeout=30)
            assert reply.added == 1
    finally:
        server.stop()


# SubmitFeedback


def test_feedback_stored_durably(running_server, assistant) -> None:
    answer = ask(assistant, "运费怎么算")
    reply = assistant.SubmitFeedback(
        assistant_pb2.FeedbackRequest(
            answer_id=answer.answer_id,
            rating=assistant_pb2.FeedbackRequest.RATING_DOWN,
            comment="回答太简单，请回电 13800138000",
        ),
        timeout=10,
    )
    assert reply.feedback_id

    # A second connection to the database file sees the committed rows.
    log = TurnLog(running_server.server.components.settings.resolved_database_url)
    try:
        rows = log.feedback_for(answer.answer_id)
        turn = log.turn(answer.answer_id)
    finally:
        log.close()
    assert rows == [{"rating": "down", "comment": "回答太简单，请回电 138****8000"}]
    assert turn["question"] == "运费怎么算"
    assert turn["citations"][0]["doc_id"] == "FAQ-005"


def test_feedback_unknown_answer(assistant) -> None:
    with pytest.raises(grpc.RpcError) as info:
        assistant.SubmitFeedback(
            assistant_pb2.FeedbackRequest(
                answer_id="no-such-answer", rating=assistant_pb2.FeedbackRequest.RATING_UP
            ),
            timeout=10,
        )
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_feedback_needs_rating(assistant) -> None:
    answer = ask(assistant, "运费怎么算")
    with pytest.raises(grpc.RpcError) as info:
        assistant.SubmitFeedback(assistant_pb2.FeedbackRequest(answer_id=answer.answer_id))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "rating" in info.value.details()


# Converse


class ConverseClient:
    """Drives one Converse stream from the test thread."""

    def __init__(self, stub, config: assistant_pb2.SessionConfig) -> None:
        self._requests: queue.Queue = queue.Queue()
        self._requests.put(assistant_pb2.ConverseRequest(config=config))
        self.responses = stub.Converse(iter(self._requests.get, None), timeout=60)

    def send(self, **kwargs) -> None:
        self._requests.put(assistant_pb2.ConverseRequest(**kwargs))

    def close(self) -> None:
        self._requests.put(None)

    def until_turn_end(self) -> list:
        events = []
        for response in self.responses:
            events.append(response)
            if response.WhichOneof("event") == "turn_end":
                return events
        return events


def test_converse_text_turns(assistant) -> None:
    config = assistant_pb2.SessionConfig(
        tenant="shop", session_id="s-1", outputs=assistant_pb2.OutputOptions(text_deltas=True)
    )
    client = ConverseClient(assistant, config)
    client.send(text=assistant_pb2.TextInput(text="运费怎么算"))
    client.send(text=assistant_pb2.TextInput(text="退款多久到账"))
    client.close()
    events = list(client.responses)
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds[0] == "session_started"
    assert kinds.count("answer") == 2
    assert kinds.count("turn_end") == 2
    assert events[0].session_started.session_id == "s-1"

    first, second = [e.answer for e in events if e.WhichOneof("event") == "answer"]
    for turn, answer in ((1, first), (2, second)):
        deltas = [e.answer_delta for e in events if e.turn == turn and e.HasField("answer_delta")]
        assert deltas, turn
        assert "".join(d.text for d in deltas) == answer.text
        assert {d.answer_id for d in deltas} == {answer.answer_id}
        turn_kinds = [e.WhichOneof("event") for e in events if e.turn == turn]
        assert turn_kinds[-2:] == ["answer", "turn_end"]
    assert first.citations[0].doc_id == "FAQ-005"
    assert second.citations[0].doc_id == "FAQ-010"


def test_converse_bad_turn_keeps_stream(assistant) -> None:
    client = ConverseClient(assistant, assistant_pb2.SessionConfig(tenant="shop"))
    client.send(text=assistant_pb2.TextInput(text="  "))
    client.send(config=assistant_pb2.SessionConfig(tenant="shop"))
    client.send(text=assistant_pb2.TextInput(text="运费怎么算"))
    client.close()
    events = list(client.responses)
    errors = [e.error for e in events if e.WhichOneof("event") == "error"]
    assert [e.code for e in errors] == ["INVALID_ARGUMENT", "INVALID_ARGUMENT"]
    assert {e.field for e in errors} == {"text", "config"}
    answers = [e.answer for e in events if e.WhichOneof("event") == "answer"]
    assert "99元包邮" in answers[0].text


def test_converse_audio_without_input_format(assistant) -> None:
    client = ConverseClient(assistant, assistant_pb2.SessionConfig(tenant="shop"))
    client.send(audio=assistant_pb2.AudioChunk(data=b"\x00\x00"))
    client.send(text=assistant_pb2.TextInput(text="运费怎么算"))
    client.close()
    events = list(client.responses)
    errors = [e.error for e in events if e.WhichOneof("event") == "error"]
    assert errors[0].code == "INVALID_ARGUMENT"
    assert "config.input_audio" in errors[0].message
    assert any(e.WhichOneof("event") == "answer" for e in events)


def test_converse_corrupt_image_keeps_stream(assistant) -> None:
    client = ConverseClient(assistant, assistant_pb2.SessionConfig(tenant="shop"))
    client.send(image=assistant_pb2.ImageChunk(data=b"\x89PNG", last=True))
    client.send(text=assistant_pb2.TextInput(text="运费怎么算"))
    client.close()
    events = list(client.responses)
    errors = [e.error for e in events if e.WhichOneof("event") == "error"]
    assert errors[0].code == "INVALID_ARGUMENT"
    assert errors[0].field == "image"
    assert any(e.WhichOneof("event") == "answer" for e in events)


def test_converse_first_request_must_be_config(assistant) -> None:
    requests = iter([assistant_pb2.ConverseRequest(text=assistant_pb2.TextInput(text="运费"))])
    with pytest.raises(grpc.RpcError) as info:
        list(assistant.Converse(requests, timeout=10))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "config" in info.value.details()


def test_converse_bad_tenant_in_config(assistant) -> None:
    requests = iter(
        [assistant_pb2.ConverseRequest(config=assistant_pb2.SessionConfig(tenant="a b"))]
    )
    with pytest.raises(grpc.RpcError) as info:
        list(assistant.Converse(requests, timeout=10))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "config.tenant" in info.value.details()


def test_converse_cancel_is_harmless_between_turns(assistant) -> None:
    client = ConverseClient(assistant, assistant_pb2.SessionConfig(tenant="shop"))
    client.send(control=assistant_pb2.Control(kind=assistant_pb2.Control.KIND_CANCEL))
    client.send(text=assistant_pb2.TextInput(text="运费怎么算"))
    client.close()
    kinds = [e.WhichOneof("event") for e in client.responses]
    assert kinds == ["session_started", "answer", "turn_end"]


def test_converse_capacity_exhausted(settings_factory, tracer_provider) -> None:
    from server.app import ServerThread

    server = ServerThread(settings_factory(max_streams=1), tracer_provider)
    try:
        ingest_samples(server.address, "shop")
        with grpc.insecure_channel(server.address) as channel:
            stub = assistant_pb2_grpc.AssistantStub(channel)
            first = ConverseClient(stub, assistant_pb2.SessionConfig(tenant="shop"))
            started = next(first.responses)
            assert started.WhichOneof("event") == "session_started"
            second = ConverseClient(stub, assistant_pb2.SessionConfig(tenant="shop"))
            with pytest.raises(grpc.RpcError) as info:
                next(second.responses)
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            first.close()
            list(first.responses)
    finally:
        server.stop()


# Knowledge


def test_knowledge_stats(knowledge) -> None:
    stats = knowledge.Stats(knowledge_pb2.StatsRequest(tenant="shop"))
    assert (stats.faq, stats.record, stats.sources) == (20, 6, 3)
    assert stats.doc >= 3
    assert stats.passages == stats.faq + stats.doc + stats.record


def test_knowledge_search_modes(knowledge) -> None:
    for mode in (
        knowledge_pb2.SEARCH_MODE_HYBRID,
        knowledge_pb2.SEARCH_MODE_DENSE,
        knowledge_pb2.SEARCH_MODE_SPARSE,
    ):
        reply = knowledge.Search(
            knowledge_pb2.SearchRequest(tenant="shop", query="UD-256GB U盘", top_k=3, mode=mode)
        )
        assert reply.hits[0].doc_id == "云帆256GB高速U盘", mode
        assert json.loads(reply.hits[0].fields_json)["型号"] == "UD-256GB"


def test_knowledge_tenant_isolation(knowledge) -> None:
    doc = knowledge_pb2.Document(
        doc_id="X-1", kind="faq", title="会员积分怎么兑换？", text="积分可以在会员中心兑换优惠券。"
    )
    knowledge.Upsert(knowledge_pb2.UpsertRequest(tenant="other", documents=[doc]))
    hits = knowledge.Search(
        knowledge_pb2.SearchRequest(tenant="shop", query="会员积分怎么兑换")
    ).hits
    assert "X-1" not in [h.doc_id for h in hits]
    other = knowledge.Search(knowledge_pb2.SearchRequest(tenant="other", query="运费怎么算")).hits
    assert {h.doc_id for h in other} == {"X-1"}
    deleted = knowledge.Delete(knowledge_pb2.DeleteRequest(tenant="shop", doc_ids=["X-1"]))
    assert deleted.deleted == 0
    assert knowledge.Stats(knowledge_pb2.StatsRequest(tenant="other")).faq == 1


def test_knowledge_delete_and_reupsert(running_server, knowledge, assistant) -> None:
    ingest_samples(running_server.address, "shop-delete")
    reply = knowledge.Delete(knowledge_pb2.DeleteRequest(tenant="shop-delete", doc_ids=["FAQ-005"]))
    assert reply.deleted == 1
    answer = ask(assistant, "运费怎么算", tenant="shop-delete")
    assert "FAQ-005" not in [c.doc_id for c in answer.citations]
    doc = knowledge_pb2.Document(
        doc_id="FAQ-005", kind="faq", title="运费怎么算？", text="全场包邮。", category="物流"
    )
    added = knowledge.Upsert(knowledge_pb2.UpsertRequest(tenant="shop-delete", documents=[doc]))
    assert added.added == 1
    assert ask(assistant, "运费怎么算", tenant="shop-delete").text == "全场包邮。"


def test_knowledge_delete_by_source(running_server, knowledge) -> None:
    ingest_samples(running_server.address, "shop-source")
    reply = knowledge.Delete(
        knowledge_pb2.DeleteRequest(tenant="shop-source", source="products.jsonl")
    )
    assert reply.deleted == 6
    assert knowledge.Stats(knowledge_pb2.StatsRequest(tenant="shop-source")).record == 0


def test_knowledge_upsert_reports_skipped_rows(knowledge) -> None:
    content = "问题,答案\n运费怎么算,满99包邮\n,没有问题的行\n测试,测试\n".encode()
    reply = knowledge.Upsert(
        knowledge_pb2.UpsertRequest(
            tenant="t2", files=[knowledge_pb2.SourceFile(name="dir/faq.csv", content=content)]
        )
    )
    assert reply.added == 1
    skipped = {(s.file, s.row) for s in reply.skipped}
    assert skipped == {("faq.csv", 3), ("faq.csv", 4)}


@pytest.mark.parametrize(
    ("file", "needle"),
    [
        (knowledge_pb2.SourceFile(name="faq.csv", content=b"\xff\xfe\x00bad"), "faq.csv"),
        (knowledge_pb2.SourceFile(name="faq.csv", content="标题,内容\na,b\n".encode()), "question"),
        (knowledge_pb2.SourceFile(name="notes.pdf", content=b"%PDF"), ".csv"),
    ],
)
def test_knowledge_upsert_bad_file(knowledge, file, needle) -> None:
    with pytest.raises(grpc.RpcError) as info:
        knowledge.Upsert(knowledge_pb2.UpsertRequest(tenant="shop", files=[file]))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert needle in info.value.details()


def test_knowledge_upsert_bad_document(knowledge) -> None:
    doc = knowledge_pb2.Document(doc_id="R1", kind="record", title="门店", fields_json="[1, 2")
    with pytest.raises(grpc.RpcError) as info:
        knowledge.Upsert(knowledge_pb2.UpsertRequest(tenant="shop", documents=[doc]))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "documents[0].fields_json" in info.value.details()


# Speech, health, reflection, telemetry


def test_synthesize_needs_audio_format(channel) -> None:
    stub = speech_pb2_grpc.SpeechStub(channel)
    with pytest.raises(grpc.RpcError) as info:
        list(stub.Synthesize(speech_pb2.SynthesizeRequest(text="你好"), timeout=10))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "audio" in info.value.details()


def test_health_serving(channel) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    for service in ("", "kefu.v1.Assistant", "kefu.v1.Knowledge"):
        reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_services(channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    reply = next(stub.ServerReflectionInfo(iter([request]), timeout=5))
    names = {s.name for s in reply.list_services_response.service}
    assert {"kefu.v1.Assistant", "kefu.v1.Knowledge", "kefu.v1.Speech"} <= names


def test_spans_carry_tenant_and_session(assistant, span_exporter) -> None:
    span_exporter.clear()
    ask(assistant, "运费怎么算", session_id="trace-me")
    spans = {s.name: s for s in span_exporter.get_finished_spans()}
    assert {"retrieval", "answer"} <= set(spans)
    for name in ("retrieval", "answer"):
        assert spans[name].attributes["kefu.tenant"] == "shop"
        assert spans[name].attributes["kefu.session_id"] == "trace-me"
    assert spans["answer"].attributes["kefu.engine"] == "extractive"


def test_concurrent_asks(assistant) -> None:
    errors = []

    def worker() -> None:
        try:
            for _ in range(5):
                assert "99元包邮" in ask(assistant, "运费怎么算").text
        except Exception as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
