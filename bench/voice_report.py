"""Render a voice results file as the Markdown tables of docs/benchmarks.md.

.venv/bin/python -m bench.voice_report bench/results/voice-<date>.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

# (key in stages_ms, label, where the figure comes from)
STAGE_ROWS = (
    ("last_voice_to_first_audio_ms", "last voiced frame sent → first audio received", "client"),
    ("last_voice_to_speech_ended_ms", "endpointing wait (→ speech-ended event)", "client"),
    ("asr_final", "final ASR after the end was detected", "asr_final"),
    ("queue", "queue", "queue"),
    ("dialogue", "dialogue", "dialogue"),
    ("retrieval", "retrieval", "retrieval"),
    ("answer", "answer", "answer"),
    ("tts_first_chunk", "TTS first chunk", "tts_first_chunk"),
    ("to_first_audio", "answer start → first audio", "to_first_audio"),
    ("unaccounted_ms", "not covered by the stages above", "client"),
)


def render(results: dict[str, Any]) -> str:
    """Return the Markdown tables for one results file."""
    sections = [
        _asr_table(results),
        _latency_table(results),
        _stage_table(results),
        _keep_up_table(results),
        _by_turn_table(results),
        _limit_table(results),
        _tts_table(results),
        _target_table(results),
    ]
    return "\n\n".join(section for section in sections if section) + "\n"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _ms(stats: dict[str, float], key: str = "p50") -> str:
    value = stats.get(key) if stats else None
    return "–" if value is None else f"{value:.0f}"


def _asr_table(results: dict[str, Any]) -> str:
    rows = [
        [
            name,
            f"{row['audio_ms'] / 1000:.2f}",
            f"{_ms(row['decode_ms'])} ({_ms(row['decode_ms'], 'max')})",
            f"{row['rtf']:.2f}",
            f"{row['cer']:.2f}",
        ]
        for name, row in results["asr_rtf"].items()
    ]
    header = ["recording", "audio s", "final decode ms p50 (max)", "RTF", "CER"]
    return _table(header, rows)


def _latency_table(results: dict[str, Any]) -> str:
    rows = []
    for count, level in results["levels"].items():
        stages = level["stages_ms"]
        total = stages["last_voice_to_first_audio_ms"]
        rows.append(
            [
                count,
                f"{level['turns_answered']}/{level['turns_planned']}",
                f"{_ms(total)} / {_ms(total, 'p99')}",
                f"{_ms(stages['last_voice_to_final_transcript_ms'])} / "
                f"{_ms(stages['last_voice_to_final_transcript_ms'], 'p99')}",
                f"{_ms(stages['transcript_to_first_audio_ms'])} / "
                f"{_ms(stages['transcript_to_first_audio_ms'], 'p99')}",
            ]
        )
    header = [
        "callers",
        "turns answered",
        "last voice → first audio p50 / p99 ms",
        "last voice → final transcript p50 / p99 ms",
        "final transcript → first audio p50 / p99 ms",
    ]
    return _table(header, rows)


def _keep_up_table(results: dict[str, Any]) -> str:
    rows = []
    for count, level in results["levels"].items():
        decoder = level["decoder"]
        rows.append(
            [
                count,
                _ms(level["stages_ms"]["endpoint_lag_ms"], "p99"),
                _growth(level),
                {True: "yes", False: "no", None: "–"}[level["keeps_up"]],
                decoder["decodes_per_turn"],
                f"{_ms(decoder['decode_call_ms'])} / {_ms(decoder['decode_call_ms'], 'p99')}",
                f"{decoder['decoder_busy_share']:.0%}",
                level["max_send_lateness_ms"],
                level["cpu_use"]["own_cores"],
                level["cpu_use"]["other_cores"],
            ]
        )
    header = [
        "callers",
        "endpoint lag p99 ms",
        "growth ms/turn ± SE",
        "keeps up",
        "decodes per turn",
        "decode call p50 / p99 ms",
        "decoder busy",
        "max send lateness ms",
        "cores busy, bench process",
        "cores busy, other processes",
    ]
    return _table(header, rows)


def _growth(level: dict[str, Any]) -> str:
    slope = level["final_transcript_growth_ms_per_turn"]
    if slope is None:
        return "–"
    return f"{slope:.0f} ± {level['final_transcript_growth_standard_error']:.0f}"


def _stage_table(results: dict[str, Any]) -> str:
    levels = results["levels"]
    rows = []
    for key, label, source in STAGE_ROWS:
        cells = [f"{_ms(level['stages_ms'].get(key, {}))} / "
                 f"{_ms(level['stages_ms'].get(key, {}), 'p99')}"
                 for level in levels.values()]  # fmt: skip
        rows.append([label, f"`{source}`" if source != "client" else "client", *cells])
    header = ["stage (ms)", "source", *[f"{count} caller(s) p50 / p99" for count in levels]]
    return _table(header, rows)


def _by_turn_table(results: dict[str, Any]) -> str:
    levels = results["levels"]
    turns = max(len(level["by_turn"]) for level in levels.values())
    rows = []
    for index in range(turns):
        row: list[Any] = [index + 1]
        for level in levels.values():
            entry = level["by_turn"][index] if index < len(level["by_turn"]) else {}
            value = entry.get("last_voice_to_final_transcript_ms_mean")
            row.append("–" if value is None else f"{value:.0f}")
        rows.append(row)
    header = ["turn", *[f"{count} caller(s)" for count in levels]]
    return "Mean last voice → final transcript (ms) by turn:\n\n" + _table(header, rows)


def _limit_table(results: dict[str, Any]) -> str:
    limit = results["default_limit"]
    outcomes = [("opened together", o) for o in limit["outcomes"]]
    outcomes += [("opened after the rejections", o) for o in limit["outcomes_after_rejections"]]
    rows = [
        [number + 1, phase, outcome["outcome"], outcome["after_ms"]]
        for number, (phase, outcome) in enumerate(outcomes)
    ]
    header = ["stream", "when", "first reply", "after ms"]
    return f"max_voice_streams={limit['max_voice_streams']}:\n\n" + _table(header, rows)


def _tts_table(results: dict[str, Any]) -> str:
    rows = [
        [
            row["text_id"],
            row["chars"],
            row["sentences"],
            f"{row['audio_ms'] / 1000:.1f}",
            _ms(row["first_chunk_ms"]),
            _ms(row["whole_answer_ms"]),
        ]
        for row in results["tts"]
    ]
    header = ["answer", "chars", "sentences", "audio s", "first chunk ms p50", "whole ms p50"]
    return _table(header, rows)


def _target_table(results: dict[str, Any]) -> str:
    target = results["targets"]["transcript_to_first_audio_p50_ms_at_1_stream"]
    rows = [
        [
            "final transcript → first audio, p50, 1 caller",
            f"< {target['target']:.0f} ms",
            _ms({"p50": target["value"]}),
            "met" if target["met"] else "missed",
        ]
    ]
    return _table(["target", "goal", "measured", "result"], rows)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m bench.voice_report RESULTS.json", file=sys.stderr)
        return 2
    print(render(json.loads(Path(argv[0]).read_text("utf-8"))), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
