"""Synthetic product photos for the image-matching tests and benchmark.

Each product is a shape in its own colours with a pattern and a printed Latin label, drawn
on a light studio background. `shopper_photo` distorts a catalog photo the way a phone
photo differs from it: rotation, blur, cropping, JPEG artefacts and uneven light.
"""

from __future__ import annotations

import io
import math
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont

SIZE_PX = 320
SHAPES = ("circle", "square", "triangle", "hexagon", "star", "bottle", "diamond", "cup")
PATTERNS = ("plain", "stripes", "dots", "checker", "rings", "zigzag")
PALETTE = (
    (200, 30, 40),
    (30, 90, 200),
    (20, 150, 60),
    (240, 180, 20),
    (120, 40, 160),
    (240, 120, 30),
    (20, 160, 170),
    (90, 60, 40),
    (230, 90, 160),
    (60, 60, 60),
)
DISTORTIONS = ("rotate", "blur", "crop", "jpeg", "light", "mixed")


@dataclass(frozen=True)
class Product:
    """A synthetic product: the look that makes its photos recognisable."""

    product_id: str
    shape: str
    pattern: str
    body: tuple[int, int, int]
    accent: tuple[int, int, int]
    label: str


def make_products(count: int, seed: int = 7) -> list[Product]:
    """Return `count` products with distinct shape, pattern and colour combinations."""
    rng = random.Random(seed)
    combos = [
        (shape, pattern, body)
        for shape in SHAPES
        for pattern in PATTERNS
        for body in range(len(PALETTE))
    ]
    rng.shuffle(combos)
    products = []
    for index, (shape, pattern, body) in enumerate(combos[:count]):
        accent = (body + 3 + index % 5) % len(PALETTE)
        products.append(
            Product(
                product_id=f"product{index:02d}",
                shape=shape,
                pattern=pattern,
                body=PALETTE[body],
                accent=PALETTE[accent],
                label=f"{shape[:3].upper()}{index:02d}",
            )
        )
    return products


def render_product(product: Product, variant: int = 0) -> Image.Image:
    """Draw the product's catalog photo; `variant` shifts and scales it slightly."""
    rng = random.Random(f"{product.product_id}/{variant}")
    image = Image.new("RGB", (SIZE_PX, SIZE_PX), (245, 243, 238))
    half = SIZE_PX * (0.34 + 0.03 * rng.random())
    centre = (SIZE_PX / 2 + rng.uniform(-8, 8), SIZE_PX / 2 + rng.uniform(-8, 8))

    mask = Image.new("L", image.size, 0)
    _draw_shape(ImageDraw.Draw(mask), product.shape, centre, half, fill=255)
    texture = _pattern(product)
    image.paste(texture, (0, 0), mask)
    _draw_shape(ImageDraw.Draw(image), product.shape, centre, half, outline=(30, 30, 30))

    font = ImageFont.load_default(size=30)
    draw = ImageDraw.Draw(image)
    box = draw.textbbox((0, 0), product.label, font=font)
    x = centre[0] - (box[2] - box[0]) / 2
    y = centre[1] - (box[3] - box[1]) / 2
    draw.rectangle((x - 6, y - 4, x + box[2] - box[0] + 6, y + box[3] + 4), fill=(255, 255, 255))
    draw.text((x, y), product.label, font=font, fill=(10, 10, 10))
    return image


def shopper_photo(image: Image.Image, distortion: str, seed: int) -> Image.Image:
    """Return a distorted copy of a catalog photo, as a shopper's phone might take it."""
    rng = random.Random(f"{distortion}/{seed}")
    if distortion == "rotate":
        return _rotate(image, rng)
    if distortion == "blur":
        return image.filter(ImageFilter.GaussianBlur(rng.uniform(1.5, 3.0)))
    if distortion == "crop":
        return _crop(image, rng)
    if distortion == "jpeg":
        return _jpeg(image, rng.randint(8, 20))
    if distortion == "light":
        return _uneven_light(image, rng)
    if distortion == "mixed":
        photo = _rotate(image, rng)
        photo = _crop(photo, rng)
        photo = _uneven_light(photo, rng)
        photo = photo.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.5)))
        return _jpeg(photo, rng.randint(25, 50))
    raise ValueError(f"unknown distortion {distortion!r}; expected one of {DISTORTIONS}")


def unrelated_scene(seed: int) -> Image.Image:
    """Draw a scene with no product: a smooth landscape-like gradient with noise."""
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, SIZE_PX)[:, None, None]
    sky = np.array([110, 160, 230]) * (1 - y) + np.array([60, 120, 50]) * y
    noise = rng.normal(0, 12, (SIZE_PX, SIZE_PX, 3))
    pixels = np.clip(sky + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(1))


def jpeg_bytes(image: Image.Image, quality: int = 92) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _pattern(product: Product) -> Image.Image:
    texture = Image.new("RGB", (SIZE_PX, SIZE_PX), product.body)
    draw = ImageDraw.Draw(texture)
    step = 24
    if product.pattern == "stripes":
        for x in range(-SIZE_PX, SIZE_PX, step):
            draw.line((x, 0, x + SIZE_PX, SIZE_PX), fill=product.accent, width=8)
    elif product.pattern == "dots":
        for x in range(0, SIZE_PX, step):
            for y in range(0, SIZE_PX, step):
                draw.ellipse((x + 6, y + 6, x + 16, y + 16), fill=product.accent)
    elif product.pattern == "checker":
        for x in range(0, SIZE_PX, step):
            for y in range(0, SIZE_PX, step):
                if (x // step + y // step) % 2:
                    draw.rectangle((x, y, x + step, y + step), fill=product.accent)
    elif product.pattern == "rings":
        for radius in range(SIZE_PX, 0, -step):
            fill = product.accent if radius // step % 2 else product.body
            c = SIZE_PX / 2
            draw.ellipse((c - radius, c - radius, c + radius, c + radius), fill=fill)
    elif product.pattern == "zigzag":
        for y in range(0, SIZE_PX, step):
            points = [
                (x, y + (step // 2 if x // step % 2 else 0)) for x in range(0, SIZE_PX + step, step)
            ]
            draw.line(points, fill=product.accent, width=6)
    return texture


def _draw_shape(draw, shape, centre, half, **style) -> None:
    cx, cy = centre
    if shape == "circle":
        draw.ellipse((cx - half, cy - half, cx + half, cy + half), **style)
    elif shape == "square":
        draw.rounded_rectangle((cx - half, cy - half, cx + half, cy + half), 18, **style)
    elif shape == "bottle":
        draw.rounded_rectangle(
            (cx - half * 0.5, cy - half, cx + half * 0.5, cy + half), 30, **style
        )
    elif shape == "cup":
        draw.polygon(
            [(cx - half, cy - half * 0.8), (cx + half, cy - half * 0.8),
             (cx + half * 0.7, cy + half), (cx - half * 0.7, cy + half)],
            **style,
        )  # fmt: skip
    else:
        draw.polygon(_polygon(shape, cx, cy, half), **style)


def _polygon(shape: str, cx: float, cy: float, half: float) -> list[tuple[float, float]]:
    if shape == "star":
        radii = [half if i % 2 == 0 else half * 0.45 for i in range(10)]
        angles = [math.pi / 2 + i * math.pi / 5 for i in range(10)]
    else:
        corners = {"triangle": 3, "diamond": 4, "hexagon": 6}[shape]
        radii = [half] * corners
        angles = [math.pi / 2 + i * 2 * math.pi / corners for i in range(corners)]
    return [
        (cx + r * math.cos(a), cy - r * math.sin(a)) for r, a in zip(radii, angles, strict=True)
    ]


def _rotate(image: Image.Image, rng: random.Random) -> Image.Image:
    angle = rng.choice([-1, 1]) * rng.uniform(8, 25)
    return image.rotate(angle, resample=Image.Resampling.BICUBIC, fillcolor=(228, 222, 210))


def _crop(image: Image.Image, rng: random.Random) -> Image.Image:
    keep = rng.uniform(0.75, 0.9)
    width, height = image.size
    w, h = int(width * keep), int(height * keep)
    left, top = rng.randint(0, width - w), rng.randint(0, height - h)
    return image.crop((left, top, left + w, top + h)).resize(image.size)


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    return Image.open(io.BytesIO(jpeg_bytes(image, quality))).convert("RGB")


def _uneven_light(image: Image.Image, rng: random.Random) -> Image.Image:
    width, height = image.size
    x = np.linspace(0, 1, width)[None, :]
    y = np.linspace(0, 1, height)[:, None]
    angle = rng.uniform(0, 2 * math.pi)
    ramp = math.cos(angle) * x + math.sin(angle) * y
    ramp = (ramp - ramp.min()) / (ramp.max() - ramp.min())
    gain = rng.uniform(0.45, 0.65) + rng.uniform(0.5, 0.7) * ramp
    tint = np.array([rng.uniform(0.9, 1.1), 1.0, rng.uniform(0.85, 1.05)])
    pixels = np.asarray(image, dtype=np.float32) * gain[..., None] * tint
    lit = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    return ImageEnhance.Contrast(lit).enhance(rng.uniform(0.8, 1.1))
