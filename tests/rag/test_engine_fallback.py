"""The fallback wrapper and the engine registry."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.answer import AnswerEvent, AnswerRequest, ExtractiveEngine, FinalAnswer, TextDelta
from rag.engine_fallback import FallbackEngine
from rag.engines import AnswerEngineConfig, create_answer_engine
from rag.phrases import phrase
from server.errors import ConfigError, UnavailableError
from tests.rag.llm_helpers import make_request, split_events


class ScriptedEngine:
    """An engine that plays a list of steps: text, "raise", "final", "error" or a delay."""

    name = "scripted"

    def __init__(self, steps: list) -> None:
        self.steps = steps
        self.cancelled = threading.Event()

    def stream(self, request: AnswerRequest) -> Iterator[AnswerEvent]:
        sent = ""
        for step in self.steps:
            if isinstance(step, float):
                if request.cancel is not None and request.cancel.wait(step):
                    self.cancelled.set()
                    yield _final(sent, "cancelled")
                    return
            elif step == "raise":
                raise UnavailableError("model server at 127.0.0.1:1 is unreachable")
            elif step in ("final", "error"):
                yield _final(sent, "complete" if step == "final" else "error")
                return
            else:
                sent += step
                yield TextDelta(step)


def _final(text: str, finish_reason: str) -> FinalAnswer:
    extra = {"error": "scripted failure"} if finish_reason == "error" else {}
    return FinalAnswer(
        text=text,
        citations=(),
        confidence=0.9,
        intent="faq",
        engine="scripted",
        finish_reason=finish_reason,
        extra=extra,
    )


class BackupEngine:
    name = "backup"

    def stream(self, request: AnswerRequest) -> Iterator[AnswerEvent]:
        yield TextDelta("备用答案")
        yield _final("备用答案", "complete")


def run(primary: ScriptedEngine, request: AnswerRequest | None = None, **kwargs):
    engine = FallbackEngine(primary, BackupEngine(), **kwargs)
    return split_events(list(engine.stream(request or make_request())))


def test_primary_answer_passes_through() -> None:
    texts, final = run(ScriptedEngine(["九点", "开门", "final"]))
    assert texts == ["九点", "开门"]
    assert final.engine == "scripted"
    assert final.finish_reason == "complete"


def test_raise_before_text_uses_backup(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="rag.engine_fallback"):
        texts, final = run(ScriptedEngine(["raise"]))
    assert texts == ["备用答案"]
    assert final.extra["primary_engine"] == "scripted"
    assert "127.0.0.1:1" in final.extra["primary_error"]
    assert "answering with the backup engine" in caplog.text


def test_error_final_before_text_uses_backup() -> None:
    texts, final = run(ScriptedEngine(["error"]))
    assert texts == ["备用答案"]
    assert final.extra["primary_error"] == "scripted failure"


def test_first_delta_timeout_uses_backup() -> None:
    primary = ScriptedEngine([5.0, "太迟了", "final"])
    started = time.monotonic()
    texts, final = run(primary, first_delta_timeout_s=0.3)
    assert time.monotonic() - started < 2
    assert texts == ["备用答案"]
    assert "no text within 0.3 s" in final.extra["primary_error"]
    assert primary.cancelled.wait(1), "the primary was not cancelled"


def test_failure_after_text_ends_with_error() -> None:
    texts, final = run(ScriptedEngine(["九点", "raise"]))
    apology = phrase("engine_error", "zh-CN")
    assert texts == ["九点", apology]
    assert final.finish_reason == "error"
    assert final.handoff_reason == "engine_error"
    assert final.engine == "scripted"


def test_caller_cancel_reaches_primary() -> None:
    cancel = threading.Event()
    primary = ScriptedEngine(["九点", 5.0, "final"])
    engine = FallbackEngine(primary, BackupEngine())
    events = []
    for event in engine.stream(make_request(cancel=cancel)):
        events.append(event)
        cancel.set()
    _, final = split_events(events)
    assert final.finish_reason == "cancelled"
    assert primary.cancelled.is_set()


def test_config_rejects_unknown_engine() -> None:
    with pytest.raises(ConfigError, match="answer_engine.name='gpt'"):
        AnswerEngineConfig(name="gpt")


@pytest.mark.parametrize(
    ("settings", "setting"),
    [
        ({"name": "transformers"}, "model_dir"),
        ({"name": "triton", "triton_model": "qwen"}, "triton_url"),
        ({"name": "triton", "triton_url": "127.0.0.1:8001"}, "triton_model"),
        (
            {
                "name": "triton",
                "triton_url": "127.0.0.1:8001",
                "triton_model": "q",
                "triton_backend": "x",
            },
            "triton_backend",
        ),
        ({"embedding_model": "bge"}, "embedding_model"),
        ({"confidence_threshold": 2.0}, "confidence_threshold"),
    ],
)
def test_config_names_bad_setting(settings: dict, setting: str) -> None:
    with pytest.raises(ConfigError, match=f"answer_engine.{setting}"):
        AnswerEngineConfig(**settings)


def test_registry_creates_extractive(tokenizer) -> None:
    engine = create_answer_engine(AnswerEngineConfig(), tokenizer=tokenizer)
    assert isinstance(engine, ExtractiveEngine)


def test_registry_creates_transformers(tiny_qwen_dir: Path, tokenizer) -> None:
    config = AnswerEngineConfig(name="transformers", model_dir=tiny_qwen_dir)
    engine = create_answer_engine(config, tokenizer=tokenizer)
    assert isinstance(engine, FallbackEngine)
    assert engine.name == "transformers"
    assert engine.primary.model_dir == tiny_qwen_dir


def test_registry_missing_model_folder(tmp_path: Path, tokenizer) -> None:
    config = AnswerEngineConfig(name="transformers", model_dir=tmp_path / "missing")
    with pytest.raises(ConfigError, match="pip install 'kefu\\[llm\\]'"):
        create_answer_engine(config, tokenizer=tokenizer)


def test_registry_unreachable_triton(tokenizer) -> None:
    pytest.importorskip(
        "tritonclient.grpc", reason="tritonclient is missing: pip install -e '.[llm]'"
    )
    from tests.rag.triton_env import free_ports

    url = f"127.0.0.1:{free_ports(1)[0]}"
    config = AnswerEngineConfig(name="triton", triton_url=url, triton_model="qwen_vllm")
    with pytest.raises(UnavailableError, match=url):
        create_answer_engine(config, tokenizer=tokenizer)
