"""Answer engine that streams from a Qwen chat model served by Triton Inference Server.

Two deployments are supported, by the input names their models declare:

- `vllm`: the vLLM backend's model. Inputs text_input, stream, sampling_parameters (a
  JSON object of vLLM sampling parameters) and exclude_input_in_output; output
  text_output, one delta per streamed response.
- `tensorrtllm`: the TensorRT-LLM backend's `ensemble` model. Inputs text_input,
  max_tokens, bad_words, stop_words, stream and optional sampling inputs (temperature,
  top_p, top_k, repetition_penalty, random_seed); output text_output.

The engine renders the prompt as ChatML text itself, because both backends take raw
text. It reads the model's declared inputs at start-up, sends optional inputs only when
the model declares them, and uses the declared data types. Each answer opens its own
gRPC stream, since one `InferenceServerClient` carries one stream at a time.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import queue
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from rag.answer import AnswerEvent, AnswerRequest
from rag.generation import ConfidenceScorer, GenerationOptions, ReplyStream, no_passages_answer
from rag.prompting import build_prompt, render_chatml
from server.errors import ConfigError, UnavailableError

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'kefu[llm]'"
BACKENDS: tuple[str, ...] = ("vllm", "tensorrtllm")
# Inputs each deployment must declare; the rest are optional.
REQUIRED_INPUTS = {
    "vllm": ("text_input", "stream", "sampling_parameters"),
    "tensorrtllm": ("text_input", "max_tokens", "stream"),
}
OUTPUT_NAME = "text_output"
# How often the consumer wakes up to check cancellation and the deadline while it waits
# for the next response.
POLL_INTERVAL_S = 0.05
# The gRPC stream itself ends this long after the answer's own deadline, in case the
# client-side stop never reaches the server.
STREAM_DEADLINE_SLACK_S = 5.0


@dataclass
class _StreamState:
    """How one streamed answer ended, set by the response loop."""

    stop_reason: str = ""
    error: str = ""
    finished: bool = False
    # The vLLM backend's finish_reason output (stop, length …) of the latest response.
    server_finish_reason: str = ""
    raw_text: str = field(default="", repr=False)


class TritonEngine:
    """Streams answers from a chat model on Triton over gRPC."""

    name = "triton"

    def __init__(
        self,
        url: str,
        model_name: str,
        *,
        backend: str = "vllm",
        options: GenerationOptions | None = None,
        bad_words: tuple[str, ...] = (),
        connect_timeout_s: float = 5.0,
        confidence: ConfidenceScorer | None = None,
    ) -> None:
        """Connect to the server and read the model's inputs.

        Args:
            url: the server's gRPC address, `host:port`.
            model_name: the model to call (for TensorRT-LLM usually `ensemble`).
            backend: `vllm` or `tensorrtllm`, the input names the model declares.
            options: sampling settings and limits; the defaults of GenerationOptions.
            bad_words: words the TensorRT-LLM model must never generate.
            connect_timeout_s: time allowed for the start-up checks, in seconds.
            confidence: scores retrieval results for FinalAnswer.confidence.

        Raises:
            ConfigError: tritonclient is missing, the backend is unknown, or the model
                lacks an input that the backend needs.
            UnavailableError: the server cannot be reached or the model is not ready.
        """
        self.grpcclient, self.triton_utils = _import_packages()
        if backend not in BACKENDS:
            raise ConfigError(
                f"triton backend {backend!r} is unknown: accepted values are {', '.join(BACKENDS)}"
            )
        self.url = url
        self.model_name = model_name
        self.backend = backend
        self.options = options or GenerationOptions()
        self.bad_words = tuple(bad_words)
        self.connect_timeout_s = connect_timeout_s
        self.confidence = confidence
        self.input_types, self.batched = self._read_model_inputs()
        logger.info(
            "triton engine: model %s (%s backend) at %s, inputs %s",
            model_name, backend, url, ", ".join(sorted(self.input_types)),
        )  # fmt: skip

    def _read_model_inputs(self) -> tuple[dict[str, str], bool]:
        """Return the model's input data types by name, and whether it takes a batch dim."""
        exception_type = self.triton_utils.InferenceServerException
        client = self.grpcclient.InferenceServerClient(self.url)
        timeout = self.connect_timeout_s
        try:
            client.is_server_live(client_timeout=timeout)
            if not client.is_model_ready(self.model_name, client_timeout=timeout):
                raise UnavailableError(
                    f"model {self.model_name!r} is not ready on the Triton server at {self.url}: "
                    "check that the server loaded it"
                )
            metadata = client.get_model_metadata(
                self.model_name, as_json=True, client_timeout=timeout
            )
            config = client.get_model_config(self.model_name, as_json=True, client_timeout=timeout)
        except exception_type as exc:
            raise UnavailableError(
                f"the Triton server at {self.url} is unreachable or failed: {exc.message()}"
            ) from exc
        finally:
            client.close()

        input_types = {item["name"]: item["datatype"] for item in metadata.get("inputs", [])}
        missing = [name for name in REQUIRED_INPUTS[self.backend] if name not in input_types]
        if missing:
            raise ConfigError(
                f"model {self.model_name!r} at {self.url} lacks the inputs {', '.join(missing)} "
                f"of the {self.backend} backend; it declares {', '.join(sorted(input_types))}. "
                f"Set the backend to the one the model was deployed with ({', '.join(BACKENDS)})."
            )
        batched = int(config.get("config", {}).get("max_batch_size", 0)) > 0
        return input_types, batched

    def stream(self, request: AnswerRequest) -> Iterator[AnswerEvent]:
        """Stream one answer: TextDelta events, then one FinalAnswer.

        Cancelling the request or closing the generator stops the gRPC stream and
        cancels the request on the server.

        Raises:
            UnavailableError: the server cannot be reached before any text arrived.
        """
        if not request.retrieval.hits:
            yield from no_passages_answer(request, self.name)
            return

        prompt = build_prompt(request)
        reply = ReplyStream(request, prompt, self.name, self.confidence)
        state = _StreamState()
        responses: queue.Queue = queue.Queue()
        request_id = uuid.uuid4().hex[:12]
        client = self.grpcclient.InferenceServerClient(self.url)
        try:
            client.start_stream(
                callback=lambda result, error: responses.put((result, error)),
                stream_timeout=self.options.timeout_s + STREAM_DEADLINE_SLACK_S,
            )
            client.async_stream_infer(
                self.model_name,
                self._inputs(render_chatml(prompt.messages)),
                request_id=request_id,
                enable_empty_final_response=True,
            )
            logger.debug("triton request %s started", request_id)
            for raw in self._pieces(responses, request, state, reply):
                delta = reply.feed(raw)
                if delta:
                    yield delta
                if reply.no_answer:
                    state.stop_reason = "no_answer"
                    break
        finally:
            # Stopping with cancel_requests tells the server to drop the request, so
            # barge-in and hang-up free the model instead of finishing a reply nobody hears.
            client.stop_stream(cancel_requests=not state.finished)
            client.close()

        yield from self._finish(reply, state, request_id)

    def _pieces(
        self,
        responses: queue.Queue,
        request: AnswerRequest,
        state: _StreamState,
        reply: ReplyStream,
    ) -> Iterator[str]:
        """Yield streamed text until the final response, a stop condition or an error."""
        deadline = time.monotonic() + self.options.timeout_s
        guard = self.options.repetition_guard()
        while True:
            if request.cancel is not None and request.cancel.is_set():
                state.stop_reason = "cancelled"
                return
            remaining_s = deadline - time.monotonic()
            if remaining_s <= 0:
                state.stop_reason = "time_limit"
                return
            try:
                result, error = responses.get(timeout=min(POLL_INTERVAL_S, remaining_s))
            except queue.Empty:
                continue
            if error is not None:
                self._record_error(error, state, reply)
                return

            text = _output_text(result)
            state.server_finish_reason = _finish_reason_output(result) or state.server_finish_reason
            if text:
                state.raw_text += text
                yield text
            if _is_final(result):
                state.finished = True
                length = state.server_finish_reason == "length"
                state.stop_reason = "max_new_tokens" if length else "end_token"
                return
            if guard.is_looping(state.raw_text):
                state.stop_reason = "repetition"
                return

    def _record_error(self, error: Any, state: _StreamState, reply: ReplyStream) -> None:
        status = str(error.status() or "")
        message = error.message() or status or type(error).__name__
        if "UNAVAILABLE" in status and not reply.sent_text:
            raise UnavailableError(f"the Triton server at {self.url} is unreachable: {message}")
        state.finished = True
        state.error = f"Triton model {self.model_name!r} at {self.url} failed: {message}"
        logger.warning("triton engine: %s", state.error)

    def _finish(
        self, reply: ReplyStream, state: _StreamState, request_id: str
    ) -> Iterator[AnswerEvent]:
        logger.debug("triton request %s ended: %s", request_id, state.stop_reason or state.error)
        if state.error:
            yield from reply.finish("error", error=state.error)
            return
        if state.stop_reason == "time_limit" and not reply.sent_text:
            message = (
                f"Triton model {self.model_name!r} at {self.url} produced no text within "
                f"{self.options.timeout_s} s"
            )
            logger.warning("triton engine: %s", message)
            yield from reply.finish("error", stop_reason="time_limit", error=message)
            return
        finish_reason = {
            "time_limit": "length",
            "repetition": "length",
            "max_new_tokens": "length",
            "cancelled": "cancelled",
        }.get(state.stop_reason, "complete")
        yield from reply.finish(finish_reason, stop_reason=state.stop_reason)

    # request tensors

    def _inputs(self, prompt_text: str) -> list[Any]:
        if self.backend == "vllm":
            values = self._vllm_values(prompt_text)
        else:
            values = self._tensorrtllm_values(prompt_text)
        return [
            self._tensor(name, value) for name, value in values.items() if name in self.input_types
        ]

    def _vllm_values(self, prompt_text: str) -> dict[str, Any]:
        options = self.options
        sampling: dict[str, Any] = {
            "max_tokens": options.max_new_tokens,
            "temperature": options.temperature,
            "top_p": options.top_p,
            "repetition_penalty": options.repetition_penalty,
            "stop": list(options.stop_words),
        }
        if options.top_k > 0:
            sampling["top_k"] = options.top_k
        if options.seed is not None:
            sampling["seed"] = options.seed
        return {
            "text_input": [prompt_text],
            "stream": [True],
            "sampling_parameters": [json.dumps(sampling)],
            "exclude_input_in_output": [True],
            "return_finish_reason": [True],
        }

    def _tensorrtllm_values(self, prompt_text: str) -> dict[str, Any]:
        options = self.options
        values: dict[str, Any] = {
            "text_input": [prompt_text],
            "max_tokens": [options.max_new_tokens],
            "stream": [True],
            "exclude_input_in_output": [True],
            "temperature": [options.temperature],
            "top_p": [options.top_p],
            "repetition_penalty": [options.repetition_penalty],
        }
        if options.top_k > 0:
            values["top_k"] = [options.top_k]
        if options.seed is not None:
            values["random_seed"] = [options.seed]
        if options.stop_words:
            values["stop_words"] = [_csv_line(options.stop_words)]
        if self.bad_words:
            values["bad_words"] = [_csv_line(self.bad_words)]
        return values

    def _tensor(self, name: str, value: list[Any]) -> Any:
        """Build one input with the model's declared data type, batch dim included."""
        import numpy as np

        datatype = self.input_types[name]
        if datatype == "BYTES":
            array = np.array([str(item).encode("utf-8") for item in value], dtype=np.object_)
        else:
            array = np.array(value, dtype=self.triton_utils.triton_to_np_dtype(datatype))
        if self.batched:
            array = array.reshape(1, -1)
        tensor = self.grpcclient.InferInput(name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array)
        return tensor


def _csv_line(words: tuple[str, ...]) -> str:
    """Join words as one CSV line, the form TensorRT-LLM's preprocessing model splits."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(words)
    return buffer.getvalue()


def _output_text(result: Any) -> str:
    output = result.as_numpy(OUTPUT_NAME)
    if output is None:
        return ""
    pieces = output.reshape(-1)
    return "".join(
        piece.decode("utf-8", errors="replace") if isinstance(piece, bytes) else str(piece)
        for piece in pieces
    )


def _is_final(result: Any) -> bool:
    parameter = result.get_response().parameters.get("triton_final_response")
    return bool(parameter and parameter.bool_param)


def _finish_reason_output(result: Any) -> str:
    """Return the vLLM backend's finish_reason output, or empty when the response has none."""
    output = result.as_numpy("finish_reason")
    if output is None or not output.size:
        return ""
    value = output.reshape(-1)[0]
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def _import_packages() -> tuple[Any, Any]:
    try:
        import tritonclient.grpc as grpcclient
        import tritonclient.utils as triton_utils
    except ImportError as exc:
        raise ConfigError(
            f"the triton answer engine needs tritonclient[grpc] ({exc.name} is missing): "
            f"{INSTALL_HINT}"
        ) from exc
    return grpcclient, triton_utils
