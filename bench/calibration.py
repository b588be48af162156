"""Confidence distributions and a calibration search for the extractive engine.

ExtractiveEngine scores the top hit as
    dense_weight * clip((similarity - floor) / (ceiling - floor), 0, 1)
    + (1 - dense_weight) * query-term coverage
and falls back below a threshold. From the similarity and coverage of every hybrid
search, the grid search finds the floor, ceiling and threshold that answer the most turns
whose top hit is the right venue while every off-topic question still falls back.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rag.answer import ConfidenceCalibration, ExtractiveEngine

PERCENTILES = (0, 5, 25, 50, 75, 95, 100)
FLOOR_STEP = 0.01
# Narrower spans turn the dense signal into a step at one similarity, fitted to this set.
MIN_SPAN = 0.05
THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.20, 0.71, 0.05))


def calibration_report(
    positives: list[dict[str, Any]],
    negatives: list[dict[str, Any]],
    current: ConfidenceCalibration,
    engine: ExtractiveEngine,
) -> dict[str, Any]:
    """Summarize the confidence inputs and suggest calibration values.

    Args:
        positives: per evaluation turn, `rank`, `similarity`, `coverage`, `confidence`.
        negatives: per off-topic question, `similarity`, `coverage`, `confidence`.
        current: the calibration the engine used.
        engine: the engine, for its threshold.
    """
    groups = {
        "positives_top1_right": [row for row in positives if row["rank"] == 1],
        "positives_top1_wrong": [row for row in positives if row["rank"] != 1],
        "negatives": negatives,
    }
    distributions = {
        name: {
            signal: _percentiles([row[signal] for row in rows if row[signal] is not None])
            for signal in ("similarity", "coverage", "confidence")
        }
        for name, rows in groups.items()
    }
    signals = {name: _signal_arrays(rows) for name, rows in groups.items()}
    threshold = engine.confidence_threshold
    current_values = {
        "similarity_floor": current.similarity_floor,
        "similarity_ceiling": current.similarity_ceiling,
        "dense_weight": current.dense_weight,
        "threshold": threshold,
    }
    return {
        "distributions": distributions,
        "current": {**current_values, **_outcome(signals, current_values)},
        "suggested_at_threshold_0.4": _search(signals, current.dense_weight, (0.4,)),
        "suggested": _search(signals, current.dense_weight, THRESHOLDS),
    }


def _signal_arrays(rows: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    # A hit without a dense similarity (sparse mode) gets -1: below any floor.
    similarity = np.array([-1.0 if r["similarity"] is None else r["similarity"] for r in rows])
    coverage = np.array([r["coverage"] for r in rows], dtype=float)
    return similarity, coverage


def _confidence(
    similarity: np.ndarray, coverage: np.ndarray, floor: float, ceiling: float, weight: float
) -> np.ndarray:
    dense = np.clip((similarity - floor) / (ceiling - floor), 0.0, 1.0)
    return np.round(weight * dense + (1 - weight) * coverage, 4)


def _outcome(signals: dict[str, tuple[np.ndarray, np.ndarray]], values: dict[str, float]) -> dict:
    """Return the answered and fallback shares of each group under one calibration."""
    answered = {}
    for name, (similarity, coverage) in signals.items():
        confidence = _confidence(
            similarity,
            coverage,
            values["similarity_floor"],
            values["similarity_ceiling"],
            values["dense_weight"],
        )
        answered[name] = confidence >= values["threshold"]
    negatives = signals["negatives"]
    top_negative = float(
        _confidence(
            *negatives,
            values["similarity_floor"],
            values["similarity_ceiling"],
            values["dense_weight"],
        ).max()
    )
    return {
        "right_hits_answered": _share(answered["positives_top1_right"]),
        "wrong_hits_fallback": _share(~answered["positives_top1_wrong"]),
        "negatives_fallback": _share(~answered["negatives"]),
        "max_negative_confidence": round(top_negative, 4),
    }


def _search(
    signals: dict[str, tuple[np.ndarray, np.ndarray]], weight: float, thresholds: tuple
) -> dict[str, Any]:
    """Find floor, ceiling and threshold that reject every negative and keep most right hits.

    The ceiling stays at least MIN_SPAN above the floor. Ties go to the widest gap between
    the threshold and the most confident negative, so the choice is the least tuned to
    these 50 questions.
    """
    right = signals["positives_top1_right"]
    negatives = signals["negatives"]
    best: tuple[float, float] | None = None
    chosen: dict[str, float] = {}
    grid = np.round(np.arange(0.0, 1.0 + FLOOR_STEP / 2, FLOOR_STEP), 2)
    for floor in grid:
        for ceiling in grid[grid >= floor + MIN_SPAN - 1e-9]:
            kept_conf = _confidence(*right, floor, ceiling, weight)
            negative_conf = _confidence(*negatives, floor, ceiling, weight)
            top_negative = float(negative_conf.max())
            for threshold in thresholds:
                if top_negative >= threshold:
                    continue
                key = (round(float(np.mean(kept_conf >= threshold)), 3), threshold - top_negative)
                if best is None or key > best:
                    best = key
                    chosen = {
                        "similarity_floor": float(floor),
                        "similarity_ceiling": float(ceiling),
                        "dense_weight": weight,
                        "threshold": float(threshold),
                    }
    if not chosen:
        return {"found": False}
    return {"found": True, **chosen, **_outcome(signals, chosen)}


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    found = np.percentile(np.asarray(values, dtype=float), PERCENTILES)
    return {f"p{p}": round(float(v), 4) for p, v in zip(PERCENTILES, found, strict=True)}


def _share(flags: np.ndarray) -> float:
    return round(float(np.mean(flags)), 4) if len(flags) else 0.0
