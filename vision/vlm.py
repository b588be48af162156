"""VLM engines: a Qwen-VL model answers a question about a photo with retrieved context.

Two backends stream the same events as the text answer engines (TextDelta pieces, then one
FinalAnswer):

- `TritonVlmEngine`: a Qwen-VL model on Triton over gRPC streaming. The model takes the
  ChatML prompt in `text_input` and the photo as base64 JPEG in `image` (BYTES), and sends
  text deltas in `text_output`, like the vLLM backend's multimodal deployment.
- `TransformersVlmEngine`: a Qwen2-VL model folder loaded with transformers on first use.

Neither is configured by default; the server matches photos with `vision.matching`.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from rag.answer import AnswerEvent, FinalAnswer, TextDelta
from rag.generation import GenerationOptions
from rag.prompting import ChatMessage, escape_xml, neutralize_control_tokens, render_chatml
from server.errors import ConfigError, InvalidArgumentError, UnavailableError

if TYPE_CHECKING:
    from PIL import Image

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'kefu[llm,vision]'"
LOCALES: tuple[str, ...] = ("zh-CN", "en-US")
# Qwen2-VL's placeholder for one image inside a ChatML message.
QWEN_VL_IMAGE = "<|vision_start|><|image_pad|><|vision_end|>"
TEXT_INPUT = "text_input"
IMAGE_INPUT = "image"
OUTPUT_NAME = "text_output"
# The photo is sent at most this many pixels on its long side, as JPEG of this quality.
MAX_IMAGE_SIDE_PX = 1280
JPEG_QUALITY = 90
# Characters of one context passage kept in the prompt.
PASSAGE_CHARS = 600
POLL_INTERVAL_S = 0.05
STREAM_DEADLINE_SLACK_S = 5.0

_SYSTEM = {
    "zh-CN": "你是商店的客服助手。根据顾客发来的图片和下面的资料，用简体中文简洁地回答。"
    "资料里没有的信息不要编造。",
    "en-US": "You are the shop's customer-service assistant. Answer briefly from the "
    "customer's photo and the documents below. Do not invent facts the documents lack.",
}
_QUESTION_LABEL = {"zh-CN": "问题：", "en-US": "Question: "}


@dataclass(frozen=True)
class VlmRequest:
    """A question about a photo, with the knowledge retrieved for it.

    Attributes:
        question: the customer's question, normalized.
        image: the customer's photo, RGB (see `vision.intake.load_image`).
        context_passages: texts of the retrieved passages or matched products, best first.
        locale: `zh-CN` or `en-US`.
        confidence: the confidence of the match or retrieval that chose the context, 0..1,
            passed through to FinalAnswer.confidence.
        cancel: set on barge-in or hang-up; the engine stops and ends with `cancelled`.
    """

    question: str
    image: Image.Image
    context_passages: tuple[str, ...] = ()
    locale: str = "zh-CN"
    confidence: float = 0.0
    cancel: threading.Event | None = None

    def __post_init__(self) -> None:
        if self.locale not in LOCALES:
            raise InvalidArgumentError("locale", self.locale, f"expected one of {LOCALES}")
        if not 0.0 <= self.confidence <= 1.0:
            raise InvalidArgumentError("confidence", self.confidence, "use a value within 0..1")


class VlmEngine(Protocol):
    """Streams one answer about a photo: TextDelta events, then exactly one FinalAnswer."""

    name: str

    def stream(self, request: VlmRequest) -> Iterator[AnswerEvent]: ...


def build_vlm_messages(request: VlmRequest) -> list[ChatMessage]:
    """Return the system and user messages; the user message contains the image placeholder."""
    lines = ["<documents>"]
    for number, passage in enumerate(request.context_passages, start=1):
        text = escape_xml(neutralize_control_tokens(passage[:PASSAGE_CHARS]))
        lines.append(f'<passage id="P{number}">\n{text}\n</passage>')
    lines.append("</documents>")
    question = neutralize_control_tokens(request.question.strip())
    user = f"{QWEN_VL_IMAGE}\n" + "\n".join(lines)
    user += f"\n\n{_QUESTION_LABEL[request.locale]}{question}"
    return [ChatMessage("system", _SYSTEM[request.locale]), ChatMessage("user", user)]


def encode_jpeg_base64(image: Image.Image) -> str:
    """Return the photo as base64 JPEG, scaled down to MAX_IMAGE_SIDE_PX on its long side."""
    from PIL import Image

    rgb = image.convert("RGB")
    if max(rgb.size) > MAX_IMAGE_SIDE_PX:
        scale = MAX_IMAGE_SIDE_PX / max(rgb.size)
        size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
        rgb = rgb.resize(size, Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    rgb.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _final(text: str, request: VlmRequest, engine: str, reason: str, **extra: Any) -> FinalAnswer:
    return FinalAnswer(
        text=text,
        citations=(),
        confidence=request.confidence,
        intent="image",
        engine=engine,
        finish_reason=reason,
        extra=extra,
    )


class TritonVlmEngine:
    """Streams answers about a photo from a Qwen-VL model on Triton over gRPC."""

    name = "triton-vlm"

    def __init__(
        self,
        url: str,
        model_name: str,
        *,
        options: GenerationOptions | None = None,
        connect_timeout_s: float = 5.0,
    ) -> None:
        """Connect to the server and check that the model takes a prompt and an image.

        Args:
            url: the server's gRPC address, `host:port`.
            model_name: the Qwen-VL model to call.
            options: sampling settings and limits; the defaults of GenerationOptions.
            connect_timeout_s: time allowed for the start-up checks, in seconds.

        Raises:
            ConfigError: tritonclient is missing, or the model lacks `text_input` or `image`.
            UnavailableError: the server cannot be reached or the model is not ready.
        """
        try:
            import tritonclient.grpc as grpcclient
            from tritonclient import utils as triton_utils
        except ImportError as exc:
            raise ConfigError(
                f"the Triton VLM engine needs tritonclient, which is not installed: {INSTALL_HINT}"
            ) from exc
        self.grpcclient = grpcclient
        self.triton_utils = triton_utils
        self.url = url
        self.model_name = model_name
        self.options = options or GenerationOptions()
        self.connect_timeout_s = connect_timeout_s
        self.input_types = self._read_model_inputs()
        logger.info("triton VLM engine: model %s at %s", model_name, url)

    def _read_model_inputs(self) -> dict[str, str]:
        client = self.grpcclient.InferenceServerClient(self.url)
        timeout = self.connect_timeout_s
        try:
            if not client.is_model_ready(self.model_name, client_timeout=timeout):
                raise UnavailableError(
                    f"model {self.model_name!r} is not ready on the Triton server at {self.url}"
                )
            metadata = client.get_model_metadata(
                self.model_name, as_json=True, client_timeout=timeout
            )
        except self.triton_utils.InferenceServerException as exc:
            raise UnavailableError(
                f"the Triton server at {self.url} is unreachable or failed: {exc.message()}"
            ) from exc
        finally:
            client.close()

        input_types = {item["name"]: item["datatype"] for item in metadata.get("inputs", [])}
        missing = [name for name in (TEXT_INPUT, IMAGE_INPUT) if name not in input_types]
        if missing:
            raise ConfigError(
                f"model {self.model_name!r} at {self.url} lacks the inputs "
                f"{', '.join(missing)}; it declares {', '.join(sorted(input_types))}. "
                f"A VLM model needs {TEXT_INPUT} (the prompt) and {IMAGE_INPUT} (base64 JPEG)."
            )
        return input_types

    def stream(self, request: VlmRequest) -> Iterator[AnswerEvent]:
        """Stream one answer: TextDelta events, then one FinalAnswer.

        Raises:
            UnavailableError: the server cannot be reached before any text arrived.
        """
        responses: queue.Queue = queue.Queue()
        request_id = uuid.uuid4().hex[:12]
        client = self.grpcclient.InferenceServerClient(self.url)
        text, reason, error, finished = "", "complete", "", False
        try:
            client.start_stream(
                callback=lambda result, error: responses.put((result, error)),
                stream_timeout=self.options.timeout_s + STREAM_DEADLINE_SLACK_S,
            )
            client.async_stream_infer(
                self.model_name,
                self._inputs(request),
                request_id=request_id,
                enable_empty_final_response=True,
            )
            deadline = time.monotonic() + self.options.timeout_s
            for piece, status in self._pieces(responses, request, deadline):
                if status == "final":
                    finished = True
                elif status == "error":
                    finished, reason, error = True, "error", piece
                elif status in ("cancelled", "length"):
                    reason = status
                elif piece:
                    text += piece
                    yield TextDelta(piece)
        finally:
            client.stop_stream(cancel_requests=not finished)
            client.close()

        if error and not text and "UNAVAILABLE" in error:
            raise UnavailableError(f"the Triton server at {self.url} is unreachable: {error}")
        yield _final(text, request, self.name, reason, request_id=request_id, error=error)

    def _pieces(
        self, responses: queue.Queue, request: VlmRequest, deadline: float
    ) -> Iterator[tuple[str, str]]:
        """Yield (text, "") per streamed piece, then one (detail, status) that ends it."""
        while True:
            if request.cancel is not None and request.cancel.is_set():
                yield "", "cancelled"
                return
            remaining_s = deadline - time.monotonic()
            if remaining_s <= 0:
                yield "", "length"
                return
            try:
                result, failure = responses.get(timeout=min(POLL_INTERVAL_S, remaining_s))
            except queue.Empty:
                continue
            if failure is not None:
                message = f"{failure.status() or ''} {failure.message() or ''}".strip()
                logger.warning("triton VLM model %s failed: %s", self.model_name, message)
                yield message, "error"
                return
            yield _output_text(result), ""
            parameter = result.get_response().parameters.get("triton_final_response")
            if parameter and parameter.bool_param:
                yield "", "final"
                return

    def _inputs(self, request: VlmRequest) -> list[Any]:
        options = self.options
        sampling = {
            "max_tokens": options.max_new_tokens,
            "temperature": options.temperature,
            "top_p": options.top_p,
            "stop": list(options.stop_words),
        }
        values: dict[str, Any] = {
            TEXT_INPUT: render_chatml(build_vlm_messages(request)),
            IMAGE_INPUT: encode_jpeg_base64(request.image),
            "stream": True,
            "sampling_parameters": json.dumps(sampling),
            "exclude_input_in_output": True,
        }
        return [
            self._tensor(name, value) for name, value in values.items() if name in self.input_types
        ]

    def _tensor(self, name: str, value: Any) -> Any:
        import numpy as np

        datatype = self.input_types[name]
        if datatype == "BYTES":
            array = np.array([str(value).encode("utf-8")], dtype=np.object_)
        else:
            array = np.array([value], dtype=self.triton_utils.triton_to_np_dtype(datatype))
        tensor = self.grpcclient.InferInput(name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array)
        return tensor


def _output_text(result: Any) -> str:
    output = result.as_numpy(OUTPUT_NAME)
    if output is None:
        return ""
    return "".join(
        piece.decode("utf-8", errors="replace") if isinstance(piece, bytes) else str(piece)
        for piece in output.reshape(-1)
    )


class TransformersVlmEngine:
    """Answers about a photo with a local Qwen2-VL model folder through transformers.

    The model loads on the first answer, so a process that never receives a photo question
    does not pay for it.
    """

    name = "transformers-vlm"

    def __init__(
        self,
        model_dir: Path,
        *,
        options: GenerationOptions | None = None,
        device: str = "cpu",
    ) -> None:
        """Check the folder; the model itself loads on the first call to `stream`.

        Args:
            model_dir: a Qwen2-VL model folder with config.json, weights and processor files
                (for example from `modelscope download Qwen/Qwen2-VL-2B-Instruct`).
            options: sampling settings and limits; the defaults of GenerationOptions.
            device: torch device, such as `cpu` or `cuda:0`.

        Raises:
            ConfigError: the folder or its config.json is missing.
        """
        self.model_dir = Path(model_dir)
        if not (self.model_dir / "config.json").is_file():
            raise ConfigError(
                f"VLM model folder {self.model_dir} has no config.json: download a Qwen2-VL "
                "model there once, e.g. modelscope download Qwen/Qwen2-VL-2B-Instruct "
                f"--local_dir {self.model_dir}"
            )
        self.options = options or GenerationOptions()
        self.device = device
        self._loaded: tuple[Any, Any] | None = None
        self._load_lock = threading.Lock()

    def _load(self) -> tuple[Any, Any]:
        with self._load_lock:
            if self._loaded is not None:
                return self._loaded
            try:
                from transformers import AutoProcessor, Qwen2VLForConditionalGeneration
            except ImportError as exc:
                raise ConfigError(
                    f"the transformers VLM engine needs transformers and torch: {INSTALL_HINT}"
                ) from exc
            processor = AutoProcessor.from_pretrained(self.model_dir, local_files_only=True)
            model = Qwen2VLForConditionalGeneration.from_pretrained(
                self.model_dir, local_files_only=True
            ).to(self.device)
            model.eval()
            self._loaded = (processor, model)
            logger.info("loaded VLM %s on %s", self.model_dir, self.device)
            return self._loaded

    def stream(self, request: VlmRequest) -> Iterator[AnswerEvent]:
        """Generate one answer and stream it with transformers' TextIteratorStreamer.

        NOTE: this path has not run against a real Qwen2-VL folder, because none is
        available offline here; only the missing-folder check is tested.
        """
        from transformers import TextIteratorStreamer

        processor, model = self._load()
        prompt = render_chatml(build_vlm_messages(request))
        inputs = processor(
            text=[prompt], images=[request.image.convert("RGB")], return_tensors="pt"
        )
        streamer = TextIteratorStreamer(
            processor.tokenizer, skip_prompt=True, skip_special_tokens=True,
            timeout=self.options.timeout_s,
        )  # fmt: skip
        options = self.options
        kwargs = dict(
            inputs.to(self.device),
            streamer=streamer,
            max_new_tokens=options.max_new_tokens,
            do_sample=options.temperature > 0,
            temperature=options.temperature or None,
            top_p=options.top_p,
        )
        worker = threading.Thread(target=model.generate, kwargs=kwargs, daemon=True)
        worker.start()
        text = ""
        reason = "complete"
        for piece in streamer:
            if request.cancel is not None and request.cancel.is_set():
                # generate() finishes in its thread; the answer ends here for the caller.
                reason = "cancelled"
                break
            if piece:
                text += piece
                yield TextDelta(piece)
        yield _final(text, request, self.name, reason)
