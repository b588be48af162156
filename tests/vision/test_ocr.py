"""Tests of vision.ocr with the real rapidocr models on rendered Chinese labels."""

from __future__ import annotations

import math
import socket
import threading
from pathlib import Path

import pytest
from PIL import Image

from server.errors import InvalidArgumentError
from tests.vision.conftest import render_lines
from vision.ocr import (
    OcrLine,
    OcrResult,
    RapidOcrEngine,
    RapidOcrOptions,
    bundled_model_paths,
    sort_reading_order,
)

pytest.importorskip("rapidocr", reason="rapidocr is not installed: pip install 'kefu[vision]'")


@pytest.fixture(scope="module")
def engine() -> RapidOcrEngine:
    return RapidOcrEngine()


def box_at(x: float, y: float, width: float = 100, height: float = 30):
    return ((x, y), (x + width, y), (x + width, y + height), (x, y + height))


# --- without the model ----------------------------------------------------------------


def test_reading_order_rows_then_columns():
    price = OcrLine("¥1,299.00", 0.9, box_at(400, 22))
    name = OcrLine("无线降噪耳机", 0.9, box_at(10, 20))
    model = OcrLine("型号：AB-1299-X", 0.9, box_at(10, 80))
    ordered = sort_reading_order([model, price, name])
    assert [line.text for line in ordered] == ["无线降噪耳机", "¥1,299.00", "型号：AB-1299-X"]


def tilted_box(x: float, y: float, width: float, angle_deg: float, height: float = 30):
    """Return the corners of a width x height box rotated about (x, y), y pointing down."""
    cos_angle, sin_angle = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    corners = ((0, 0), (width, 0), (width, height), (0, height))
    return tuple(
        (x + u * cos_angle - v * sin_angle, y + u * sin_angle + v * cos_angle) for u, v in corners
    )


def test_reading_order_tilted_photo():
    # Tilted 8° counter-clockwise: the long middle line's centre sits higher than the
    # first line's centre in image coordinates.
    angle = -8.0
    first = OcrLine("蓝湾空气炸锅", 0.9, tilted_box(10, 100, 200, angle))
    second = OcrLine("型号：XM-8685-L 规格：白色 ¥45.50", 0.9, tilted_box(15, 140, 900, angle))
    third = OcrLine("订单号：912556560513097", 0.9, tilted_box(20, 180, 300, angle))

    def centre_y(line: OcrLine) -> float:
        return sum(y for _, y in line.box) / 4

    assert centre_y(second) < centre_y(first)
    ordered = sort_reading_order([third, second, first])
    assert [line.text for line in ordered] == [first.text, second.text, third.text]


def test_result_text_joins_lines():
    result = OcrResult((OcrLine("a", 1.0, box_at(0, 0)), OcrLine("b", 1.0, box_at(0, 50))))
    assert result.text == "a\nb"
    assert OcrResult(()).text == ""


@pytest.mark.parametrize(
    ("field", "options"),
    [
        ("ocr.min_side_px", {"min_side_px": 4000}),
        ("ocr.detection_side_px", {"detection_side_px": 8}),
        ("ocr.min_confidence", {"min_confidence": 1.5}),
        ("ocr.threads", {"threads": -1}),
    ],
)
def test_options_rejected(field, options):
    with pytest.raises(InvalidArgumentError) as caught:
        RapidOcrOptions(**options)
    assert caught.value.field == field


def test_models_inside_rapidocr_wheel():
    import rapidocr

    package_dir = Path(rapidocr.__file__).parent
    for path in bundled_model_paths().values():
        assert path.is_file()
        assert path.parent == package_dir / "models"


def test_engine_loads_offline(monkeypatch):
    from rapidocr.utils import download_file

    def no_network(*args, **kwargs):
        raise AssertionError("rapidocr tried to open a network connection")

    def no_download(*args, **kwargs):
        raise AssertionError("rapidocr tried to download a file")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(download_file.DownloadFile, "run", no_download)
    offline = RapidOcrEngine()
    assert offline.read(Image.new("RGB", (200, 100), "white")).lines == ()


# --- with the model -------------------------------------------------------------------


def test_product_label_model_number(engine, cjk_font_path):
    label = render_lines(cjk_font_path, ["云帆AB-1299-X无线降噪耳机 ¥1,299.00", "型号：AB-1299-X"])
    result = engine.read(label)
    assert "AB-1299-X" in result.lines[0].text
    assert "无线降噪耳机" in result.lines[0].text
    assert "¥1,299.00" in result.text
    assert result.lines[-1].text == "型号：AB-1299-X"


def test_order_screen_order_number(engine, cjk_font_path):
    screen = render_lines(cjk_font_path, ["订单号：202406181234567", "状态：已发货"], size_px=32)
    result = engine.read(screen)
    assert [line.text for line in result.lines] == ["订单号：202406181234567", "状态：已发货"]
    assert all(0.5 <= line.confidence <= 1.0 for line in result.lines)


def test_traditional_text_becomes_simplified(engine, cjk_font_path):
    screen = render_lines(cjk_font_path, ["訂單號：202406181234567", "狀態：已發貨"], size_px=32)
    result = engine.read(screen)
    assert "订单号：202406181234567" in result.text
    assert "状态：已发货" in result.text


def test_full_width_digits_normalized(engine, cjk_font_path):
    label = render_lines(cjk_font_path, ["型号：ＡＢ－１２９９"])
    assert "型号：AB-1299" in engine.read(label).text


def test_large_image_boxes_in_input_pixels(engine, cjk_font_path):
    line = render_lines(cjk_font_path, ["订单号：202406181234567"], size_px=96, margin_px=0)
    canvas = Image.new("RGB", (4000, 3000), "white")
    canvas.paste(line, (1500, 2000))
    result = engine.read(canvas)
    assert result.text == "订单号：202406181234567"
    box = result.lines[0]
    assert abs(box.left - 1500) < 40
    assert abs(box.top - 2000) < 40


def test_tiny_image_upscaled(engine, cjk_font_path):
    tiny = render_lines(cjk_font_path, ["AB-1299-X"], size_px=14, margin_px=4)
    assert max(tiny.size) < 120
    assert engine.read(tiny).text == "AB-1299-X"


def test_greyscale_input_accepted(engine, cjk_font_path):
    label = render_lines(cjk_font_path, ["状态：已发货"]).convert("L")
    assert engine.read(label).text == "状态：已发货"


def test_blank_image_has_no_lines(engine):
    result = engine.read(Image.new("RGB", (640, 480), "white"))
    assert result.lines == ()
    assert result.text == ""


def test_concurrent_reads_agree(engine, cjk_font_path):
    screen = render_lines(cjk_font_path, ["订单号：202406181234567"])
    expected = engine.read(screen).text
    outputs: list[str] = []

    def read_once() -> None:
        outputs.append(engine.read(screen).text)

    threads = [threading.Thread(target=read_once) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outputs == [expected] * 3
