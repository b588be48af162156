"""Render a retrieval results file as the Markdown tables of docs/benchmarks.md.

.venv/bin/python -m bench.retrieval_report bench/results/retrieval-<date>.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

MODES = ("dense", "sparse", "hybrid")
GROUPS = {
    "positives_top1_right": "turns, right top hit",
    "positives_top1_wrong": "turns, wrong top hit",
    "negatives": "off-topic questions",
}
SHOWN_PERCENTILES = ("p5", "p25", "p50", "p75", "p95")


def render(results: dict[str, Any]) -> str:
    """Return the Markdown tables for one results file."""
    sections = [
        _quality_table(results),
        _baseline_table(results),
        _domain_table(results),
        _slot_table(results),
        _distribution_tables(results),
        _calibration_table(results),
        _latency_table(results),
        _target_table(results),
    ]
    return "\n\n".join(section for section in sections if section) + "\n"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _quality_table(results: dict[str, Any]) -> str:
    rows = []
    for model, report in results["quality"].items():
        for mode in MODES:
            m = report["modes"][mode]
            rows.append(
                [
                    model,
                    mode,
                    f"{m['hit_at_1']:.3f}",
                    f"{m['mrr_at_10']:.3f}",
                    f"{m['answer_has_value']:.3f}",
                    f"{m['fallback_rate']:.3f}",
                    f"{m['negatives_fallback_rate']:.3f}",
                ]
            )
    header = [
        "embedder",
        "mode",
        "hit@1",
        "MRR@10",
        "answer has value",
        "fallback (turns)",
        "fallback (off-topic)",
    ]
    return _table(header, rows)


def _baseline_table(results: dict[str, Any]) -> str:
    rows = []
    for model, report in results["quality"].items():
        rows.append(
            ["kefu hybrid (Qdrant Edge, RRF k=2)", model, *_hit_mrr(report["modes"]["hybrid"])]
        )
        for name, figures in report["baselines_real_set"].items():
            rows.append([f"{name} (RRF k=60)", model, *_hit_mrr(figures)])
    return _table(["retriever", "embedder", "hit@1", "MRR@10"], rows)


def _hit_mrr(figures: dict[str, float]) -> list[str]:
    return [f"{figures['hit_at_1']:.3f}", f"{figures['mrr_at_10']:.3f}"]


def _domain_table(results: dict[str, Any]) -> str:
    models = list(results["quality"])
    first = results["quality"][models[0]]["hybrid_by_domain"]
    rows = []
    for domain, figures in first.items():
        hits = [
            f"{results['quality'][m]['hybrid_by_domain'][domain]['hit_at_1']:.3f}" for m in models
        ]
        rows.append([domain, figures["turns"], *hits])
    return _table(["domain", "turns", *[f"hybrid hit@1, {m}" for m in models]], rows)


def _slot_table(results: dict[str, Any]) -> str:
    models = list(results["quality"])
    first = results["quality"][models[0]]["hybrid_answers_by_slot"]
    rows = []
    for slot, figures in first.items():
        shares = [
            f"{results['quality'][m]['hybrid_answers_by_slot'][slot]['answer_has_value']:.3f}"
            for m in models
        ]
        rows.append([slot, figures["requests"], *shares])
    return _table(
        ["requested field", "requests", *[f"answer has value, {m}" for m in models]], rows
    )


def _distribution_tables(results: dict[str, Any]) -> str:
    tables = []
    for model, report in results["quality"].items():
        rows = []
        for signal in ("similarity", "coverage", "confidence"):
            for group, label in GROUPS.items():
                found = report["calibration"]["distributions"][group][signal]
                rows.append([signal, label, *[f"{found[p]:.3f}" for p in SHOWN_PERCENTILES]])
        header = ["signal", "group", *SHOWN_PERCENTILES]
        tables.append(f"{model}, hybrid mode:\n\n" + _table(header, rows))
    return "\n\n".join(tables)


def _calibration_table(results: dict[str, Any]) -> str:
    rows = []
    for model, report in results["quality"].items():
        calibration = report["calibration"]
        for label, key in (
            ("current", "current"),
            ("suggested, threshold 0.4", "suggested_at_threshold_0.4"),
            ("suggested", "suggested"),
        ):
            c = calibration[key]
            if not c.get("found", True):
                rows.append([model, label, "none found", "", "", "", "", "", ""])
                continue
            rows.append(
                [
                    model,
                    label,
                    c["similarity_floor"],
                    c["similarity_ceiling"],
                    c["threshold"],
                    f"{c['right_hits_answered']:.3f}",
                    f"{c['wrong_hits_fallback']:.3f}",
                    f"{c['negatives_fallback']:.3f}",
                    f"{c['max_negative_confidence']:.3f}",
                ]
            )
    header = [
        "embedder",
        "calibration",
        "floor",
        "ceiling",
        "threshold",
        "right hits answered",
        "wrong hits fall back",
        "off-topic fall back",
        "max off-topic confidence",
    ]
    return _table(header, rows)


def _latency_table(results: dict[str, Any]) -> str:
    latency = results.get("latency")
    if not latency:
        return ""
    rows = []
    for size, point in latency["sizes"].items():
        store = point["store_hybrid_ms"]
        search = point["search_with_embedding_ms"]
        baselines = point["baselines"]
        cells = [f"{int(size):,}", f"{point['collection_points']:,}"]
        cells += [f"{store['p50']:.2f}", f"{store['p99']:.2f}"]
        cells += [f"{search['p50']:.1f}", f"{search['p99']:.1f}"]
        for figures in baselines.values():
            cells += [f"{figures['query_ms']['p50']:.1f}", f"{figures['query_ms']['p99']:.1f}"]
        fastest = min(f["query_ms"]["p50"] for f in baselines.values())
        cells.append(f"{fastest / store['p50']:.2f}×")
        cells.append(f"{point['padded_hybrid_hit_at_1']:.3f}")
        rows.append(cells)
    names = list(next(iter(latency["sizes"].values()))["baselines"])
    header = ["tenant passages", "collection points", "store p50", "store p99"]
    header += ["search + embedding p50", "p99"]
    for name in names:
        header += [f"{name} p50", "p99"]
    header += ["faster baseline p50 / store p50", "hybrid hit@1 on the padded tenant"]
    return f"Latency in ms, embedder {latency['embedder']}:\n\n" + _table(header, rows)


def _target_table(results: dict[str, Any]) -> str:
    rows = [
        [name, target["target"], target["value"], "met" if target["met"] else "**missed**"]
        for name, target in results["targets"].items()
    ]
    return _table(["target", "wanted", "measured", "result"], rows)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m bench.retrieval_report RESULTS.json", file=sys.stderr)
        return 2
    results = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    print(render(results), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
