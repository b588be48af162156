"""StreamingRecognizer: events, speculation reuse, end of stream."""

from __future__ import annotations

from asr_tts.asr import AsrOptions, character_error_rate
from asr_tts.audio import InputAudioFormat
from asr_tts.recognizer import (
    PartialDue,
    StreamingRecognizer,
    UtteranceEnded,
    VoicePaused,
    VoiceStarted,
)
from asr_tts.vad import EndpointerConfig

CHUNK_BYTES = 640  # 20 ms of 16 kHz PCM16


def open_recognizer(engine, partial_interval_ms: int = 0) -> StreamingRecognizer:
    return StreamingRecognizer(
        InputAudioFormat("pcm16", 16000),
        engine,
        EndpointerConfig(),
        AsrOptions(partial_interval_ms=partial_interval_ms),
    )


def pcm16(recording) -> bytes:
    from asr_tts.audio import float_to_pcm16

    return float_to_pcm16(recording.samples_16k()).tobytes()


def run(recognizer, data: bytes, speculate_first_pause_only: bool = False):
    events, finals, speculated = [], [], False
    for start in range(0, len(data), CHUNK_BYTES):
        for event in recognizer.feed(data[start : start + CHUNK_BYTES]):
            events.append(event)
            if isinstance(event, VoicePaused) and not (speculate_first_pause_only and speculated):
                recognizer.speculate()
                speculated = True
            elif isinstance(event, UtteranceEnded):
                finals.append(recognizer.finalize().text)
    for event in recognizer.end_of_stream():
        events.append(event)
        if isinstance(event, UtteranceEnded):
            finals.append(recognizer.finalize().text)
    return events, finals


def test_utterance_events_in_order(whisper_engine, mandarin_recording) -> None:
    recognizer = open_recognizer(whisper_engine)
    events, finals = run(recognizer, pcm16(mandarin_recording) + bytes(32 * 1500))
    kinds = [type(e).__name__ for e in events]
    assert kinds[0] == "VoiceStarted"
    assert kinds[-1] == "UtteranceEnded"
    ended = events[-1]
    assert ended.reason == "silence"
    assert ended.start_ms < ended.last_voice_ms <= ended.end_ms
    assert len(finals) == 1
    assert character_error_rate(finals[0], mandarin_recording.transcript) <= 0.2


def test_stale_speculation_not_reused(whisper_engine, mandarin_recording) -> None:
    """A speculation made at an earlier pause must not stand for the whole utterance."""
    recognizer = open_recognizer(whisper_engine)
    _, finals = run(
        recognizer, pcm16(mandarin_recording) + bytes(32 * 1500), speculate_first_pause_only=True
    )
    assert character_error_rate(finals[0], mandarin_recording.transcript) <= 0.2


def test_end_of_stream_closes_utterance(whisper_engine, mandarin_recording) -> None:
    recognizer = open_recognizer(whisper_engine)
    events, finals = run(recognizer, pcm16(mandarin_recording))
    assert events[-1].reason == "end_of_stream"
    assert character_error_rate(finals[0], mandarin_recording.transcript) <= 0.2


def test_end_utterance_control(whisper_engine, mandarin_recording) -> None:
    recognizer = open_recognizer(whisper_engine)
    data = pcm16(mandarin_recording)
    for start in range(0, len(data), CHUNK_BYTES):
        recognizer.feed(data[start : start + CHUNK_BYTES])
    events = recognizer.end_utterance()
    assert isinstance(events[0], UtteranceEnded)
    assert events[0].reason == "end_of_utterance"
    assert recognizer.finalize().text
    assert recognizer.end_utterance() == []


def test_partials_due_at_interval(whisper_engine, mandarin_recording) -> None:
    recognizer = open_recognizer(whisper_engine, partial_interval_ms=1000)
    data = pcm16(mandarin_recording)
    due = 0
    for start in range(0, len(data), CHUNK_BYTES):
        due += sum(
            isinstance(e, PartialDue) for e in recognizer.feed(data[start : start + CHUNK_BYTES])
        )
    assert 3 <= due <= 5
    assert recognizer.partial().text


def test_silence_has_no_events(whisper_engine) -> None:
    recognizer = open_recognizer(whisper_engine)
    events = recognizer.feed(bytes(32 * 60_000)) + recognizer.end_of_stream()
    assert events == []


def test_voice_started_offset(whisper_engine, mandarin_recording) -> None:
    recognizer = open_recognizer(whisper_engine)
    events = recognizer.feed(bytes(32 * 2000) + pcm16(mandarin_recording))
    started = [e for e in events if isinstance(e, VoiceStarted)]
    assert started and 1700 <= started[0].offset_ms <= 3200
