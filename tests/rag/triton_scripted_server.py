"""A Triton server with scripted chat models, for the Triton engine tests.

Runs inside the separate pytriton venv (pytriton needs numpy<2), so it imports nothing
from kefu. It serves two decoupled Python models that stream a scripted reply:

- `qwen_vllm` declares the vLLM backend's inputs and outputs.
- `ensemble` declares the TensorRT-LLM ensemble's inputs and output, with a batch dim.

A keyword in the prompt picks the script. SLOW waits 0.3 s between pieces, HANG waits 3 s
before the first piece, NOANSWER sends the no-answer marker and LONG sends 40 pieces 0.03 s
apart. Without a keyword the reply is short, with its citation marker split in two pieces.
Each request is appended as one JSON line to the log file, so tests can check what the
client sent.

Usage: python triton_scripted_server.py GRPC_PORT HTTP_PORT METRICS_PORT LOG_FILE WORKSPACE
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from pathlib import Path

import numpy as np
from pytriton.model_config import ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig

DEFAULT_PIECES = ["门店每天", "早上九点", "开门[P", "1]。"]
_log_lock = threading.Lock()


def script_for(prompt: str) -> tuple[list[str], float, float, str]:
    """Return (pieces, delay before the first piece, delay between pieces, finish reason)."""
    question = prompt.rsplit("<|im_start|>user", 1)[-1]
    if "NOANSWER" in question:
        return ["[NO_", "ANSWER]"], 0.0, 0.0, "stop"
    if "HANG" in question:
        return DEFAULT_PIECES, 3.0, 0.0, "stop"
    if "SLOW" in question:
        return [f"第{i}句。" for i in range(10)], 0.0, 0.3, "stop"
    if "LONG" in question:
        return [f"第{i}段" for i in range(40)], 0.0, 0.03, "length"
    return DEFAULT_PIECES, 0.0, 0.0, "stop"


def record(log_file: Path, model: str, data: dict) -> None:
    row = {"model": model}
    for name, array in data.items():
        values = array.reshape(-1).tolist()
        row[name] = [v.decode("utf-8") if isinstance(v, bytes) else v for v in values]
    with _log_lock, log_file.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def vllm_model(log_file: Path):
    def infer(requests):
        request = requests[0]
        record(log_file, "qwen_vllm", request.data)
        pieces, first_delay, delay, reason = script_for(request["text_input"][0].decode("utf-8"))
        time.sleep(first_delay)
        for i, piece in enumerate(pieces):
            time.sleep(delay)
            last = i == len(pieces) - 1
            yield [
                {
                    "text_output": np.array([piece.encode("utf-8")], dtype=np.object_),
                    "finish_reason": np.array(
                        [(reason if last else "").encode()], dtype=np.object_
                    ),
                }
            ]

    return infer


def ensemble_model(log_file: Path):
    def infer(requests):
        request = requests[0]
        record(log_file, "ensemble", request.data)
        prompt = request["text_input"].reshape(-1)[0].decode("utf-8")
        pieces, first_delay, delay, _ = script_for(prompt)
        time.sleep(first_delay)
        for piece in pieces:
            time.sleep(delay)
            yield [{"text_output": np.array([[piece.encode("utf-8")]], dtype=np.object_)}]

    return infer


def bind_models(triton: Triton, log_file: Path) -> None:
    triton.bind(
        model_name="qwen_vllm",
        # Two instances, so a cancelled request that the script still plays out does not
        # hold up the next test's request.
        infer_func=[vllm_model(log_file), vllm_model(log_file)],
        inputs=[
            Tensor(name="text_input", dtype=bytes, shape=(1,)),
            Tensor(name="stream", dtype=np.bool_, shape=(1,)),
            Tensor(name="sampling_parameters", dtype=bytes, shape=(1,), optional=True),
            Tensor(name="exclude_input_in_output", dtype=np.bool_, shape=(1,), optional=True),
            Tensor(name="return_finish_reason", dtype=np.bool_, shape=(1,), optional=True),
        ],
        outputs=[
            Tensor(name="text_output", dtype=bytes, shape=(1,)),
            Tensor(name="finish_reason", dtype=bytes, shape=(1,)),
        ],
        config=ModelConfig(batching=False, decoupled=True),
    )
    triton.bind(
        model_name="ensemble",
        infer_func=ensemble_model(log_file),
        inputs=[
            Tensor(name="text_input", dtype=bytes, shape=(1,)),
            Tensor(name="max_tokens", dtype=np.int32, shape=(1,)),
            Tensor(name="bad_words", dtype=bytes, shape=(-1,), optional=True),
            Tensor(name="stop_words", dtype=bytes, shape=(-1,), optional=True),
            Tensor(name="stream", dtype=np.bool_, shape=(1,), optional=True),
            Tensor(name="temperature", dtype=np.float32, shape=(1,), optional=True),
            Tensor(name="top_p", dtype=np.float32, shape=(1,), optional=True),
            Tensor(name="top_k", dtype=np.int32, shape=(1,), optional=True),
            Tensor(name="repetition_penalty", dtype=np.float32, shape=(1,), optional=True),
            Tensor(name="random_seed", dtype=np.uint64, shape=(1,), optional=True),
        ],
        outputs=[Tensor(name="text_output", dtype=bytes, shape=(-1,))],
        config=ModelConfig(batching=True, max_batch_size=4, decoupled=True),
    )


def main() -> None:
    grpc_port, http_port, metrics_port = (int(arg) for arg in sys.argv[1:4])
    log_file, workspace = Path(sys.argv[4]), Path(sys.argv[5])
    logging.basicConfig(level=logging.INFO)
    config = TritonConfig(
        grpc_address="127.0.0.1",
        grpc_port=grpc_port,
        http_address="127.0.0.1",
        http_port=http_port,
        metrics_address="127.0.0.1",
        metrics_port=metrics_port,
        allow_metrics=False,
        exit_timeout_secs=2,
    )
    with Triton(config=config, workspace=workspace) as triton:
        bind_models(triton, log_file)
        print("SCRIPTED MODELS READY", flush=True)
        triton.serve()


if __name__ == "__main__":
    main()
