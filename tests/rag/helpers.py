"""Shared test data for the rag tests: paths to the real data sets and converters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# The shared data folder sits beside the repository checkout.
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
CROSSWOZ_DB = SHARED_DATA / "crosswoz-db"
CROSSWOZ_MISSING = f"CrossWOZ venue database not found at {CROSSWOZ_DB}"


def crosswoz_records(file_name: str) -> list[dict[str, Any]]:
    """Read one CrossWOZ database file as a list of record objects.

    The files store each venue as a `[name, {fields}]` pair, and the fields already
    contain the name under 名称, so the pair's first element is dropped.
    """
    pairs = json.loads((CROSSWOZ_DB / file_name).read_text(encoding="utf-8"))
    return [fields for _, fields in pairs]


def write_crosswoz_json(file_name: str, directory: Path) -> Path:
    """Write a CrossWOZ database file into `directory` as a JSON list of objects."""
    path = directory / file_name
    records = crosswoz_records(file_name)
    path.write_text(json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8")
    return path
