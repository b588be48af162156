"""Answer engine that runs a Qwen2/Qwen2.5 instruct model locally with `transformers`.

The model and an optional LoRA adapter load from local folders, never from a hub. Each
answer generates in a worker thread that feeds a `TextIteratorStreamer`; the caller's
thread turns the streamed text into TextDelta events. One StoppingCriteria ends the
generation on a Qwen end token, the token cap, the time cap, a repetition loop, the
NO_ANSWER marker or cancellation, and records which of them it was.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from rag.answer import AnswerEvent, AnswerRequest
from rag.generation import (
    QWEN_STOP_TOKENS,
    ConfidenceScorer,
    GenerationOptions,
    ReplyStream,
    no_passages_answer,
)
from rag.prompting import ChatPrompt, build_prompt, render_chatml
from server.errors import ConfigError

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'kefu[llm]'"
# How often the consumer wakes up to check cancellation and the deadline while it waits
# for the next piece of text.
POLL_INTERVAL_S = 0.05

# Stop reasons recorded by the stopping criteria, and the finish_reason each becomes.
_FINISH_REASON = {
    "end_token": "complete",
    "no_answer": "complete",
    "end_of_generation": "complete",
    "max_new_tokens": "length",
    "time_limit": "length",
    "repetition": "length",
    "cancelled": "cancelled",
}


class TransformersEngine:
    """Streams answers from a local Qwen chat model, optionally with a LoRA adapter."""

    name = "transformers"

    def __init__(
        self,
        model_dir: Path | str,
        *,
        adapter_dir: Path | str | None = None,
        options: GenerationOptions | None = None,
        device: str = "cpu",
        dtype: str = "auto",
        confidence: ConfidenceScorer | None = None,
        logits_processors: Callable[[], Sequence[Any]] | None = None,
    ) -> None:
        """Load the tokenizer, the model and the adapter.

        Args:
            model_dir: folder of a Qwen2/Qwen2.5 instruct model in Hugging Face format.
            adapter_dir: folder of a peft LoRA adapter trained on that model.
            options: sampling settings and limits; the defaults of GenerationOptions.
            device: torch device, such as `cpu` or `cuda:0`.
            dtype: torch dtype name of the weights; `auto` keeps the saved dtype.
            confidence: scores retrieval results for FinalAnswer.confidence.
            logits_processors: builds extra logits processors for each answer, for
                constrained decoding; tests use it to script the generated tokens.

        Raises:
            ConfigError: transformers, torch or peft is missing, a folder is missing or
                not a model/adapter folder, or the tokenizer lacks the Qwen end tokens.
        """
        self.torch, self.transformers = _import_packages()
        self.model_dir = _require_folder(Path(model_dir), "config.json", "model_dir")
        self.adapter_dir = (
            _require_folder(Path(adapter_dir), "adapter_config.json", "adapter_dir")
            if adapter_dir is not None
            else None
        )
        self.options = options or GenerationOptions()
        self.device = device
        self.confidence = confidence
        self.logits_processors = logits_processors

        self.tokenizer = self.transformers.AutoTokenizer.from_pretrained(
            str(self.model_dir), local_files_only=True
        )
        self.stop_token_ids = _stop_token_ids(self.tokenizer, self.model_dir)
        self.model = self._load_model(dtype)
        logger.info(
            "transformers engine: model %s, adapter %s, device %s, stop token ids %s",
            self.model_dir, self.adapter_dir or "none", device, self.stop_token_ids,
        )  # fmt: skip

    def _load_model(self, dtype: str) -> Any:
        model = self.transformers.AutoModelForCausalLM.from_pretrained(
            str(self.model_dir), local_files_only=True, dtype=dtype
        )
        if self.adapter_dir is not None:
            try:
                from peft import PeftModel
            except ImportError as exc:
                raise ConfigError(
                    f"adapter_dir {self.adapter_dir} needs the peft package: {INSTALL_HINT}"
                ) from exc
            model = PeftModel.from_pretrained(model, str(self.adapter_dir))
        return model.to(self.device).eval()

    def stream(self, request: AnswerRequest) -> Iterator[AnswerEvent]:
        """Stream one answer: TextDelta events, then one FinalAnswer.

        Closing the generator early stops the generation and joins its thread.
        """
        if not request.retrieval.hits:
            yield from no_passages_answer(request, self.name)
            return

        prompt = build_prompt(request)
        reply = ReplyStream(request, prompt, self.name, self.confidence)
        control = _GenerationControl(
            self.torch,
            options=self.options,
            stop_token_ids=self.stop_token_ids,
            cancel=request.cancel,
        )
        streamer = self.transformers.TextIteratorStreamer(
            self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=POLL_INTERVAL_S
        )
        worker = threading.Thread(
            target=self._generate,
            args=(self._encode(prompt), streamer, control),
            name="kefu-llm-generate",
            daemon=True,
        )
        worker.start()
        try:
            for raw in _pieces(streamer, control):
                delta = reply.feed(raw)
                if delta:
                    yield delta
                if reply.no_answer:
                    control.request_stop("no_answer")
        finally:
            control.request_stop("cancelled")
            worker.join()

        yield from _finish(reply, control)

    def _encode(self, prompt: ChatPrompt) -> Any:
        if self.tokenizer.chat_template:
            # enable_thinking only matters to Qwen3 templates; older templates ignore it.
            text = self.tokenizer.apply_chat_template(
                prompt.as_dicts(), tokenize=False, add_generation_prompt=True, enable_thinking=False
            )
        else:
            text = render_chatml(prompt.messages)
        encoded = self.tokenizer(text, return_tensors="pt", add_special_tokens=False)
        return encoded["input_ids"].to(self.model.device)

    def _generate(self, input_ids: Any, streamer: Any, control: _GenerationControl) -> None:
        """Run `generate` in the worker thread; a failure is stored in `control.error`."""
        options = self.options
        sampling = options.temperature > 0
        kwargs: dict[str, Any] = {
            "max_new_tokens": options.max_new_tokens,
            "do_sample": sampling,
            "repetition_penalty": options.repetition_penalty,
            "eos_token_id": list(self.stop_token_ids),
            "pad_token_id": self.tokenizer.pad_token_id or self.stop_token_ids[-1],
            "stopping_criteria": self.transformers.StoppingCriteriaList([control.criteria]),
            "streamer": streamer,
        }
        if sampling:
            kwargs.update(temperature=options.temperature, top_p=options.top_p, top_k=options.top_k)
        if self.logits_processors is not None:
            kwargs["logits_processor"] = self.transformers.LogitsProcessorList(
                list(self.logits_processors())
            )
        try:
            control.prompt_tokens = int(input_ids.shape[-1])
            if sampling and options.seed is not None:
                # NOTE: the seed sets torch's global generator, so seeded answers are
                # reproducible only while one answer generates at a time.
                self.torch.manual_seed(options.seed)
            with self.torch.inference_mode():
                self.model.generate(
                    input_ids=input_ids,
                    attention_mask=self.torch.ones_like(input_ids),
                    **kwargs,
                )
        except Exception as exc:  # noqa: BLE001 - any failure must end the answer, not hang it
            logger.exception("transformers engine: generation failed")
            control.error = f"{type(exc).__name__}: {exc}"
            streamer.end()


class _GenerationControl:
    """Shared state of one generation: why it stopped, set by either thread."""

    def __init__(
        self,
        torch: Any,
        *,
        options: GenerationOptions,
        stop_token_ids: tuple[int, ...],
        cancel: threading.Event | None,
    ) -> None:
        self.torch = torch
        self.options = options
        self.stop_token_ids = frozenset(stop_token_ids)
        self.cancel = cancel
        self.guard = options.repetition_guard()
        self.deadline = time.monotonic() + options.timeout_s
        self.prompt_tokens = 0
        self.stop_reason = ""
        self.error = ""
        self._lock = threading.Lock()

    def request_stop(self, reason: str) -> None:
        """Record `reason` unless a stop reason is already recorded."""
        with self._lock:
            if not self.stop_reason:
                self.stop_reason = reason

    def check(self, generated: Sequence[int] = ()) -> bool:
        """Return True when generation must stop, recording why."""
        if self.cancel is not None and self.cancel.is_set():
            self.request_stop("cancelled")
        elif time.monotonic() >= self.deadline:
            self.request_stop("time_limit")
        elif generated and generated[-1] in self.stop_token_ids:
            self.request_stop("end_token")
        elif len(generated) >= self.options.max_new_tokens:
            self.request_stop("max_new_tokens")
        elif generated and self.guard.is_looping(generated):
            self.request_stop("repetition")
        return bool(self.stop_reason)

    def criteria(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        """Return the StoppingCriteria verdict as a bool tensor of shape (batch,)."""
        generated = input_ids[0, self.prompt_tokens :].tolist()
        stop = self.check(generated)
        return self.torch.full((input_ids.shape[0],), stop, dtype=self.torch.bool)


def _pieces(streamer: Any, control: _GenerationControl) -> Iterator[str]:
    """Yield streamed text until generation ends, is cancelled or passes its deadline."""
    while True:
        if control.check() and control.stop_reason in ("cancelled", "time_limit"):
            return
        try:
            yield next(streamer)
        except queue.Empty:
            continue
        except StopIteration:
            return


def _finish(reply: ReplyStream, control: _GenerationControl) -> Iterator[AnswerEvent]:
    if control.error:
        yield from reply.finish("error", error=control.error)
        return
    stop_reason = control.stop_reason or "end_of_generation"
    if stop_reason == "time_limit" and not reply.sent_text:
        message = f"the model produced no text within {control.options.timeout_s} s"
        yield from reply.finish("error", stop_reason=stop_reason, error=message)
        return
    yield from reply.finish(_FINISH_REASON[stop_reason], stop_reason=stop_reason)


def _import_packages() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise ConfigError(
            f"the transformers answer engine needs torch and transformers ({exc.name} is "
            f"missing): {INSTALL_HINT}"
        ) from exc
    return torch, transformers


def _require_folder(path: Path, marker: str, setting: str) -> Path:
    if not path.is_dir():
        raise ConfigError(
            f"{setting} {path} is not a folder: download the model there "
            f"(for example with `modelscope download`) and install {INSTALL_HINT}"
        )
    if not (path / marker).is_file():
        raise ConfigError(f"{setting} {path} has no {marker}: point it at a saved model folder")
    return path


def _stop_token_ids(tokenizer: Any, model_dir: Path) -> tuple[int, ...]:
    """Resolve the ids of both Qwen end tokens from the tokenizer."""
    ids = []
    for token in QWEN_STOP_TOKENS:
        token_id = tokenizer.convert_tokens_to_ids(token)
        # Unknown tokens map to None or to the unk id, whose token differs; Qwen2's unk
        # token is <|endoftext|> itself, so comparing ids with unk_token_id is not enough.
        if token_id is None or tokenizer.convert_ids_to_tokens(token_id) != token:
            raise ConfigError(
                f"the tokenizer in {model_dir} has no {token} token: kefu expects a Qwen "
                "chat model (Qwen2, Qwen2.5 or Qwen3)"
            )
        ids.append(int(token_id))
    return tuple(ids)
