"""The transformers engine on a tiny random Qwen2 model with scripted token streams.

A logits processor forces the tokens each test needs, so every stop case runs through
the real `generate` loop, streamer and stopping criteria.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from pathlib import Path

import pytest

from rag.generation import GenerationOptions
from rag.phrases import phrase
from server.errors import ConfigError
from tests.rag.llm_helpers import HOURS_HIT, make_request, split_events

pytest.importorskip("torch", reason="torch is missing: pip install -e '.[llm]'")
pytest.importorskip("transformers", reason="transformers is missing: pip install -e '.[llm]'")

import torch  # noqa: E402
from transformers import LogitsProcessor  # noqa: E402

from rag.engine_transformers import TransformersEngine  # noqa: E402

REPLY = "门店每天早上九点开门[P1]。"
GREEDY = GenerationOptions(temperature=0, max_new_tokens=64, timeout_s=20)


class ScriptedTokens(LogitsProcessor):
    """Forces the token ids of `script` one per step; after the script, repeats its last id.

    Args:
        delay_s: sleep per step, to make generation slow.
        fail_at: raise RuntimeError at this step.
    """

    def __init__(self, script: list[int], delay_s: float = 0.0, fail_at: int | None = None):
        self.script = script
        self.delay_s = delay_s
        self.fail_at = fail_at
        self.prompt_tokens: int | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.prompt_tokens is None:
            self.prompt_tokens = input_ids.shape[1]
        step = input_ids.shape[1] - self.prompt_tokens
        if step == self.fail_at:
            raise RuntimeError("scripted failure")
        if self.delay_s:
            time.sleep(self.delay_s)
        forced = self.script[min(step, len(self.script) - 1)]
        scores = torch.full_like(scores, float("-inf"))
        scores[:, forced] = 0.0
        return scores


@pytest.fixture(scope="module")
def base_engine(tiny_qwen_dir: Path) -> TransformersEngine:
    return TransformersEngine(tiny_qwen_dir, options=GREEDY)


def scripted_engine(base: TransformersEngine, script: list[int], **kwargs) -> TransformersEngine:
    """Return a copy of `base` sharing its model whose tokens follow `script`."""
    options = kwargs.pop("options", GREEDY)
    engine = object.__new__(TransformersEngine)
    engine.__dict__.update(base.__dict__)
    engine.options = options
    engine.logits_processors = lambda: [ScriptedTokens(script, **kwargs)]
    return engine


def token_ids(engine: TransformersEngine, text: str, end: str = "<|im_end|>") -> list[int]:
    ids = engine.tokenizer.encode(text, add_special_tokens=False)
    return ids + ([engine.tokenizer.convert_tokens_to_ids(end)] if end else [])


def generate_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "kefu-llm-generate" and t.is_alive()]


def test_engine_loads_stop_ids(tiny_qwen_dir: Path, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="rag.engine_transformers"):
        engine = TransformersEngine(tiny_qwen_dir, options=GREEDY)
    assert engine.stop_token_ids == (151645, 151643)
    assert "stop token ids (151645, 151643)" in caplog.text


def test_random_model_streams_protocol(base_engine: TransformersEngine) -> None:
    engine = scripted_engine(base_engine, [], options=GenerationOptions(max_new_tokens=6))
    engine.logits_processors = None
    texts, final = split_events(list(engine.stream(make_request())))
    assert final.engine == "transformers"
    assert final.finish_reason in ("complete", "length")


@pytest.mark.parametrize("end_token", ["<|im_end|>", "<|endoftext|>"])
def test_stops_on_end_token(base_engine: TransformersEngine, end_token: str) -> None:
    script = token_ids(base_engine, REPLY, end=end_token) + token_ids(base_engine, "多余的话")
    engine = scripted_engine(base_engine, script)
    texts, final = split_events(list(engine.stream(make_request())))
    assert final.text == "门店每天早上九点开门。"
    assert final.finish_reason == "complete"
    assert final.extra["stop_reason"] == "end_token"
    assert [c.doc_id for c in final.citations] == [HOURS_HIT.doc_id]
    assert final.intent == "门店"
    assert len(texts) > 1, "the answer arrived in one piece, not streamed"


def test_token_cap_ends_with_length(base_engine: TransformersEngine) -> None:
    script = token_ids(base_engine, "一二三四五六七八九十" * 3)
    options = GenerationOptions(temperature=0, max_new_tokens=5, timeout_s=20)
    engine = scripted_engine(base_engine, script, options=options)
    _, final = split_events(list(engine.stream(make_request())))
    assert final.finish_reason == "length"
    assert final.extra["stop_reason"] == "max_new_tokens"
    assert 0 < len(final.text) <= 10


def test_time_cap_ends_with_length(base_engine: TransformersEngine) -> None:
    script = token_ids(base_engine, "一二三四五六七八九十" * 5)
    # The whole script takes 5 s at 0.1 s per token, so the answer stops well before it.
    options = GenerationOptions(temperature=0, max_new_tokens=200, timeout_s=1.5)
    engine = scripted_engine(base_engine, script, options=options, delay_s=0.1)
    started = time.monotonic()
    _, final = split_events(list(engine.stream(make_request())))
    assert time.monotonic() - started < 4
    assert final.finish_reason == "length"
    assert final.extra["stop_reason"] == "time_limit"
    assert final.text


def test_time_cap_before_text_is_error(base_engine: TransformersEngine) -> None:
    options = GenerationOptions(temperature=0, max_new_tokens=20, timeout_s=0.3)
    engine = scripted_engine(
        base_engine, token_ids(base_engine, REPLY), options=options, delay_s=1.0
    )
    _, final = split_events(list(engine.stream(make_request())))
    assert final.finish_reason == "error"
    assert "no text within 0.3 s" in final.extra["error"]
    assert final.handoff_reason == "engine_error"


def test_repetition_guard_stops_loop(base_engine: TransformersEngine) -> None:
    script = token_ids(base_engine, "好的，" * 40)
    engine = scripted_engine(base_engine, script)
    _, final = split_events(list(engine.stream(make_request())))
    assert final.finish_reason == "length"
    assert final.extra["stop_reason"] == "repetition"
    assert len(final.text) < len("好的，" * 40)


def test_cancel_event_mid_stream(base_engine: TransformersEngine) -> None:
    cancel = threading.Event()
    script = token_ids(base_engine, "一二三四五六七八九十" * 5)
    engine = scripted_engine(base_engine, script, delay_s=0.02)
    events = []
    for event in engine.stream(make_request(cancel=cancel)):
        events.append(event)
        if len(events) == 2:
            cancel.set()
    texts, final = split_events(events)
    assert final.finish_reason == "cancelled"
    assert final.extra["stop_reason"] == "cancelled"
    assert len(final.text) < 20
    assert not generate_threads()


def test_closing_generator_joins_thread(base_engine: TransformersEngine) -> None:
    script = token_ids(base_engine, "一二三四五六七八九十" * 10)
    engine = scripted_engine(base_engine, script, delay_s=0.02)
    stream = engine.stream(make_request())
    next(stream)
    assert generate_threads()
    stream.close()
    assert not generate_threads()


def test_no_answer_marker_is_fallback(base_engine: TransformersEngine) -> None:
    script = token_ids(base_engine, "[NO_ANSWER]") + token_ids(base_engine, "不该出现的文字")
    engine = scripted_engine(base_engine, script)
    _, final = split_events(list(engine.stream(make_request("你们卖汽车吗？"))))
    assert final.finish_reason == "fallback"
    assert final.handoff_reason == "no_answer_in_context"
    assert final.text == phrase("fallback", "zh-CN")
    assert final.citations == ()


def test_no_hits_skips_model(base_engine: TransformersEngine) -> None:
    engine = scripted_engine(base_engine, [0], fail_at=0)
    _, final = split_events(list(engine.stream(make_request(hits=()))))
    assert final.finish_reason == "fallback"
    assert final.extra["stop_reason"] == "no_passages"


def test_generation_failure_ends_with_error(base_engine: TransformersEngine) -> None:
    engine = scripted_engine(base_engine, token_ids(base_engine, REPLY), fail_at=3)
    _, final = split_events(list(engine.stream(make_request())))
    assert final.finish_reason == "error"
    assert "scripted failure" in final.extra["error"]
    assert not generate_threads()


def test_lora_adapter_changes_logits(tiny_qwen_dir: Path, tiny_lora_dir: Path, base_engine) -> None:
    from peft import PeftModel

    engine = TransformersEngine(tiny_qwen_dir, adapter_dir=tiny_lora_dir, options=GREEDY)
    assert isinstance(engine.model, PeftModel)
    ids = torch.tensor([token_ids(base_engine, "你好", end="")])
    with torch.inference_mode():
        adapted = engine.model(input_ids=ids).logits
        base = base_engine.model(input_ids=ids).logits
    assert not torch.allclose(adapted, base)

    scripted = scripted_engine(engine, token_ids(engine, REPLY))
    _, final = split_events(list(scripted.stream(make_request())))
    assert final.text == "门店每天早上九点开门。"


def test_missing_model_folder(tmp_path: Path) -> None:
    missing = tmp_path / "qwen2.5-0.5b-instruct"
    with pytest.raises(ConfigError) as caught:
        TransformersEngine(missing)
    assert str(missing) in str(caught.value)
    assert "pip install 'kefu[llm]'" in str(caught.value)


def test_missing_adapter_folder(tiny_qwen_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="adapter_dir .* is not a folder"):
        TransformersEngine(tiny_qwen_dir, adapter_dir=tmp_path / "no-adapter")


def test_folder_without_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="has no config.json"):
        TransformersEngine(tmp_path)


def test_missing_package_names_install(monkeypatch, tiny_qwen_dir: Path) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ConfigError, match=r"pip install 'kefu\[llm\]'"):
        TransformersEngine(tiny_qwen_dir)


def test_hub_is_offline() -> None:
    from huggingface_hub import constants

    assert constants.HF_HUB_OFFLINE
