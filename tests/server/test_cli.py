"""The `kefu` command line, run as a user runs it: in subprocesses."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.conftest import REPO, SAMPLES


def kefu(*args: str, data_dir: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "server.cli", "--data-dir", str(data_dir), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_ingest_and_ask_in_process(tmp_path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "怎么开发票", "answer": "下单时选择"}\nnot json\n', "utf-8")
    result = kefu("ingest", str(SAMPLES), str(bad), "--tenant", "shop", data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "31 added" in result.stdout
    assert "skipped bad.jsonl:2:" in result.stdout

    again = kefu("ingest", str(SAMPLES), "--tenant", "shop", data_dir=tmp_path)
    assert "0 added, 0 updated" in again.stdout

    asked = kefu("ask", "运费怎么算", "--tenant", "shop", "--json", data_dir=tmp_path)
    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout)
    assert set(answer) >= {"answer", "citations", "intent", "confidence", "handoff"}
    assert answer["citations"][0]["doc_id"] == "FAQ-005"
    assert answer["handoff"] is False


def test_global_options_after_command(tmp_path) -> None:
    from server.cli import build_parser

    parser = build_parser()
    after = parser.parse_args(["serve", "--data-dir", "d", "--log-level", "DEBUG"])
    before = parser.parse_args(["--data-dir", "d", "ask", "运费", "--tenant", "t"])
    both = parser.parse_args(
        ["--data-dir", "x", "ingest", "f.csv", "--tenant", "t", "--data-dir", "y"]
    )

    assert (after.data_dir, after.log_level, after.config) == (Path("d"), "DEBUG", None)
    assert before.data_dir == Path("d")
    assert both.data_dir == Path("y")


def test_ingest_missing_file_fails_clearly(tmp_path) -> None:
    result = kefu("ingest", str(tmp_path / "nope.csv"), "--tenant", "t", data_dir=tmp_path)
    no_extension = kefu("ingest", str(tmp_path / "nope"), "--tenant", "t", data_dir=tmp_path)

    assert result.returncode == 2
    assert "nope.csv" in result.stderr
    assert no_extension.returncode == 2
    assert f"{tmp_path / 'nope'}" in no_extension.stderr
    assert "not found" in no_extension.stderr
    assert not (tmp_path / "qdrant-edge").exists()


def test_ask_unknown_tenant(tmp_path) -> None:
    result = kefu("ask", "运费", "--tenant", "nobody", data_dir=tmp_path)
    assert result.returncode == 2
    assert "kefu ingest" in result.stderr


@pytest.fixture
def served(tmp_path):
    """`kefu serve` in a subprocess on a free port; yields (address, process)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "--data-dir", str(tmp_path / "data"),
         "serve", "--port", str(port)],
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    address = f"127.0.0.1:{port}"
    try:
        _wait_serving(address, process)
        yield address, process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _wait_serving(address: str, process: subprocess.Popen, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stderr.read()
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                time.sleep(0.2)
    raise AssertionError(f"kefu serve did not come up on {address}")


def test_serve_ingest_ask_and_sigterm(served, tmp_path) -> None:
    address, process = served
    data_dir = tmp_path / "data"

    # The server owns the embedded store: an in-process ingest says what to run instead.
    locked = kefu("ingest", str(SAMPLES), "--tenant", "shop", data_dir=data_dir)
    assert locked.returncode == 2
    assert "--server" in locked.stderr

    remote = kefu("ingest", str(SAMPLES), "--tenant", "shop", "--server", address,
                  data_dir=tmp_path / "unused")  # fmt: skip
    assert remote.returncode == 0, remote.stderr
    assert "30 added" in remote.stdout

    batch = tmp_path / "questions.jsonl"
    batch.write_text(
        '{"text": "运费怎么算", "session": "s1"}\nnot json\n{"text": "退款多久到账"}\n', "utf-8"
    )
    answered = kefu("ask", "--batch", str(batch), "--tenant", "shop", "--server", address,
                    data_dir=tmp_path / "unused")  # fmt: skip
    lines = [json.loads(line) for line in answered.stdout.splitlines()]
    assert answered.returncode == 1  # one line failed
    assert lines[0]["citations"][0]["doc_id"] == "FAQ-005"
    assert lines[1]["line"] == 2
    assert "error" in lines[1]
    assert lines[2]["citations"][0]["doc_id"] == "FAQ-010"

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    log = process.stderr.read()
    assert "shutdown requested" in log
    assert "kefu stopped" in log


def test_demo_prints_cited_answers(tmp_path) -> None:
    result = kefu("demo", data_dir=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "FAQ-005" in result.stdout
    assert "handoff=low_confidence" in result.stdout
    assert "spoken question synthesized by espeak" in result.stdout


def test_say_writes_wav_and_prints_normalized(tmp_path) -> None:
    out = tmp_path / "say.wav"
    result = kefu("say", "AB-1299-X售价¥1,299.00", "--out", str(out), "--print-normalized",
                  data_dir=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "一千二百九十九元" in result.stdout
    assert "一二九九" in result.stdout
    assert out.read_bytes()[:4] == b"RIFF"
    assert out.stat().st_size > 10_000


def test_ask_audio_with_spoken_answer(tmp_path) -> None:
    from asr_tts.asr import character_error_rate
    from tests.asr_tts.conftest import load_mandarin_recording

    recording = load_mandarin_recording("funasr-example")
    kefu("ingest", str(SAMPLES), "--tenant", "shop", data_dir=tmp_path)
    out = tmp_path / "answer.wav"
    result = kefu("ask", "--audio", str(recording.wav_path), "--say", str(out), "--tenant",
                  "shop", "--json", data_dir=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert character_error_rate(answer["transcript"], recording.transcript) <= 0.25
    assert answer["handoff"] is True  # the recording asks nothing the shop knows
    assert out.read_bytes()[:4] == b"RIFF"


def test_ask_audio_unreadable_file(tmp_path) -> None:
    result = kefu("ask", "--audio", str(tmp_path / "missing.wav"), "--tenant", "shop",
                  data_dir=tmp_path)  # fmt: skip
    assert result.returncode == 2
    assert "missing.wav" in result.stderr


def test_ask_with_image_and_ingest_images(tmp_path) -> None:
    from tests.server.test_images import png_bytes
    from tests.vision.conftest import find_cjk_font, render_lines
    from tests.vision.renders import make_products, render_product

    font = find_cjk_font()
    if font is None:
        pytest.skip("no Chinese font to render test labels: apt-get install -y fonts-wqy-zenhei")
    kefu("ingest", str(SAMPLES), "--tenant", "shop", data_dir=tmp_path)
    label = tmp_path / "label.png"
    label.write_bytes(png_bytes(render_lines(font, ["云帆AB-899无线耳机", "型号：AB-899"])))
    asked = kefu("ask", "多少钱", "--image", str(label), "--tenant", "shop", "--json",
                 data_dir=tmp_path)  # fmt: skip
    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout)
    assert "AB-899" in answer["image_text"]
    assert "¥899.00" in answer["answer"]

    photos = tmp_path / "photos"
    photos.mkdir()
    product = make_products(1)[0]
    (photos / "云帆AB-899无线耳机_1.png").write_bytes(png_bytes(render_product(product)))
    (photos / "broken.png").write_bytes(b"not a png")
    ingested = kefu("ingest-images", str(photos), "--tenant", "shop", data_dir=tmp_path)
    assert ingested.returncode == 0, ingested.stderr
    assert "1 photos added" in ingested.stdout
    assert "skipped broken.png" in ingested.stdout
