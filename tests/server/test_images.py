"""Photos through a real server: labels, order screens, catalog matches, bad uploads."""

from __future__ import annotations

import io
import queue
from collections.abc import Iterator

import grpc
import pytest
from PIL import Image

from kefu_api.v1 import assistant_pb2, assistant_pb2_grpc, knowledge_pb2, knowledge_pb2_grpc
from tests.vision.conftest import edge_case_image, find_cjk_font, render_lines
from tests.vision.renders import make_products, render_product, shopper_photo


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def jpeg_bytes(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def font():
    path = find_cjk_font()
    if path is None:
        pytest.skip("no Chinese font to render test labels: apt-get install -y fonts-wqy-zenhei")
    return path


@pytest.fixture(scope="module")
def channel(running_server) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(running_server.address) as channel:
        yield channel


@pytest.fixture(scope="module")
def stub(channel) -> assistant_pb2_grpc.AssistantStub:
    return assistant_pb2_grpc.AssistantStub(channel)


def ask(stub, text: str = "", image: bytes | None = None, tenant: str = "shop", session=""):
    request = assistant_pb2.AskRequest(tenant=tenant, text=text, session_id=session)
    if image is not None:
        request.image.data = image
    return stub.Ask(request, timeout=60)


def test_label_photo_finds_product(stub, font) -> None:
    label = render_lines(font, ["云帆AB-1299-X无线降噪耳机", "型号：AB-1299-X", "¥1,299.00"])
    answer = ask(stub, "这个多少钱？", jpeg_bytes(label))
    assert answer.text.startswith("照片上的型号是AB-1299-X。")
    assert "¥1,299.00" in answer.text
    assert answer.citations[0].doc_id == "云帆AB-1299-X无线降噪耳机"
    assert "AB-1299-X" in answer.image_text
    assert ("product_code", "AB-1299-X") in {(s.name, s.value) for s in answer.slots}


def test_order_screen_gives_order_slot(stub, font) -> None:
    screen = render_lines(font, ["订单详情", "订单号：202406181234567", "状态：已发货"])
    answer = ask(stub, "", png_bytes(screen))
    assert ("order_number", "202406181234567") in {(s.name, s.value) for s in answer.slots}
    assert answer.text.startswith("照片上的订单号是202406181234567。")


def test_blank_photo_asks_for_another(stub) -> None:
    answer = ask(stub, "", png_bytes(Image.new("RGB", (400, 300), "white")))
    assert "重新拍" in answer.text
    assert not answer.citations


def test_catalog_photo_sets_focus(running_server, channel, stub) -> None:
    products = make_products(4)
    titles = ["云帆AB-899无线耳机", "云帆Mate60手机壳", "云帆5G随身WiFi", "云帆256GB高速U盘"]
    images = [
        knowledge_pb2.ImageFile(name=f"{title}_{variant}.png", content=png_bytes(
            render_product(product, variant)))
        for product, title in zip(products, titles, strict=True)
        for variant in (0, 1)
    ]  # fmt: skip
    knowledge = knowledge_pb2_grpc.KnowledgeStub(channel)
    report = knowledge.UpsertImages(knowledge_pb2.UpsertImagesRequest(tenant="shop", images=images))
    assert report.added == 8

    photo = shopper_photo(render_product(products[2], 3), "mixed", seed=5)
    answer = ask(stub, "", jpeg_bytes(photo), session="photo")
    assert answer.image_product == "云帆5G随身WiFi"
    assert "照片上的商品看起来是云帆5G随身WiFi。" in answer.text

    follow_up = ask(stub, "有货吗", session="photo")
    assert follow_up.citations[0].doc_id == "云帆5G随身WiFi"
    assert "缺货" in follow_up.text

    again = knowledge.UpsertImages(knowledge_pb2.UpsertImagesRequest(tenant="shop", images=images))
    assert (again.added, again.unchanged) == (0, 8)


@pytest.mark.parametrize(
    ("name", "outcome"),
    [
        ("hopper_orientation_3.jpg", "ok"),
        ("hopper_orientation_6.jpg", "ok"),
        ("pil_sample_cmyk.jpg", "ok"),
        ("pil123rgba.png", "ok"),
        ("transparent.png", "ok"),
        ("mode_16bit.png", "ok"),
        ("iss634.gif", "ok"),
        ("hopper.heif", "ok"),
        ("decompression_bomb.gif", "INVALID_ARGUMENT"),
        ("hopper_16bit.pgm", "INVALID_ARGUMENT"),
    ],
)
def test_edge_case_files(stub, name, outcome) -> None:
    data = edge_case_image(name).read_bytes()
    if outcome == "ok":
        answer = ask(stub, "这是什么", data)
        assert answer.answer_id
        return
    with pytest.raises(grpc.RpcError) as info:
        ask(stub, "这是什么", data)
    assert info.value.code().name == outcome
    assert "image" in info.value.details()


def test_bad_uploads_rejected(stub, font) -> None:
    label = jpeg_bytes(render_lines(font, ["云帆AB-899无线耳机"]))
    big = Image.new("RGB", (20_000, 20_000), "white")
    buffer = io.BytesIO()
    big.save(buffer, "PNG")
    cases = {
        "cut JPEG": label[: int(len(label) * 0.6)],
        "empty": b"",
        "not an image": b"hello, this is text",
        "20000 x 20000": buffer.getvalue(),
    }
    for case, data in cases.items():
        with pytest.raises(grpc.RpcError) as info:
            ask(stub, "这是什么", data)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, case
        assert "image" in info.value.details(), case
    # A PNG whose name would say JPEG is read by its content.
    assert ask(stub, "", png_bytes(render_lines(font, ["型号：AB-899"]))).answer_id


def test_chunked_image_in_converse(stub, font) -> None:
    label = jpeg_bytes(render_lines(font, ["云帆AB-1299-X无线降噪耳机", "¥1,299.00"]))
    requests: queue.Queue = queue.Queue()
    requests.put(assistant_pb2.ConverseRequest(config=assistant_pb2.SessionConfig(tenant="shop")))
    oversized = b"\xff" * (11 * 1024 * 1024)
    for start in range(0, len(oversized), 1024 * 1024):
        chunk = oversized[start : start + 1024 * 1024]
        last = start + len(chunk) >= len(oversized)
        requests.put(
            assistant_pb2.ConverseRequest(image=assistant_pb2.ImageChunk(data=chunk, last=last))
        )
    for start in range(0, len(label), 1000):
        chunk = label[start : start + 1000]
        last = start + 1000 >= len(label)
        requests.put(
            assistant_pb2.ConverseRequest(
                image=assistant_pb2.ImageChunk(data=chunk, last=last, text="多少钱" if last else "")
            )
        )
    requests.put(None)
    events = list(stub.Converse(iter(requests.get, None), timeout=60))
    errors = [e.error for e in events if e.WhichOneof("event") == "error"]
    assert len(errors) == 1
    assert errors[0].code == "INVALID_ARGUMENT"
    answers = [e.answer for e in events if e.WhichOneof("event") == "answer"]
    assert len(answers) == 1
    assert "¥1,299.00" in answers[0].text


def test_fifty_megabyte_upload(stub) -> None:
    with pytest.raises(grpc.RpcError) as info:
        ask(stub, "这是什么", b"\xff\xd8" + bytes(50 * 1024 * 1024))
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "99元包邮" in ask(stub, "运费怎么算").text


def test_image_before_config(stub) -> None:
    first = assistant_pb2.ConverseRequest(
        image=assistant_pb2.ImageChunk(data=b"\x89PNG", last=True)
    )
    with pytest.raises(grpc.RpcError) as info:
        list(stub.Converse(iter([first]), timeout=10))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "config" in info.value.details()
