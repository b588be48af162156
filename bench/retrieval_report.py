"""Render retrieval results files as the Markdown tables of docs/benchmarks.md.

.venv/bin/python -m bench.retrieval_report bench/results/retrieval-<date>.json [MORE ...]

The first file gives every table; the latency tables also get the rows of the others.
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


def render(results: dict[str, Any], runs: list[tuple[str, dict[str, Any]]] | None = None) -> str:
    """Return the Markdown tables of one results file.

    Args:
        runs: (label, results) of every file whose latency rows to show; by default
            `results` alone.
    """
    sections = [
        _quality_table(results),
        _baseline_table(results),
        _domain_table(results),
        _slot_table(results),
        _distribution_tables(results),
        _calibration_table(results),
        latency_tables(runs or [("this run", results)]),
        search_settings_table(results),
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


def latency_tables(runs: list[tuple[str, dict[str, Any]]]) -> str:
    """Return the store and baseline latency tables of one or more results files.

    Args:
        runs: (label, results) per file, in the order the rows should appear.
    """
    store_rows, baseline_rows = [], []
    for label, results in runs:
        latency = results.get("latency")
        if not latency:
            continue
        index = _index_mode(results["settings"])
        for size, point in latency["sizes"].items():
            store_rows.append([label, index, *_store_cells(size, point)])
            baseline_rows.append([label, f"{int(size):,}", *_baseline_cells(point)])
    if not store_rows:
        return ""

    store_header = ["run", "dense index, BM25 IDF", "tenant passages", "collection points"]
    store_header += ["first pass p50", "p99"]
    store_header += ["store p50", "store p99", "other IDF p50", "p99", "dense p50", "sparse p50"]
    store_header += ["count p50", "search + embedding p50", "p99", "index build s"]
    store_header += ["hybrid hit@1 on the padded tenant"]
    first = next(r for _, r in runs if r.get("latency"))
    names = list(next(iter(first["latency"]["sizes"].values()))["baselines"])
    baseline_header = ["run", "tenant passages"]
    for name in names:
        baseline_header += [f"{name} p50", "p99"]
    baseline_header += ["faster baseline p50 / store p50"]
    return (
        "kefu, in ms:\n\n"
        + _table(store_header, store_rows)
        + "\n\nBaselines, in ms:\n\n"
        + _table(baseline_header, baseline_rows)
    )


def search_settings_table(results: dict[str, Any]) -> str:
    """Return hybrid latency and padded hit@1 per HNSW ef and with exact search."""
    rows = []
    for size, point in (results.get("latency") or {}).get("sizes", {}).items():
        for name, figures in point.get("search_settings", {}).items():
            store = figures["store_hybrid_ms"]
            label = name.replace("hnsw_ef_", "HNSW, ef ") if name != "exact" else "exact"
            rows.append(
                [
                    f"{int(size):,}",
                    label,
                    f"{store['p50']:.2f}",
                    f"{store['p99']:.2f}",
                    f"{figures['padded_hybrid_hit_at_1']:.3f}",
                ]
            )
    if not rows:
        return ""
    header = ["tenant passages", "dense search", "store p50", "p99", "hybrid hit@1, padded tenant"]
    return _table(header, rows)


def _index_mode(settings: dict[str, Any]) -> str:
    # Files before the vector_index setting had boolean hnsw and optimize settings, and
    # counted IDF over the tenant.
    if "vector_index" in settings:
        index = "HNSW per tenant" if settings["vector_index"] == "hnsw" else "exact"
        return f"{index}, {settings['bm25_idf']}"
    if settings.get("hnsw"):
        return "HNSW, built after padding, tenant"
    if settings.get("optimize"):
        return "exact, segments optimized, tenant"
    return "exact, tenant"


def _store_cells(size: str, point: dict[str, Any]) -> list[str]:
    store = point["store_hybrid_ms"]
    search = point["search_with_embedding_ms"]
    count = point.get("store_count_ms")
    other_idf = next((v for k, v in point.items() if k.startswith("store_hybrid_idf_")), None)
    build_s = point.get("index_build_s", point.get("hnsw_build_s"))
    first = point.get("store_hybrid_first_pass_ms")
    return [
        f"{int(size):,}",
        f"{point['collection_points']:,}",
        f"{first['p50']:.2f}" if first else "not timed",
        f"{first['p99']:.2f}" if first else "",
        f"{store['p50']:.2f}",
        f"{store['p99']:.2f}",
        f"{other_idf['p50']:.2f}" if other_idf else "not timed",
        f"{other_idf['p99']:.2f}" if other_idf else "",
        f"{point['store_dense_ms']['p50']:.2f}",
        f"{point['store_sparse_ms']['p50']:.2f}",
        f"{count['p50']:.2f}" if count else "not timed",
        f"{search['p50']:.1f}",
        f"{search['p99']:.1f}",
        f"{build_s:.0f}" if build_s else "none",
        f"{point['padded_hybrid_hit_at_1']:.3f}",
    ]


def _baseline_cells(point: dict[str, Any]) -> list[str]:
    baselines = point["baselines"]
    cells = []
    for figures in baselines.values():
        cells += [f"{figures['query_ms']['p50']:.1f}", f"{figures['query_ms']['p99']:.1f}"]
    fastest = min(f["query_ms"]["p50"] for f in baselines.values())
    cells.append(f"{fastest / point['store_hybrid_ms']['p50']:.2f}×")
    return cells


def _target_table(results: dict[str, Any]) -> str:
    rows = [
        [name, target["target"], target["value"], "met" if target["met"] else "**missed**"]
        for name, target in results["targets"].items()
    ]
    return _table(["target", "wanted", "measured", "result"], rows)


def main(argv: list[str] | None = None) -> int:
    """Print the tables of the first results file, with the latency rows of every file."""
    paths = [Path(arg) for arg in (sys.argv[1:] if argv is None else argv)]
    if not paths:
        print(
            "usage: python -m bench.retrieval_report RESULTS.json [MORE.json ...]", file=sys.stderr
        )
        return 2
    runs = []
    for path in paths:
        results = json.loads(path.read_text(encoding="utf-8"))
        runs.append((f"{path.name} at {results['commit'][:7]}", results))
    print(render(runs[0][1], runs), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
