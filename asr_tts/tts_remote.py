"""Triton backend: a TTS model (CosyVoice, PaddleSpeech) served by Triton Inference Server.

The model takes one BYTES input with the UTF-8 sentence and returns float32 mono samples
at a fixed rate. Tensor names and the rate come from config, because each deployment
chooses its own. `tritonclient[grpc]` is imported only when this engine is created.

NOTE: this backend has not run against a Triton TTS model here; only its configuration
checks and the missing-package error are tested.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import numpy as np

from asr_tts.tts import TtsEngine, TtsOptions
from server.errors import ConfigError, UnavailableError

logger = logging.getLogger(__name__)

_INSTALL_COMMAND = "pip install 'tritonclient[grpc]==2.73.0'"


@dataclass(frozen=True)
class TritonTtsConfig:
    """How to reach the TTS model on Triton.

    Attributes:
        url: Triton's gRPC address as host:port.
        model_name: the model's name in the Triton model repository.
        model_version: a version number as text, or "" for Triton's default policy.
        text_input: name of the BYTES input tensor, shape [1, 1].
        audio_output: name of the FP32 output tensor with the samples.
        speaking_rate_input: name of an optional FP32 [1, 1] input for the speed, or "".
        sample_rate_hz: rate of the returned samples.
        timeout_s: time allowed for one sentence.
    """

    url: str = "127.0.0.1:8001"
    model_name: str = "tts"
    model_version: str = ""
    text_input: str = "TEXT"
    audio_output: str = "WAV"
    speaking_rate_input: str = ""
    sample_rate_hz: int = 24_000
    timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[\w.\-]+:\d{1,5}|\[[0-9a-fA-F:]+\]:\d{1,5}", self.url):
            raise ConfigError(f"triton_tts.url={self.url!r}: use host:port, e.g. 127.0.0.1:8001")
        if not 8_000 <= self.sample_rate_hz <= 48_000:
            raise ConfigError(f"triton_tts.sample_rate_hz={self.sample_rate_hz}: use 8000-48000")
        if self.timeout_s <= 0:
            raise ConfigError(f"triton_tts.timeout_s={self.timeout_s} must be positive")


class TritonTtsEngine(TtsEngine):
    """Synthesis by a Triton-served model over gRPC; the client is thread-safe."""

    name = "triton"

    def __init__(self, config: TritonTtsConfig | None = None) -> None:
        self.config = config or TritonTtsConfig()
        try:
            import tritonclient.grpc as triton_grpc
        except ImportError as error:
            raise ConfigError(
                f"the triton TTS engine needs tritonclient; install it with: {_INSTALL_COMMAND}"
            ) from error
        self._triton = triton_grpc
        self._client = triton_grpc.InferenceServerClient(url=self.config.url)
        self.sample_rate_hz = self.config.sample_rate_hz

    def synthesize_spoken(self, spoken_text: str, options: TtsOptions) -> np.ndarray:
        """Send one normalized sentence to Triton and return its samples.

        Raises:
            UnavailableError: Triton could not be reached or the request failed.
        """
        config = self.config
        text = self._triton.InferInput(config.text_input, [1, 1], "BYTES")
        text.set_data_from_numpy(np.array([[spoken_text.encode("utf-8")]], dtype=object))
        inputs = [text]
        if config.speaking_rate_input:
            rate = self._triton.InferInput(config.speaking_rate_input, [1, 1], "FP32")
            rate.set_data_from_numpy(np.array([[options.speaking_rate]], dtype=np.float32))
            inputs.append(rate)
        try:
            result = self._client.infer(
                config.model_name,
                inputs,
                model_version=config.model_version,
                outputs=[self._triton.InferRequestedOutput(config.audio_output)],
                client_timeout=config.timeout_s,
            )
        except Exception as error:  # noqa: BLE001 - tritonclient raises InferenceServerException
            raise UnavailableError(
                f"Triton TTS model {config.model_name} at {config.url} failed: {error}"
            ) from error
        return np.asarray(result.as_numpy(config.audio_output), dtype=np.float32).reshape(-1)

    def close(self) -> None:
        """Close the gRPC channel."""
        self._client.close()
