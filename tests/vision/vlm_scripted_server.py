"""A Triton server with a scripted Qwen-VL model, for the Triton VLM engine tests.

Runs inside the pytriton venv (see tests/rag/triton_env.py), which has no Pillow, so the
JPEG's size is read from its frame header here. The model `qwen_vl` declares `text_input`,
`image` (base64 JPEG), `stream` and `sampling_parameters`, and streams back a reply that
names the decoded image size and the prompt's question, so a test can tell that the photo
arrived. The model `text_only` declares only `text_input`. A question containing HANG
waits 3 s before replying.

Usage: python vlm_scripted_server.py GRPC_PORT HTTP_PORT METRICS_PORT LOG_FILE WORKSPACE
"""

from __future__ import annotations

import base64
import json
import logging
import struct
import sys
import time
from pathlib import Path

import numpy as np
from pytriton.model_config import ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig

# JPEG start-of-frame markers (baseline, extended, progressive, lossless …), which carry
# the height and width.
SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def jpeg_size(data: bytes) -> tuple[int, int]:
    """Return (width, height) from a JPEG's frame header."""
    if data[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG")
    offset = 2
    while offset + 4 <= len(data):
        if data[offset] != 0xFF:
            raise ValueError(f"bad marker at byte {offset}")
        marker = data[offset + 1]
        length = struct.unpack(">H", data[offset + 2 : offset + 4])[0]
        if marker in SOF_MARKERS:
            height, width = struct.unpack(">HH", data[offset + 5 : offset + 9])
            return width, height
        offset += 2 + length
    raise ValueError("no frame header")


def vlm_model(log_file: Path):
    def infer(requests):
        request = requests[0]
        prompt = request["text_input"].reshape(-1)[0].decode("utf-8")
        image = base64.b64decode(request["image"].reshape(-1)[0])
        width, height = jpeg_size(image)
        sampling = request.data.get("sampling_parameters")
        row = {
            "prompt": prompt,
            "image_bytes": len(image),
            "size": [width, height],
            "sampling": sampling.reshape(-1)[0].decode() if sampling is not None else None,
        }
        with log_file.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        if "HANG" in prompt:
            time.sleep(3)
        question = prompt.rsplit("<|im_start|>user", 1)[-1].split("<|im_end|>")[0].strip()
        last_line = question.splitlines()[-1]
        for piece in (f"image {width}x{height}", "; ", last_line):
            yield [{"text_output": np.array([piece.encode("utf-8")], dtype=np.object_)}]

    return infer


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
        triton.bind(
            model_name="qwen_vl",
            infer_func=[vlm_model(log_file), vlm_model(log_file)],
            inputs=[
                Tensor(name="text_input", dtype=bytes, shape=(1,)),
                Tensor(name="image", dtype=bytes, shape=(1,)),
                Tensor(name="stream", dtype=np.bool_, shape=(1,)),
                Tensor(name="sampling_parameters", dtype=bytes, shape=(1,), optional=True),
                Tensor(name="exclude_input_in_output", dtype=np.bool_, shape=(1,), optional=True),
            ],
            outputs=[Tensor(name="text_output", dtype=bytes, shape=(1,))],
            config=ModelConfig(batching=False, decoupled=True),
        )
        # A text-only chat model, which the VLM engine must reject at start-up.
        triton.bind(
            model_name="text_only",
            infer_func=vlm_model(log_file),
            inputs=[Tensor(name="text_input", dtype=bytes, shape=(1,))],
            outputs=[Tensor(name="text_output", dtype=bytes, shape=(1,))],
            config=ModelConfig(batching=False, decoupled=True),
        )
        print("SCRIPTED VLM READY", flush=True)
        triton.serve()


if __name__ == "__main__":
    main()
