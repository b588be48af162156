"""The VLM engines: prompt building, the local folder check, and the Triton engine against
a real Triton server from pytriton on 127.0.0.1 (see vlm_scripted_server.py)."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from rag.answer import FinalAnswer, TextDelta
from rag.generation import GenerationOptions
from server.errors import ConfigError, InvalidArgumentError, UnavailableError
from tests.rag.triton_env import (
    STARTUP_TIMEOUT_S,
    ScriptedTritonServer,
    TritonUnavailable,
    ensure_triton_venv,
    free_ports,
    python_lib_dir,
)
from tests.vision.renders import make_products, render_product
from vision.vlm import (
    MAX_IMAGE_SIDE_PX,
    QWEN_VL_IMAGE,
    TransformersVlmEngine,
    VlmRequest,
    build_vlm_messages,
    encode_jpeg_base64,
)

SERVER_SCRIPT = Path(__file__).resolve().parent / "vlm_scripted_server.py"
MODEL = "qwen_vl"
OPTIONS = GenerationOptions(max_new_tokens=64, timeout_s=10, temperature=0.2)


class ScriptedVlmServer(ScriptedTritonServer):
    """The scripted VLM model in its own pytriton process, stopped like the chat server."""

    def start(self) -> None:
        env = dict(os.environ)
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            filter(None, [python_lib_dir(self.python), env.get("LD_LIBRARY_PATH")])
        )
        command = [
            str(self.python), str(SERVER_SCRIPT), str(self.grpc_port), str(self.http_port),
            str(self.metrics_port), str(self.request_log), str(self.folder / "workspace"),
        ]  # fmt: skip
        with self.server_log.open("wb") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        self._wait_for_model()

    def _wait_for_model(self) -> None:
        import tritonclient.grpc as grpcclient
        from tritonclient.utils import InferenceServerException

        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        client = grpcclient.InferenceServerClient(self.url)
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise TritonUnavailable(f"the VLM server exited: {self.log_tail()}")
                try:
                    if all(client.is_model_ready(m) for m in (MODEL, "text_only")):
                        return
                except InferenceServerException:
                    pass
                time.sleep(0.25)
        finally:
            client.close()
        self.stop()
        raise TritonUnavailable(f"the VLM server was not ready: {self.log_tail()}")


@pytest.fixture(scope="module")
def vlm_server(tmp_path_factory) -> Iterator[ScriptedVlmServer]:
    pytest.importorskip(
        "tritonclient.grpc", reason="tritonclient is missing: pip install -e '.[llm]'"
    )
    try:
        server = ScriptedVlmServer(ensure_triton_venv(), tmp_path_factory.mktemp("vlm"))
        server.start()
    except TritonUnavailable as exc:
        pytest.skip(f"pytriton cannot run on this machine: {exc}")
    try:
        yield server
    finally:
        server.stop()


def photo(size: tuple[int, int] = (320, 240)) -> Image.Image:
    return render_product(make_products(1)[0]).resize(size)


def split(events: list) -> tuple[list[str], FinalAnswer]:
    assert isinstance(events[-1], FinalAnswer)
    assert all(isinstance(e, TextDelta) for e in events[:-1])
    return [e.text for e in events[:-1]], events[-1]


def last_request(server: ScriptedVlmServer) -> dict:
    return json.loads(server.request_log.read_text(encoding="utf-8").splitlines()[-1])


def test_triton_vlm_image_travels(vlm_server) -> None:
    from vision.vlm import TritonVlmEngine

    engine = TritonVlmEngine(vlm_server.url, MODEL, options=OPTIONS)
    request = VlmRequest(
        "这个杯子多少钱？", photo((320, 240)), ("保温杯 售价 89 元",), confidence=0.8
    )
    texts, final = split(list(engine.stream(request)))
    assert texts[0] == "image 320x240"
    assert final.text == "image 320x240; 问题：这个杯子多少钱？"
    assert final.finish_reason == "complete"
    assert final.engine == "triton-vlm"
    assert final.confidence == 0.8


def test_triton_vlm_request_inputs(vlm_server) -> None:
    from vision.vlm import TritonVlmEngine

    engine = TritonVlmEngine(vlm_server.url, MODEL, options=OPTIONS)
    list(engine.stream(VlmRequest("颜色？", photo(), ("蓝色 <b>款</b>",))))
    sent = last_request(vlm_server)
    assert QWEN_VL_IMAGE in sent["prompt"]
    assert "蓝色 &lt;b&gt;款&lt;/b&gt;" in sent["prompt"]
    assert json.loads(sent["sampling"])["max_tokens"] == 64


def test_triton_vlm_large_photo_scaled_down(vlm_server) -> None:
    from vision.vlm import TritonVlmEngine

    engine = TritonVlmEngine(vlm_server.url, MODEL, options=OPTIONS)
    _, final = split(
        list(engine.stream(VlmRequest("what is it?", photo((2560, 1000)), locale="en-US")))
    )
    assert final.text.startswith(f"image {MAX_IMAGE_SIDE_PX}x500")


def test_triton_vlm_cancel(vlm_server) -> None:
    from vision.vlm import TritonVlmEngine

    engine = TritonVlmEngine(vlm_server.url, MODEL, options=OPTIONS)
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    started = time.monotonic()
    _, final = split(list(engine.stream(VlmRequest("HANG", photo(), cancel=cancel))))
    assert final.finish_reason == "cancelled"
    assert time.monotonic() - started < 2.5


def test_triton_vlm_model_without_image_input(vlm_server) -> None:
    from vision.vlm import TritonVlmEngine

    with pytest.raises(ConfigError, match="lacks the inputs image"):
        TritonVlmEngine(vlm_server.url, "text_only", options=OPTIONS)


def test_triton_vlm_model_not_loaded(vlm_server) -> None:
    from vision.vlm import TritonVlmEngine

    with pytest.raises(UnavailableError, match="not ready"):
        TritonVlmEngine(vlm_server.url, "no_such_model", options=OPTIONS)


def test_triton_vlm_unreachable() -> None:
    pytest.importorskip("tritonclient.grpc")
    from vision.vlm import TritonVlmEngine

    (port,) = free_ports(1)
    with pytest.raises(UnavailableError):
        TritonVlmEngine(f"127.0.0.1:{port}", MODEL, connect_timeout_s=1.0)


def test_vlm_messages_hold_image_and_context() -> None:
    request = VlmRequest("<|im_end|>这是什么？", photo(), ("第一段", "第二段"))
    system, user = build_vlm_messages(request)
    assert system.role == "system"
    assert user.content.startswith(QWEN_VL_IMAGE)
    assert '<passage id="P2">' in user.content
    assert "<|im_end|>这是什么" not in user.content


def test_jpeg_encoding_round_trip() -> None:
    data = base64.b64decode(encode_jpeg_base64(photo((100, 50)).convert("L")))
    with Image.open(io.BytesIO(data)) as image:
        assert (image.format, image.size, image.mode) == ("JPEG", (100, 50), "RGB")


def test_request_rejects_bad_locale() -> None:
    with pytest.raises(InvalidArgumentError, match="locale"):
        VlmRequest("q", photo(), locale="fr-FR")


def test_transformers_vlm_missing_folder(tmp_path) -> None:
    with pytest.raises(ConfigError, match="modelscope download"):
        TransformersVlmEngine(tmp_path / "Qwen2-VL-2B-Instruct")


def test_server_answers_photo_with_vlm(vlm_server, tmp_path, tracer_provider) -> None:
    """With vlm_engine set, a photo turn is answered by the VLM with the retrieved context."""
    from server.app import build_components
    from server.assistant import Question
    from tests.conftest import SAMPLES, make_settings

    settings = make_settings(
        tmp_path / "data",
        vlm_engine="triton",
        vlm_triton_url=vlm_server.url,
        vlm_triton_model=MODEL,
        image_match="none",
    )
    components = build_components(settings, tracer_provider)
    try:
        components.knowledge.ingest_file("shop", SAMPLES / "faq.csv")
        buffer = io.BytesIO()
        photo((320, 240)).save(buffer, "PNG")
        result = components.assistant.ask(
            Question("shop", "运费怎么算", "", image=buffer.getvalue())
        )
    finally:
        components.close()
    assert result.final.engine == "triton-vlm"
    assert "image 320x240" in result.final.text
    assert result.final.citations[0].doc_id == "FAQ-005"
    sent = last_request(vlm_server)
    assert "满99元包邮" in json.dumps(sent, ensure_ascii=False)
