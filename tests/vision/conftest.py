"""Fixtures for the vision tests: the Pillow edge-case images and a Chinese text renderer."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from tests.conftest import shared_data

DEBIAN_ZENHEI = Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")


def edge_case_image(name: str) -> Path:
    """Return a file of the Pillow edge-case set, or skip when the set is absent."""
    path = shared_data("images-pillow-edgecases") / name
    if not path.is_file():
        pytest.skip(f"edge-case image {path} is absent")
    return path


def find_cjk_font() -> Path | None:
    """Locate WenQuanYi Zen Hei through fontconfig, then at its Debian path."""
    if shutil.which("fc-match"):
        found = subprocess.run(
            ["fc-match", "-f", "%{file}", "WenQuanYi Zen Hei"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        if "wqy-zenhei" in found and Path(found).is_file():
            return Path(found)
    if DEBIAN_ZENHEI.is_file():
        return DEBIAN_ZENHEI
    return None


@pytest.fixture(scope="session")
def cjk_font_path() -> Path:
    path = find_cjk_font()
    if path is None:
        pytest.skip("no Chinese font to render test labels: apt-get install -y fonts-wqy-zenhei")
    return path


def render_lines(
    font_path: Path, lines: list[str], size_px: int = 36, margin_px: int = 24
) -> Image.Image:
    """Render black text lines on white, one under the other, as an RGB image."""
    font = ImageFont.truetype(str(font_path), size_px)
    line_height = int(size_px * 1.6)
    width = max(int(font.getlength(line)) for line in lines) + 2 * margin_px
    height = line_height * len(lines) + 2 * margin_px
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    for index, line in enumerate(lines):
        draw.text((margin_px, margin_px + index * line_height), line, font=font, fill="black")
    return image
