"""Selection of the answer engine by name: extractive, transformers or triton.

The LLM engines are imported only when selected, so a process that answers extractively
never loads torch or tritonclient. By default an LLM engine is wrapped in FallbackEngine,
so a failing model degrades to extractive answers instead of failing the turn.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rag.answer import CALIBRATIONS, AnswerEngine, ExtractiveEngine
from rag.generation import GenerationOptions
from rag.tokenize import Tokenizer
from server.errors import ConfigError

ENGINE_NAMES: tuple[str, ...] = ("extractive", "transformers", "triton")
TRITON_BACKENDS: tuple[str, ...] = ("vllm", "tensorrtllm")


@dataclass(frozen=True)
class AnswerEngineConfig:
    """Settings of the answer engine.

    Attributes:
        name: extractive, transformers or triton.
        embedding_model: the embedding model whose confidence calibration applies
            (a key of rag.answer.CALIBRATIONS).
        confidence_threshold: extractive answers below this confidence become a fallback.
        model_dir: transformers: the local Qwen instruct model folder.
        adapter_dir: transformers: an optional peft LoRA adapter folder.
        device: transformers: the torch device, such as cpu or cuda:0.
        dtype: transformers: the torch dtype name of the weights; auto keeps the saved one.
        triton_url: triton: the server's gRPC address, host:port.
        triton_model: triton: the model name (for TensorRT-LLM usually `ensemble`).
        triton_backend: triton: vllm or tensorrtllm, the input names the model declares.
        bad_words: triton with tensorrtllm: words the model must never generate.
        generation: sampling settings and limits of the LLM engines.
        fallback_to_extractive: answer extractively when the LLM engine fails before
            sending text.
        first_delta_timeout_s: with the fallback, the time the LLM has to send its first
            text, in seconds.
    """

    name: str = "extractive"
    embedding_model: str = "e5-small"
    confidence_threshold: float = 0.4
    model_dir: Path | None = None
    adapter_dir: Path | None = None
    device: str = "cpu"
    dtype: str = "auto"
    triton_url: str = ""
    triton_model: str = ""
    triton_backend: str = "vllm"
    bad_words: tuple[str, ...] = ()
    generation: GenerationOptions = field(default_factory=GenerationOptions)
    fallback_to_extractive: bool = True
    first_delta_timeout_s: float = 8.0

    def __post_init__(self) -> None:
        if self.name not in ENGINE_NAMES:
            _invalid("name", self.name, f"accepted engines are {', '.join(ENGINE_NAMES)}")
        if self.embedding_model not in CALIBRATIONS:
            _invalid(
                "embedding_model",
                self.embedding_model,
                f"calibrated models are {', '.join(sorted(CALIBRATIONS))}",
            )
        if not 0 <= self.confidence_threshold <= 1:
            _invalid("confidence_threshold", self.confidence_threshold, "use a value within 0..1")
        if self.first_delta_timeout_s <= 0:
            _invalid("first_delta_timeout_s", self.first_delta_timeout_s, "use a positive number")
        if self.name == "transformers" and self.model_dir is None:
            _invalid("model_dir", None, "the transformers engine needs a local model folder")
        if self.name == "triton":
            self._check_triton()

    def _check_triton(self) -> None:
        if not self.triton_url:
            _invalid(
                "triton_url", self.triton_url, "the triton engine needs host:port of the server"
            )
        if not self.triton_model:
            _invalid("triton_model", self.triton_model, "the triton engine needs a model name")
        if self.triton_backend not in TRITON_BACKENDS:
            _invalid(
                "triton_backend",
                self.triton_backend,
                f"accepted backends are {', '.join(TRITON_BACKENDS)}",
            )


def _invalid(setting: str, value: object, accepted: str) -> None:
    raise ConfigError(f"invalid answer_engine.{setting}={value!r}: {accepted}")


def create_answer_engine(
    config: AnswerEngineConfig, *, tokenizer: Tokenizer | None = None
) -> AnswerEngine:
    """Create the answer engine that `config` names.

    Args:
        config: the engine settings.
        tokenizer: the retrieval tokenizer, shared with the knowledge base; a new one is
            made when absent. The extractive engine uses it for confidence.

    Raises:
        ConfigError: a model folder or package is missing, or the model server lacks
            the inputs of the configured backend.
        UnavailableError: the Triton server cannot be reached.
    """
    extractive = ExtractiveEngine(
        tokenizer or Tokenizer(),
        CALIBRATIONS[config.embedding_model],
        confidence_threshold=config.confidence_threshold,
    )
    if config.name == "extractive":
        return extractive

    llm = _create_llm_engine(config, extractive)
    if not config.fallback_to_extractive:
        return llm
    from rag.engine_fallback import FallbackEngine

    return FallbackEngine(llm, extractive, first_delta_timeout_s=config.first_delta_timeout_s)


def _create_llm_engine(config: AnswerEngineConfig, extractive: ExtractiveEngine) -> AnswerEngine:
    if config.name == "transformers":
        from rag.engine_transformers import TransformersEngine

        return TransformersEngine(
            config.model_dir,
            adapter_dir=config.adapter_dir,
            options=config.generation,
            device=config.device,
            dtype=config.dtype,
            confidence=extractive.confidence,
        )

    from rag.engine_triton import TritonEngine

    return TritonEngine(
        config.triton_url,
        config.triton_model,
        backend=config.triton_backend,
        options=config.generation,
        bad_words=config.bad_words,
        confidence=extractive.confidence,
    )
