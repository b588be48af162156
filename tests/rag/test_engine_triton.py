"""The Triton engine against a real Triton server from pytriton on 127.0.0.1.

The server streams scripted replies from Python models that declare the vLLM backend's
and the TensorRT-LLM ensemble's inputs and outputs (see triton_scripted_server.py).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest

from rag.generation import GenerationOptions
from rag.phrases import phrase
from server.errors import ConfigError, UnavailableError
from tests.rag.llm_helpers import HOURS_HIT, make_request, split_events
from tests.rag.triton_env import (
    ScriptedTritonServer,
    TritonUnavailable,
    ensure_triton_venv,
    free_ports,
)

pytest.importorskip("tritonclient.grpc", reason="tritonclient is missing: pip install -e '.[llm]'")

from rag.engine_triton import TritonEngine  # noqa: E402

OPTIONS = GenerationOptions(max_new_tokens=128, timeout_s=10, temperature=0.2, seed=7)


@pytest.fixture(scope="module")
def triton_server(tmp_path_factory) -> Iterator[ScriptedTritonServer]:
    try:
        python = ensure_triton_venv()
        server = ScriptedTritonServer(python, tmp_path_factory.mktemp("triton"))
        server.start()
    except TritonUnavailable as exc:
        pytest.skip(f"pytriton cannot run on this machine: {exc}")
    try:
        yield server
    finally:
        server.stop()


def last_request(server: ScriptedTritonServer, model: str) -> dict:
    rows = [json.loads(line) for line in server.request_log.read_text().splitlines()]
    return [row for row in rows if row["model"] == model][-1]


def vllm_engine(server: ScriptedTritonServer, **kwargs) -> TritonEngine:
    return TritonEngine(
        server.url, "qwen_vllm", backend="vllm", options=kwargs.pop("options", OPTIONS), **kwargs
    )


def test_vllm_streams_scripted_reply(triton_server) -> None:
    engine = vllm_engine(triton_server)
    texts, final = split_events(list(engine.stream(make_request())))
    assert final.text == "门店每天早上九点开门。"
    assert len(texts) >= 3, texts
    assert final.finish_reason == "complete"
    assert final.extra["stop_reason"] == "end_token"
    assert [c.doc_id for c in final.citations] == [HOURS_HIT.doc_id]
    assert final.engine == "triton"


def test_vllm_request_inputs(triton_server) -> None:
    engine = vllm_engine(triton_server)
    history = (("user", "你好"), ("assistant", "您好，请问有什么可以帮您？"))
    list(engine.stream(make_request(history=history)))
    sent = last_request(triton_server, "qwen_vllm")

    assert sent["stream"] == [True]
    assert sent["exclude_input_in_output"] == [True]
    sampling = json.loads(sent["sampling_parameters"][0])
    assert sampling["max_tokens"] == 128
    assert sampling["temperature"] == 0.2
    assert sampling["seed"] == 7
    assert sampling["stop"] == ["<|im_end|>", "<|endoftext|>"]
    prompt = sent["text_input"][0]
    assert prompt.startswith("<|im_start|>system\n")
    assert '<passage id="P1" title="营业时间">' in prompt
    assert "<|im_start|>assistant\n您好，请问有什么可以帮您？<|im_end|>" in prompt
    assert prompt.endswith("<|im_start|>assistant\n")


def test_deadline_mid_stream_is_length(triton_server) -> None:
    engine = vllm_engine(triton_server, options=GenerationOptions(timeout_s=1.0))
    started = time.monotonic()
    _, final = split_events(list(engine.stream(make_request("SLOW 几点开门"))))
    assert time.monotonic() - started < 2.5
    assert final.finish_reason == "length"
    assert final.extra["stop_reason"] == "time_limit"
    assert final.text.startswith("第0句。")


def test_deadline_before_text_is_error(triton_server) -> None:
    engine = vllm_engine(triton_server, options=GenerationOptions(timeout_s=0.5))
    _, final = split_events(list(engine.stream(make_request("HANG 几点开门"))))
    assert final.finish_reason == "error"
    assert "produced no text within 0.5 s" in final.extra["error"]
    assert triton_server.url in final.extra["error"]
    assert final.handoff_reason == "engine_error"


def test_cancel_stops_stream(triton_server) -> None:
    cancel = threading.Event()
    engine = vllm_engine(triton_server)
    events = []
    for event in engine.stream(make_request("LONG 介绍一下", cancel=cancel)):
        events.append(event)
        if len(events) == 3:
            cancel.set()
            cancelled_at = time.monotonic()
    _, final = split_events(events)
    assert time.monotonic() - cancelled_at < 1.0
    assert final.finish_reason == "cancelled"
    assert final.text.startswith("第0段第1段")
    assert "第39段" not in final.text

    _, after = split_events(list(engine.stream(make_request())))
    assert after.finish_reason == "complete"


def test_closing_generator_stops_stream(triton_server) -> None:
    engine = vllm_engine(triton_server)
    stream = engine.stream(make_request("LONG 介绍一下"))
    next(stream)
    stream.close()
    _, after = split_events(list(engine.stream(make_request())))
    assert after.text == "门店每天早上九点开门。"


def test_server_length_finish_reason(triton_server) -> None:
    engine = vllm_engine(triton_server)
    _, final = split_events(list(engine.stream(make_request("LONG 介绍一下"))))
    assert final.finish_reason == "length"
    assert final.extra["stop_reason"] == "max_new_tokens"
    assert final.text.endswith("第39段")


def test_no_answer_marker_is_fallback(triton_server) -> None:
    engine = vllm_engine(triton_server)
    _, final = split_events(list(engine.stream(make_request("NOANSWER 卖汽车吗"))))
    assert final.finish_reason == "fallback"
    assert final.handoff_reason == "no_answer_in_context"
    assert final.text == phrase("fallback", "zh-CN")


def test_tensorrtllm_ensemble_inputs(triton_server) -> None:
    engine = TritonEngine(
        triton_server.url, "ensemble", backend="tensorrtllm", options=OPTIONS, bad_words=("竞品",)
    )
    assert engine.batched
    _, final = split_events(list(engine.stream(make_request())))
    assert final.text == "门店每天早上九点开门。"

    sent = last_request(triton_server, "ensemble")
    assert sent["max_tokens"] == [128]
    assert sent["stream"] == [True]
    assert sent["stop_words"] == ["<|im_end|>,<|endoftext|>"]
    assert sent["bad_words"] == ["竞品"]
    assert sent["random_seed"] == [7]
    assert sent["temperature"] == [pytest.approx(0.2)]
    assert sent["text_input"][0].endswith("<|im_start|>assistant\n")


def test_wrong_backend_names_missing_inputs(triton_server) -> None:
    with pytest.raises(ConfigError, match="lacks the inputs max_tokens"):
        TritonEngine(triton_server.url, "qwen_vllm", backend="tensorrtllm")


def test_unknown_model_is_unavailable(triton_server) -> None:
    with pytest.raises(UnavailableError, match="'no_such_model'"):
        TritonEngine(triton_server.url, "no_such_model")


def test_unreachable_server_names_url() -> None:
    url = f"127.0.0.1:{free_ports(1)[0]}"
    with pytest.raises(UnavailableError) as caught:
        TritonEngine(url, "qwen_vllm", connect_timeout_s=2)
    assert url in str(caught.value)


def test_unknown_backend_rejected() -> None:
    with pytest.raises(ConfigError, match="accepted values are vllm, tensorrtllm"):
        TritonEngine("127.0.0.1:1", "qwen_vllm", backend="onnx")
