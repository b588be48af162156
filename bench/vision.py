"""Vision benchmark, OCR part: character accuracy and latency on rendered Chinese labels.

Each label has three lines: a product line (brand, SKU, product name), a model and price
line, and an order number or production date. Labels are rendered with WenQuanYi Zen Hei
at 22-48 px, given one distortion each, encoded as JPEG and then run through the same path
as a customer photo: `vision.intake.load_image`, then `vision.ocr.RapidOcrEngine.read`.

Distortions, assigned in turn so each gets the same share of labels:
    clean     none (baseline)
    blur      Gaussian blur, radius 0.8-1.5 px
    rotation  rotated by ±5-10°, on a white background
    jpeg      re-encoded at JPEG quality 30-60
    light     a lighting gradient that darkens one side to 35-55 % brightness

Character accuracy is 1 − CER, where CER is the summed Levenshtein distance between the
reference and the OCR text over the summed reference length. Both sides are normalized
the way kefu indexes text (`rag.clean.normalize_text`) and whitespace is removed, because
OCR splits or joins lines and drops spaces without changing what a customer wrote.

Product top-1 matching is measured separately, by the image-matching part of this
benchmark.

Run from the repository root:
    .venv/bin/python -m bench.vision --out bench/results/vision-$(date +%F).json
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import io
import json
import platform
import random
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from rag.clean import normalize_text
from vision.intake import ImageLimits, load_image
from vision.ocr import RapidOcrEngine

REPO = Path(__file__).resolve().parent.parent
DEBIAN_ZENHEI = Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")
DISTORTIONS = ("clean", "blur", "rotation", "jpeg", "light")
# JPEG quality of labels whose distortion is not "jpeg", near what phone cameras write
# (an estimate).
CAMERA_JPEG_QUALITY = 90
PACKAGES = ("rapidocr", "onnxruntime", "pillow", "pillow-heif", "opencv-python-headless")
TARGET_CHARACTER_ACCURACY = 0.97
TARGET_OCR_P50_MS = 1500

BRANDS = ("云帆", "星河", "青禾", "北辰", "蓝湾", "锦程", "松果", "白鹭", "远山", "晨光")
PRODUCTS = (
    "无线降噪耳机",
    "智能手环",
    "不锈钢保温杯",
    "电动牙刷",
    "蓝牙音箱",
    "空气炸锅",
    "移动电源",
    "机械键盘",
    "加湿器",
    "儿童滑板车",
    "电热水壶",
    "折叠雨伞",
)
SPECS = ("500ml", "黑色", "白色", "20000mAh", "1.5L", "87键", "标准版", "Pro版")


@dataclass(frozen=True)
class Label:
    """One rendered label: its reference lines, distortion and encoded JPEG."""

    index: int
    lines: tuple[str, ...]
    distortion: str
    jpeg: bytes


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    font_path = find_font()
    if font_path is None:
        print(
            "vision benchmark skipped: no Chinese font; apt-get install -y fonts-wqy-zenhei",
            file=sys.stderr,
        )
        return 2

    started = time.perf_counter()
    print(f"rendering {args.count} labels (seed {args.seed})")
    labels = render_labels(args.count, args.seed, font_path)

    load_started = time.perf_counter()
    engine = RapidOcrEngine()
    model_load_s = time.perf_counter() - load_started

    print("running intake and OCR")
    samples = [measure_label(engine, label) for label in labels]

    results: dict[str, Any] = {
        "benchmark": "vision-ocr",
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, "-m", "bench.vision", *sys.argv[1:]]),
        **environment(),
        "settings": {
            "count": args.count,
            "seed": args.seed,
            "font": str(font_path),
            "ocr_options": dataclasses.asdict(engine.options),
        },
        "model_load_s": round(model_load_s, 2),
        "ocr": summarize(samples),
        "worst": worst_samples(samples, 5),
    }
    if args.turns:
        print(f"answering {args.turns} photo turns through the assistant")
        results["image_turns"] = measure_turns(labels[: args.turns])
    results["targets"] = check_targets(results["ocr"])
    results["runtime_s"] = round(time.perf_counter() - started, 1)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, ensure_ascii=False, indent=1) + "\n", "utf-8")
    print_summary(results)
    print(f"wrote {args.out} after {results['runtime_s']} s")
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    today = datetime.date.today().isoformat()
    parser = argparse.ArgumentParser(
        prog="python -m bench.vision",
        description="Measure OCR character accuracy and intake/OCR latency on rendered "
        "Chinese product labels with blur, rotation, JPEG noise and uneven light.",
    )
    parser.add_argument(
        "--count", type=int, default=100, help="labels to render and read (default: 100)"
    )
    parser.add_argument(
        "--seed", type=int, default=20240618, help="random seed of the labels (default: 20240618)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run with 20 labels; its figures are not comparable with a full run",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO / "bench" / "results" / f"vision-{today}.json",
        help="results JSON file (default: bench/results/vision-<date>.json)",
    )
    parser.add_argument(
        "--turns",
        type=int,
        default=40,
        help="labels also answered as whole photo turns through the assistant (default: 40)",
    )
    args = parser.parse_args(argv)

    if args.quick:
        args.count = 20
        args.turns = min(args.turns, 10)
    if args.count < len(DISTORTIONS):
        parser.error(f"invalid --count {args.count}: use at least {len(DISTORTIONS)}")
    return args


# labels


def find_font() -> Path | None:
    """Locate WenQuanYi Zen Hei through fontconfig, then at its Debian path."""
    try:
        found = subprocess.run(
            ["fc-match", "-f", "%{file}", "WenQuanYi Zen Hei"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except FileNotFoundError:
        found = ""
    if "wqy-zenhei" in found and Path(found).is_file():
        return Path(found)
    return DEBIAN_ZENHEI if DEBIAN_ZENHEI.is_file() else None


def label_lines(rng: random.Random) -> tuple[str, ...]:
    """Draw the three text lines of one label."""
    letters = "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(2))
    sku = f"{letters}-{rng.randint(100, 9999)}-{rng.choice('XSPMLK')}"
    price = rng.choice((rng.randint(9, 99), rng.randint(100, 9999)))
    cents = rng.choice((0, 0, 50, 90, 99))
    product = f"{rng.choice(BRANDS)}{sku}{rng.choice(PRODUCTS)}"
    details = f"型号：{sku}  规格：{rng.choice(SPECS)}  ¥{price:,}.{cents:02d}"
    if rng.random() < 0.5:
        last = f"订单号：{rng.randint(10**14, 10**15 - 1)}"
    else:
        last = (
            f"生产日期：{rng.randint(2022, 2025)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        )
    return (product, details, last)


def render_labels(count: int, seed: int, font_path: Path) -> list[Label]:
    """Render `count` labels, each with one distortion, as JPEG bytes."""
    rng = random.Random(seed)
    labels = []
    for index in range(count):
        lines = label_lines(rng)
        size_px = rng.randint(22, 48)
        image = draw_label(lines, font_path, size_px)
        distortion = DISTORTIONS[index % len(DISTORTIONS)]
        image, quality = distort(image, distortion, rng)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=quality)
        labels.append(Label(index, lines, distortion, buffer.getvalue()))
    return labels


def draw_label(lines: tuple[str, ...], font_path: Path, size_px: int) -> Image.Image:
    font = ImageFont.truetype(str(font_path), size_px)
    margin_px = size_px
    line_height_px = int(size_px * 1.7)
    width_px = int(max(font.getlength(line) for line in lines)) + 2 * margin_px
    height_px = line_height_px * len(lines) + 2 * margin_px
    image = Image.new("RGB", (width_px, height_px), (250, 250, 246))
    draw = ImageDraw.Draw(image)
    for number, line in enumerate(lines):
        draw.text((margin_px, margin_px + number * line_height_px), line, font=font, fill="black")
    return image


def distort(image: Image.Image, distortion: str, rng: random.Random) -> tuple[Image.Image, int]:
    """Apply one distortion; return the image and the JPEG quality to save it with."""
    if distortion == "blur":
        return image.filter(ImageFilter.GaussianBlur(rng.uniform(0.8, 1.5))), CAMERA_JPEG_QUALITY
    if distortion == "rotation":
        angle = rng.uniform(5.0, 10.0) * rng.choice((-1, 1))
        rotated = image.rotate(
            angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor="white"
        )
        return rotated, CAMERA_JPEG_QUALITY
    if distortion == "jpeg":
        return image, rng.randint(30, 60)
    if distortion == "light":
        return uneven_light(image, rng.uniform(0.35, 0.55), rng.random() < 0.5), CAMERA_JPEG_QUALITY
    return image, CAMERA_JPEG_QUALITY


def uneven_light(image: Image.Image, darkest: float, left_to_right: bool) -> Image.Image:
    pixels = np.asarray(image, dtype=np.float32)
    width = pixels.shape[1]
    ramp = np.linspace(1.0, darkest, width, dtype=np.float32)
    if not left_to_right:
        ramp = ramp[::-1]
    lit = pixels * ramp[np.newaxis, :, np.newaxis]
    return Image.fromarray(np.clip(lit, 0, 255).astype(np.uint8))


# measurement


def measure_label(engine: RapidOcrEngine, label: Label) -> dict[str, Any]:
    """Run intake and OCR on one label and score the text."""
    started = time.perf_counter()
    decoded = load_image(label.jpeg, ImageLimits())
    intake_done = time.perf_counter()
    result = engine.read(decoded.image)
    ocr_done = time.perf_counter()

    reference = comparable("".join(label.lines))
    hypothesis = comparable(result.text)
    return {
        "index": label.index,
        "distortion": label.distortion,
        "reference": "\n".join(label.lines),
        "ocr_text": result.text,
        "errors": edit_distance(reference, hypothesis),
        "reference_chars": len(reference),
        "intake_ms": (intake_done - started) * 1000,
        "ocr_ms": (ocr_done - intake_done) * 1000,
    }


def comparable(text: str) -> str:
    """Normalize `text` as kefu indexes it and drop whitespace."""
    return "".join(normalize_text(text).split())


def edit_distance(reference: str, hypothesis: str) -> int:
    """Return the Levenshtein distance (insertions, deletions, substitutions) in characters."""
    if not reference:
        return len(hypothesis)
    previous = list(range(len(hypothesis) + 1))
    for row, expected in enumerate(reference, start=1):
        current = [row]
        for column, actual in enumerate(hypothesis, start=1):
            substitution = previous[column - 1] + (expected != actual)
            current.append(min(previous[column] + 1, current[column - 1] + 1, substitution))
        previous = current
    return previous[-1]


def summarize(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Return accuracy and latency overall and per distortion."""
    summary = {"overall": _figures(samples)}
    summary["per_distortion"] = {
        name: _figures([sample for sample in samples if sample["distortion"] == name])
        for name in DISTORTIONS
    }
    return summary


def _figures(samples: list[dict[str, Any]]) -> dict[str, Any]:
    errors = sum(sample["errors"] for sample in samples)
    reference_chars = sum(sample["reference_chars"] for sample in samples)
    exact = sum(1 for sample in samples if sample["errors"] == 0)
    return {
        "labels": len(samples),
        "reference_chars": reference_chars,
        "character_errors": errors,
        "character_accuracy": round(1 - errors / reference_chars, 4),
        "labels_read_exactly": exact,
        "intake_ms": _percentiles([sample["intake_ms"] for sample in samples]),
        "ocr_ms": _percentiles([sample["ocr_ms"] for sample in samples]),
    }


def _percentiles(values_ms: list[float]) -> dict[str, float]:
    return {
        "p50": round(float(np.percentile(values_ms, 50)), 1),
        "p99": round(float(np.percentile(values_ms, 99)), 1),
        "max": round(max(values_ms), 1),
    }


def worst_samples(samples: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    ranked = sorted(samples, key=lambda sample: sample["errors"], reverse=True)
    keys = ("index", "distortion", "errors", "reference", "ocr_text")
    return [{key: sample[key] for key in keys} for sample in ranked[:count] if sample["errors"]]


def check_targets(ocr: dict[str, Any]) -> dict[str, Any]:
    overall = ocr["overall"]
    return {
        "character_accuracy": {
            "target": TARGET_CHARACTER_ACCURACY,
            "met": overall["character_accuracy"] >= TARGET_CHARACTER_ACCURACY,
        },
        "ocr_p50_ms": {
            "target": TARGET_OCR_P50_MS,
            "met": overall["ocr_ms"]["p50"] < TARGET_OCR_P50_MS,
        },
    }


# report


def environment() -> dict[str, Any]:
    """Return the commit, uncommitted files on the OCR path, package versions and machine."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    cpu_models = [
        line.split(":", 1)[1].strip()
        for line in _read_text("/proc/cpuinfo").splitlines()
        if line.startswith("model name")
    ]
    return {
        "commit": _git("rev-parse", "HEAD"),
        "uncommitted": _git(
            "status", "--porcelain", "--", "vision", "bench/vision.py"
        ).splitlines(),
        "packages": versions,
        "machine": {
            "cpu_model": cpu_models[0] if cpu_models else platform.processor(),
            "cores": len(cpu_models) or None,
            "kernel": platform.release(),
            "load_average_at_end": _read_text("/proc/loadavg").split()[:3],
        },
    }


def _git(*args: str) -> str:
    completed = subprocess.run(
        ["git", *args], cwd=REPO, capture_output=True, text=True, check=False
    )
    return completed.stdout.strip()


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError:
        return ""


# whole photo turns

TURN_STAGES = ("image_intake", "ocr", "image_match", "dialogue", "retrieval", "answer")


def measure_turns(labels: list[Label]) -> dict[str, Any]:
    """Answer each label as a photo turn ("多少钱？" plus the photo) with the real pipeline.

    The knowledge base holds one product record per label (title, 型号, 价格), so a turn
    is right when its first citation is the label's product. Stage times come from the
    turn's own latency breakdown; `turn` is the wall time of the whole `Assistant.ask`.
    """
    import tempfile

    from server.app import build_components
    from server.assistant import Question
    from server.config import Settings

    with tempfile.TemporaryDirectory(prefix="kefu-bench-vision-") as folder:
        settings = Settings(data_dir=Path(folder) / "data", port=0)
        components = build_components(settings)
        try:
            records = Path(folder) / "labels.json"
            records.write_text(json.dumps([_record(label) for label in labels], ensure_ascii=False))
            components.knowledge.ingest_file("bench", records)
            stages: dict[str, list[float]] = {name: [] for name in (*TURN_STAGES, "turn")}
            right = 0
            for label in labels:
                started = time.perf_counter()
                result = components.assistant.ask(
                    Question("bench", "多少钱？", "", image=label.jpeg)
                )
                stages["turn"].append((time.perf_counter() - started) * 1000)
                for name in TURN_STAGES:
                    stages[name].append(result.latency_ms.get(name, 0.0))
                citations = result.final.citations
                right += bool(citations) and citations[0].doc_id == label.lines[0]
        finally:
            components.close()
    return {
        "turns": len(labels),
        "product_found_by_ocr_top1": round(right / len(labels), 4),
        "latency_ms": {name: _percentiles(values) for name, values in stages.items()},
    }


def _record(label: Label) -> dict[str, str]:
    sku = label.lines[1].split("型号：", 1)[1].split()[0]
    price = label.lines[1].rsplit("¥", 1)[1]
    return {"名称": label.lines[0], "型号": sku, "价格": f"¥{price}"}


def print_summary(results: dict[str, Any]) -> None:
    print(
        f"{'distortion':<10} {'labels':>6} {'accuracy':>9} {'exact':>6} {'ocr p50':>8} {'p99':>8}"
    )
    rows = {"overall": results["ocr"]["overall"], **results["ocr"]["per_distortion"]}
    for name, figures in rows.items():
        print(
            f"{name:<10} {figures['labels']:>6} {figures['character_accuracy']:>9.4f} "
            f"{figures['labels_read_exactly']:>6} {figures['ocr_ms']['p50']:>7.0f}ms "
            f"{figures['ocr_ms']['p99']:>6.0f}ms"
        )
    overall = results["ocr"]["overall"]
    print(f"intake p50 {overall['intake_ms']['p50']} ms, p99 {overall['intake_ms']['p99']} ms")
    turns = results.get("image_turns")
    if turns:
        print(f"photo turns: {turns['turns']}, product top-1 {turns['product_found_by_ocr_top1']}")
        for name, figures in turns["latency_ms"].items():
            print(f"  {name:<13} p50 {figures['p50']:>8.1f} ms  p99 {figures['p99']:>8.1f} ms")


if __name__ == "__main__":
    sys.exit(main())
