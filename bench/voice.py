"""Voice benchmark: recognition speed, turn latency under concurrent real-time callers, TTS.

A kefu server runs in this process (`server.app.ServerThread`, data in a temporary
folder, the sample knowledge of data/samples ingested as tenant `shop`). Callers are
Converse streams that speak two real Mandarin recordings in real time, as 20 ms chunks of
16 kHz PCM16 paced by the wall clock. Each recording is followed by 1.5 s of silence and
then by more silence until the answer's audio would have finished playing, because a
caller listens before speaking again. Answers come back as text deltas and 16 kHz PCM16
audio. The callers run in this process too, so they share the CPU cores with the server,
and each run records how late the callers sent their chunks. The recordings' content is
not in the knowledge base, so every answer is a fallback. Retrieval and the answer engine
still run in full for a fallback, so only the spoken text differs from a matched answer.

Figures: the real-time factor of the final Whisper decode, the time from the caller's
last voiced frame to the first answer audio chunk at 1, 2 and 4 concurrent callers with
its stages from TurnEnd.latency_ms, whether the server falls behind real time, the time
from the final transcript to the first audio, what the default limit of two voice streams
does to a third and fourth caller, and espeak-ng's time to the first chunk beside the time
for the whole answer.

Run from the repository root:
    .venv/bin/python -m bench.voice --out bench/results/voice-$(date +%F).json
"""

# ruff: noqa: E402 (the environment is set before numpy is imported)
from __future__ import annotations

import os

# One BLAS thread per process, set before numpy loads: a second thread on two cores stalls
# the other stages.
os.environ["OPENBLAS_NUM_THREADS"] = "1"

import argparse
import csv
import datetime
import json
import logging
import math
import platform
import queue
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from asr_tts.asr import AsrOptions, character_error_rate
from asr_tts.audio import InputAudioFormat, OutputAudioFormat, decode_audio, float_to_pcm16
from asr_tts.tts import split_sentences
from asr_tts.vad import Endpointer, SilenceStarted, SpeechEnded
from kefu_api.v1 import assistant_pb2, assistant_pb2_grpc, common_pb2
from server.app import ServerThread, shared_voice_engines
from server.client import KefuClient
from server.config import Settings
from server.voice import DEFAULT_SILENCE_MS, EndpointingOptions, speak

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SAMPLES = REPO / "data" / "samples"
# The Whisper base model (145 MB) is joined here on the first run and reused after that.
MODEL_CACHE = Path(tempfile.gettempdir()) / "kefu-bench-models"
TENANT = "shop"
# (name, folder under ../shared/data, file); both are 16 kHz mono PCM16 WAV files.
RECORDINGS = (
    ("funasr-example", "audio-zh-funasr-asr-example", "asr_example.wav"),
    ("paddlespeech-zh", "audio-zh-paddlespeech-zh", "zh.wav"),
)
PACKAGES = ("faster-whisper", "ctranslate2", "numpy", "grpcio", "pypinyin")

SAMPLE_RATE_HZ = 16_000
BYTES_PER_MS = SAMPLE_RATE_HZ * 2 // 1000
CHUNK_MS = 20
CHUNK_BYTES = CHUNK_MS * BYTES_PER_MS
TRAILING_SILENCE_MS = 1500
# Longest wait for a turn's answer after the trailing silence before the caller moves on.
ANSWER_TIMEOUT_S = 30.0
SESSION_START_TIMEOUT_S = 30.0
PCM16_16K = common_pb2.AudioFormat(
    encoding=common_pb2.AUDIO_ENCODING_PCM16, sample_rate_hz=SAMPLE_RATE_HZ
)
# The server's endpointer; SpeechEnded fires after this much silence past the last voiced
# frame (DEFAULT_SILENCE_MS rounded up to whole VAD frames).
ENDPOINTER = EndpointingOptions().endpointer_config()
END_SILENCE_MS = math.ceil(DEFAULT_SILENCE_MS / ENDPOINTER.frame_ms) * ENDPOINTER.frame_ms

# Target: final transcript received to first answer audio received, p50 at one caller.
TARGET_TRANSCRIPT_TO_AUDIO_MS = 200.0
# A level keeps up with real time when two things hold. First, the end-of-speech event
# reaches the caller within KEEP_UP_LAG_MS (p99) of sending the audio that proves the end.
# Second, the time from end of speech to the final transcript does not grow over the
# turns. Its least-squares slope over the turns of all callers must be below
# KEEP_UP_GROWTH_MS per turn, or not above zero by two standard errors, because with 8
# turns noise alone gives slopes of tens of ms per turn.
KEEP_UP_LAG_MS = 100.0
KEEP_UP_GROWTH_MS = 50.0


@dataclass(frozen=True)
class Recording:
    """A real recording, as the callers send it.

    Attributes:
        pcm: 16 kHz mono PCM16 little-endian bytes, a whole number of 20 ms chunks.
        duration_ms: length of the file's audio.
        last_voice_ms: end of the last voiced frame in the file by the server's endpointer.
    """

    name: str
    path: Path
    transcript: str
    samples: np.ndarray
    pcm: bytes
    duration_ms: float
    last_voice_ms: int


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    recordings = load_recordings()
    if isinstance(recordings, str):
        print(f"voice benchmark skipped: {recordings}", file=sys.stderr)
        return 2

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    started = time.perf_counter()
    results: dict[str, Any] = {
        "benchmark": "voice",
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, "-m", "bench.voice", *sys.argv[1:]]),
        **environment(),
        "settings": _settings(args),
        "recordings": [_recording_summary(r) for r in recordings],
    }

    MODEL_CACHE.mkdir(parents=True, exist_ok=True)
    engines = shared_voice_engines("whisper", "espeak", MODEL_CACHE, None)
    results["whisper_config"] = _whisper_config(engines.asr)
    print("timing the final Whisper decode of each recording")
    cpu = CpuSnapshot.take()
    results["asr_rtf"] = measure_asr_rtf(engines.asr, recordings, args.reps)
    results["cpu_use"] = {"asr_rtf": CpuSnapshot.take().since(cpu)}
    decodes = DecodeLog(engines.asr)

    work = Path(tempfile.mkdtemp(prefix="kefu-bench-voice-"))
    try:
        results["default_limit"] = run_default_limit(work, args)
        results["levels"] = run_levels(work, recordings, args, decodes)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print("timing espeak-ng on FAQ answers")
    texts = tts_texts(results["levels"])
    cpu = CpuSnapshot.take()
    results["tts"] = measure_tts(engines.tts, texts, args.reps)
    results["cpu_use"]["tts"] = CpuSnapshot.take().since(cpu)
    results["targets"] = check_targets(results)
    results["runtime_s"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, ensure_ascii=False, indent=1) + "\n", "utf-8")
    print_summary(results)
    print(f"wrote {args.out} after {results['runtime_s']} s")
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    today = datetime.date.today().isoformat()
    parser = argparse.ArgumentParser(
        prog="python -m bench.voice",
        description="Measure ASR speed, voice turn latency under concurrent real-time "
        "callers, and TTS time to first chunk.",
    )
    parser.add_argument(
        "--streams",
        default="1,2,4",
        help="comma-separated counts of concurrent callers, one run each (default: 1,2,4)",
    )
    parser.add_argument(
        "--turns",
        type=int,
        default=8,
        help="turns per caller; the two recordings alternate (default: 8)",
    )
    parser.add_argument(
        "--stagger-ms",
        type=int,
        default=1000,
        help="delay between the starts of consecutive callers, in ms (default: 1000)",
    )
    parser.add_argument(
        "--reps",
        type=int,
        default=3,
        help="timed repetitions of each direct ASR and TTS measurement, after one "
        "warm-up (default: 3)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: streams 1,2, 2 turns, 1 repetition; its figures are not "
        "comparable with a full run",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO / "bench" / "results" / f"voice-{today}.json",
        help="results JSON file (default: bench/results/voice-<date>.json)",
    )
    args = parser.parse_args(argv)

    if args.quick:
        args.streams, args.turns, args.reps = "1,2", 2, 1
    try:
        args.streams = sorted({int(count) for count in args.streams.split(",") if count})
    except ValueError:
        parser.error(f"invalid --streams {args.streams!r}: expected integers such as 1,2,4")
    if not args.streams or args.streams[0] < 1:
        parser.error(f"invalid --streams {args.streams}: counts must be 1 or more")
    for name in ("turns", "reps"):
        if getattr(args, name) < 1:
            parser.error(f"invalid --{name} {getattr(args, name)}: must be 1 or more")
    if args.stagger_ms < 0:
        parser.error(f"invalid --stagger-ms {args.stagger_ms}: must be 0 or more")
    return args


# recordings


def load_recordings() -> list[Recording] | str:
    """Load both recordings, or return a message naming the first one that is missing."""
    recordings = []
    for name, folder_name, file_name in RECORDINGS:
        folder = SHARED_DATA / folder_name
        path = folder / file_name
        if not path.is_file() or not (folder / "SOURCE.txt").is_file():
            return (
                f"recording {path} or its SOURCE.txt is missing; the benchmark needs the "
                f"real Mandarin recordings in {SHARED_DATA}, beside the repository"
            )
        samples = decode_audio(path.read_bytes(), InputAudioFormat("wav"))
        pcm = float_to_pcm16(samples).tobytes()
        pcm += bytes(-len(pcm) % CHUNK_BYTES)
        recordings.append(
            Recording(
                name=name,
                path=path,
                transcript=_transcript_from_source(folder / "SOURCE.txt"),
                samples=samples,
                pcm=pcm,
                duration_ms=len(samples) * 1000 / SAMPLE_RATE_HZ,
                last_voice_ms=_last_voice_ms(samples),
            )
        )
    return recordings


def _transcript_from_source(path: Path) -> str:
    match = re.search(r"^transcript[^:]*:\s*(\S+)", path.read_text("utf-8"), re.MULTILINE)
    if match is None:
        raise ValueError(f"{path} has no 'transcript ...: TEXT' line")
    return match.group(1)


def _last_voice_ms(samples: np.ndarray) -> int:
    """Return where the server's endpointer puts the end of the last voiced frame, in ms."""
    endpointer = Endpointer(ENDPOINTER, sample_rate_hz=SAMPLE_RATE_HZ)
    silence = np.zeros(SAMPLE_RATE_HZ * TRAILING_SILENCE_MS // 1000, dtype=np.float32)
    last_voice = 0
    for event in endpointer.feed(np.concatenate([samples, silence])) + endpointer.flush():
        if isinstance(event, SilenceStarted):
            last_voice = event.end_sample
        elif isinstance(event, SpeechEnded):
            break
    return last_voice * 1000 // SAMPLE_RATE_HZ


def _recording_summary(recording: Recording) -> dict[str, Any]:
    return {
        "name": recording.name,
        "file": str(recording.path.relative_to(SHARED_DATA)),
        "transcript": recording.transcript,
        "duration_ms": round(recording.duration_ms, 1),
        "last_voice_ms": recording.last_voice_ms,
    }


# direct ASR and TTS timings


def measure_asr_rtf(engine: Any, recordings: list[Recording], reps: int) -> dict[str, Any]:
    """Time the final decode (beam search, as configured) of each whole recording.

    The real-time factor is the median decode time over the file's duration.
    """
    report = {}
    for recording in recordings:
        times_ms = []
        text = ""
        for rep in range(reps + 1):
            stream = engine.open_stream(AsrOptions(language="zh", partial_interval_ms=0))
            stream.accept(recording.samples)
            started = time.perf_counter()
            text = stream.finalize().text
            if rep:  # the first decode is a warm-up
                times_ms.append((time.perf_counter() - started) * 1000)
        decode_ms = statistics.median(times_ms)
        report[recording.name] = {
            "audio_ms": round(recording.duration_ms, 1),
            "decode_ms": _stats(times_ms),
            "rtf": round(decode_ms / recording.duration_ms, 3),
            "transcript": text,
            "cer": round(character_error_rate(text, recording.transcript), 3),
        }
    return report


def tts_texts(levels: dict[str, Any]) -> list[tuple[str, str]]:
    """Pick the shortest, median and longest FAQ answers and the callers' fallback answer."""
    with (SAMPLES / "faq.csv").open(encoding="utf-8", newline="") as handle:
        answers = sorted({row["answer"] for row in csv.DictReader(handle)}, key=len)
    texts = [
        ("faq-short", answers[0]),
        ("faq-median", answers[len(answers) // 2]),
        ("faq-long", answers[-1]),
    ]
    fallbacks = [
        turn["answer"] for level in levels.values() for turn in level["turns"] if turn["answer"]
    ]
    if fallbacks:
        texts.append(("fallback", statistics.mode(fallbacks)))
    return texts


def measure_tts(tts: Any, texts: list[tuple[str, str]], reps: int) -> list[dict[str, Any]]:
    """Time `server.voice.speak` to its first chunk and to its last, as a turn speaks."""
    output = OutputAudioFormat("pcm16", SAMPLE_RATE_HZ)
    rows = []
    for label, text in texts:
        first_ms, total_ms, audio_ms = [], [], 0.0
        for rep in range(reps + 1):
            started = time.perf_counter()
            first = None
            audio_ms = 0.0
            for chunk in speak(tts, text, output):
                if first is None:
                    first = time.perf_counter()
                audio_ms += chunk.duration_ms
            if rep:
                first_ms.append((first - started) * 1000)
                total_ms.append((time.perf_counter() - started) * 1000)
        rows.append(
            {
                "text_id": label,
                "text": text,
                "chars": len(text),
                "sentences": len(split_sentences(text)),
                "audio_ms": round(audio_ms),
                "first_chunk_ms": _stats(first_ms),
                "whole_answer_ms": _stats(total_ms),
            }
        )
    return rows


# servers


def bench_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings of a bench server: the defaults, on 127.0.0.1 port 0, data in `data_dir`."""
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "data_dir": data_dir,
        "model_dir": MODEL_CACHE,
        "log_level": "WARNING",
    }
    values.update(overrides)
    return Settings(**values)


def start_server(settings: Settings, ingest: bool) -> ServerThread:
    server = ServerThread(settings)
    if ingest:
        client = KefuClient(server.address)
        try:
            for path in sorted(SAMPLES.iterdir()):
                client.upsert_file(TENANT, path)
        finally:
            client.close()
    return server


def run_default_limit(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Open more voice streams than the default limit admits and record what each gets.

    This server also ingests the samples into `work`, for the servers that follow.
    """
    settings = bench_settings(work)
    server = start_server(settings, ingest=True)
    try:
        warm_up(server.address)
        count = max(4, settings.max_voice_streams + 2)
        print(f"opening {count} voice streams at the default max_voice_streams")
        with grpc.insecure_channel(server.address) as channel:
            stub = assistant_pb2_grpc.AssistantStub(channel)
            probes = [_open_probe(stub, f"bench-limit-{n}") for n in range(count)]
            outcomes = [_probe_outcome(probe) for probe in probes]
            # With the admitted streams still open, the limit must still reject newcomers.
            later = [_open_probe(stub, f"bench-limit-later-{n}") for n in range(2)]
            later_outcomes = [_probe_outcome(probe) for probe in later]
            for probe in probes + later:
                probe["requests"].put(None)
                probe["reader"].join(10)
    finally:
        server.stop()
    return {
        "max_voice_streams": settings.max_voice_streams,
        "streams_opened": count,
        "outcomes": outcomes,
        "outcomes_after_rejections": later_outcomes,
    }


def _open_probe(stub: Any, session_id: str) -> dict[str, Any]:
    requests: queue.Queue = queue.Queue()
    requests.put(assistant_pb2.ConverseRequest(config=_voice_config(session_id)))
    probe: dict[str, Any] = {"requests": requests, "opened": time.perf_counter()}
    first: queue.Queue = queue.Queue()

    def read() -> None:
        try:
            for response in stub.Converse(iter(requests.get, None), timeout=60):
                first.put((time.perf_counter(), response.WhichOneof("event"), ""))
        except grpc.RpcError as exc:
            first.put((time.perf_counter(), exc.code().name, exc.details()))

    probe["first"] = first
    probe["reader"] = threading.Thread(target=read, daemon=True)
    probe["reader"].start()
    return probe


def _probe_outcome(probe: dict[str, Any]) -> dict[str, Any]:
    try:
        received, outcome, details = probe["first"].get(timeout=SESSION_START_TIMEOUT_S)
    except queue.Empty:
        return {"outcome": "no reply", "after_ms": None, "details": ""}
    after_ms = round((received - probe["opened"]) * 1000, 1)
    return {"outcome": outcome, "after_ms": after_ms, "details": details}


def warm_up(address: str) -> None:
    """Ask one typed question with audio output, so the first measured turn loads nothing."""
    config = _voice_config("bench-warm-up")
    requests = [
        assistant_pb2.ConverseRequest(config=config),
        assistant_pb2.ConverseRequest(text=assistant_pb2.TextInput(text="运费怎么算")),
    ]
    with grpc.insecure_channel(address) as channel:
        stub = assistant_pb2_grpc.AssistantStub(channel)
        for _ in stub.Converse(iter(requests), timeout=60):
            pass


def _voice_config(session_id: str) -> assistant_pb2.SessionConfig:
    return assistant_pb2.SessionConfig(
        tenant=TENANT,
        session_id=session_id,
        input_audio=PCM16_16K,
        output_audio=PCM16_16K,
        outputs=assistant_pb2.OutputOptions(audio=True, text_deltas=True),
    )


class DecodeLog:
    """Log of every Whisper decode the in-process server runs: start, end and kind.

    It wraps `transcribe_segments` of the shared engine instance. With CTranslate2's
    `num_workers` = 1 a decode waits inside that call while another one runs, so a call's
    duration includes the wait, and the union of the calls is the time the decoder is busy.
    """

    def __init__(self, engine: Any) -> None:
        self.calls: list[tuple[float, float, bool]] = []
        self._lock = threading.Lock()
        decode = engine.transcribe_segments

        def timed(audio: np.ndarray, options: AsrOptions, *, final: bool) -> Any:
            started = time.perf_counter()
            try:
                return decode(audio, options, final=final)
            finally:
                with self._lock:
                    self.calls.append((started, time.perf_counter(), final))

        engine.transcribe_segments = timed

    def mark(self) -> int:
        with self._lock:
            return len(self.calls)

    def summary(self, since: int, wall_s: float, turns: int) -> dict[str, Any]:
        """Count the decodes after call number `since` and the share of time one ran."""
        with self._lock:
            calls = sorted(self.calls[since:])
        busy_s, covered_until = 0.0, -math.inf
        for started, ended, _ in calls:
            busy_s += max(0.0, ended - max(started, covered_until))
            covered_until = max(covered_until, ended)
        return {
            "decodes": len(calls),
            "beam_decodes": sum(1 for call in calls if call[2]),
            "decodes_per_turn": round(len(calls) / turns, 2) if turns else None,
            "decode_call_ms": _stats([(ended - started) * 1000 for started, ended, _ in calls]),
            "decoder_busy_share": round(busy_s / wall_s, 3) if wall_s else None,
        }


# callers


@dataclass
class TurnEvents:
    """Receive times (perf_counter seconds) and contents of one server turn's events."""

    speech_started: float | None = None
    speech_ended: float | None = None
    speech_ended_offset_ms: int = 0
    final_transcript: float | None = None
    transcript: str = ""
    first_delta: float | None = None
    first_audio: float | None = None
    audio_ms: float = 0.0
    answer: str = ""
    turn_end: float | None = None
    reason: str = ""
    latency_ms: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


@dataclass
class PlannedTurn:
    """A recording the caller spoke, where it starts in the stream, and its server turn."""

    recording: Recording
    start_chunk: int
    server_turn: int = 0
    timed_out: bool = False


class Caller:
    """One Converse stream that speaks recordings in real time and listens to the answers.

    Chunk i of the stream covers [i * CHUNK_MS, (i + 1) * CHUNK_MS) ms of its audio. It is
    sent no earlier than `origin + (i + 1) * CHUNK_MS`, the moment a live microphone would
    have captured it, and `send_times[i]` is when it was handed to gRPC.
    """

    def __init__(self, stub: Any, session_id: str, recordings: list[Recording]) -> None:
        self.stub = stub
        self.session_id = session_id
        self.recordings = recordings
        self.requests: queue.Queue = queue.Queue()
        self.turns: dict[int, TurnEvents] = {}
        self.planned: list[PlannedTurn] = []
        self.send_times: list[float] = []
        self.max_lateness_ms = 0.0
        self.error = ""
        self.origin = 0.0
        self._started = threading.Event()
        self._lock = threading.Lock()
        self._reader: threading.Thread | None = None

    def run(self, turns: int, start_delay_s: float) -> None:
        """Speak `turns` recordings, alternating them, each followed by its answer."""
        time.sleep(start_delay_s)
        self.requests.put(assistant_pb2.ConverseRequest(config=_voice_config(self.session_id)))
        self._reader = threading.Thread(target=self._read, name=f"{self.session_id}-reader")
        self._reader.start()
        if not self._started.wait(SESSION_START_TIMEOUT_S) or self.error:
            self.error = self.error or "no session_started event"
            self._close()
            return

        self.origin = time.perf_counter()
        silence = bytes(TRAILING_SILENCE_MS * BYTES_PER_MS)
        for number in range(turns):
            recording = self.recordings[number % len(self.recordings)]
            turn = PlannedTurn(recording, len(self.send_times))
            self.planned.append(turn)
            self._send(recording.pcm)
            self._send(silence)
            deadline = time.perf_counter() + ANSWER_TIMEOUT_S
            while not self._answer_played(turn) and not self.error:
                if time.perf_counter() > deadline:
                    turn.timed_out = True
                    break
                self._send(bytes(CHUNK_BYTES))
            if self.error:
                break
        self._close()

    def _close(self) -> None:
        self.requests.put(None)
        if self._reader is not None:
            self._reader.join(60)

    def _send(self, pcm: bytes) -> None:
        for start in range(0, len(pcm), CHUNK_BYTES):
            deadline = self.origin + (len(self.send_times) + 1) * CHUNK_MS / 1000
            delay = deadline - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            chunk = assistant_pb2.AudioChunk(data=pcm[start : start + CHUNK_BYTES])
            self.requests.put(assistant_pb2.ConverseRequest(audio=chunk))
            sent = time.perf_counter()
            self.send_times.append(sent)
            self.max_lateness_ms = max(self.max_lateness_ms, (sent - deadline) * 1000)

    def _answer_played(self, turn: PlannedTurn) -> bool:
        """Check whether the turn ended and its answer's audio would have finished playing."""
        with self._lock:
            if not turn.server_turn:
                previous = self.planned[-2].server_turn if len(self.planned) > 1 else 0
                started = [n for n, t in self.turns.items() if t.speech_started and n > previous]
                if not started:
                    return False
                turn.server_turn = min(started)
            events = self.turns.get(turn.server_turn)
            if events is None or events.turn_end is None:
                return False
            if events.first_audio is None:
                return True
            return time.perf_counter() >= events.first_audio + events.audio_ms / 1000

    def _read(self) -> None:
        try:
            for response in self.stub.Converse(iter(self.requests.get, None), timeout=3600):
                received = time.perf_counter()
                with self._lock:
                    self._record(response, received)
        except grpc.RpcError as exc:
            self.error = f"{exc.code().name}: {exc.details()}"
        finally:
            self._started.set()

    def _record(self, response: Any, received: float) -> None:
        kind = response.WhichOneof("event")
        if kind == "session_started":
            self._started.set()
            return
        events = self.turns.setdefault(response.turn, TurnEvents())
        if kind == "speech":
            if response.speech.kind == assistant_pb2.SpeechEvent.KIND_SPEECH_STARTED:
                events.speech_started = events.speech_started or received
            else:
                events.speech_ended = received
                events.speech_ended_offset_ms = response.speech.offset_ms
        elif kind == "transcript" and response.transcript.is_final:
            events.final_transcript = received
            events.transcript = response.transcript.text
        elif kind == "answer_delta" and events.first_delta is None:
            events.first_delta = received
        elif kind == "audio":
            events.first_audio = events.first_audio or received
            events.audio_ms += len(response.audio.data) / BYTES_PER_MS
        elif kind == "answer":
            events.answer = response.answer.text
        elif kind == "turn_end":
            events.turn_end = received
            events.reason = response.turn_end.reason
            events.latency_ms = dict(response.turn_end.latency_ms)
        elif kind == "error":
            events.errors.append(f"{response.error.code}: {response.error.message}")

    def send_time_at(self, stream_ms: float) -> float | None:
        """Return when the chunk holding the audio just before `stream_ms` was sent."""
        index = math.ceil(stream_ms / CHUNK_MS) - 1
        if not 0 <= index < len(self.send_times):
            return None
        return self.send_times[index]


def run_levels(
    work: Path, recordings: list[Recording], args: argparse.Namespace, decodes: DecodeLog
) -> dict[str, Any]:
    """Run each concurrency level against one server that admits the largest of them."""
    settings = bench_settings(work, max_voice_streams=max(args.streams))
    server = start_server(settings, ingest=False)
    levels = {}
    try:
        warm_up(server.address)
        for count in args.streams:
            print(f"{count} concurrent caller(s), {args.turns} turns each, in real time")
            cpu, first_decode = CpuSnapshot.take(), decodes.mark()
            callers = run_callers(server.address, recordings, count, args)
            level = summarize_level(callers, args.turns)
            level["cpu_use"] = CpuSnapshot.take().since(cpu)
            wall_s = level["cpu_use"]["wall_s"]
            level["decoder"] = decodes.summary(first_decode, wall_s, level["turns_planned"])
            levels[str(count)] = level
    finally:
        server.stop()
    return levels


def run_callers(
    address: str, recordings: list[Recording], count: int, args: argparse.Namespace
) -> list[Caller]:
    with grpc.insecure_channel(address) as channel:
        stub = assistant_pb2_grpc.AssistantStub(channel)
        callers = []
        threads = []
        for number in range(count):
            # Callers start with different recordings, so their decodes are not in step.
            order = recordings[number % len(recordings) :] + recordings[: number % len(recordings)]
            caller = Caller(stub, f"bench-{count}x-{number}", order)
            delay_s = number * args.stagger_ms / 1000
            thread = threading.Thread(target=caller.run, args=(args.turns, delay_s))
            thread.start()
            callers.append(caller)
            threads.append(thread)
        for thread in threads:
            thread.join()
    return callers


# analysis


def turn_figures(caller: Caller, turn: PlannedTurn, index: int) -> dict[str, Any]:
    """Compute one turn's client-side intervals in ms, with the server's stage latencies.

    The last voiced frame is where the server put it: the end of the utterance minus
    TurnEnd.latency_ms["endpointing"], or the file's own when the turn has no such key.
    """
    events = caller.turns.get(turn.server_turn, TurnEvents())
    recording = turn.recording
    start_ms = turn.start_chunk * CHUNK_MS
    latency = events.latency_ms
    if events.speech_ended is not None and "endpointing" in latency:
        last_voice_ms = events.speech_ended_offset_ms - latency["endpointing"]
    else:
        last_voice_ms = start_ms + recording.last_voice_ms
    last_voice_sent = caller.send_time_at(last_voice_ms)
    end_audio_sent = caller.send_time_at(last_voice_ms + END_SILENCE_MS)

    def since(start: float | None, end: float | None) -> float | None:
        if start is None or end is None:
            return None
        return round((end - start) * 1000, 1)

    row: dict[str, Any] = {
        "caller": caller.session_id,
        "turn": index + 1,
        "recording": recording.name,
        "server_turn": turn.server_turn,
        "reason": events.reason or ("timed_out" if turn.timed_out else "none"),
        "transcript": events.transcript,
        "cer": round(character_error_rate(events.transcript, recording.transcript), 3),
        "answer": events.answer,
        "answer_audio_ms": round(events.audio_ms),
        "last_voice_in_file_ms": round(last_voice_ms - start_ms),
        "errors": events.errors,
        "latency_ms": latency,
        "last_voice_to_speech_ended_ms": since(last_voice_sent, events.speech_ended),
        "endpoint_lag_ms": since(end_audio_sent, events.speech_ended),
        "last_voice_to_final_transcript_ms": since(last_voice_sent, events.final_transcript),
        "last_voice_to_first_audio_ms": since(last_voice_sent, events.first_audio),
        "transcript_to_first_delta_ms": since(events.final_transcript, events.first_delta),
        "transcript_to_first_audio_ms": since(events.final_transcript, events.first_audio),
    }
    total = row["last_voice_to_first_audio_ms"]
    parts = [row["last_voice_to_speech_ended_ms"], latency.get("asr_final")]
    parts += [latency.get("queue"), latency.get("to_first_audio")]
    if total is not None and None not in parts:
        # transport and event-loop time the stage keys leave out
        row["unaccounted_ms"] = round(total - sum(parts), 1)
    return row


STAGES = (
    ("last_voice_to_first_audio_ms", "row"),
    ("last_voice_to_speech_ended_ms", "row"),
    ("asr_final", "latency"),
    ("queue", "latency"),
    ("dialogue", "latency"),
    ("retrieval", "latency"),
    ("answer", "latency"),
    ("tts_first_chunk", "latency"),
    ("to_first_audio", "latency"),
    ("unaccounted_ms", "row"),
    ("last_voice_to_final_transcript_ms", "row"),
    ("transcript_to_first_audio_ms", "row"),
    ("endpoint_lag_ms", "row"),
)


def summarize_level(callers: list[Caller], turns: int) -> dict[str, Any]:
    """Percentiles of every interval and stage, the lag per turn, and the keep-up check."""
    rows = [
        turn_figures(caller, turn, index)
        for caller in callers
        for index, turn in enumerate(caller.planned)
    ]
    answered = [row for row in rows if row["reason"] == "answered"]
    stages = {}
    for name, source in STAGES:
        values = [(row if source == "row" else row["latency_ms"]).get(name) for row in answered]
        stages[name] = _stats([v for v in values if v is not None])

    by_turn = []
    for index in range(turns):
        same = [row for row in answered if row["turn"] == index + 1]
        by_turn.append(
            {
                "turn": index + 1,
                "answered": len(same),
                **{
                    f"{name}_mean": _mean([row[name] for row in same])
                    for name in (
                        "endpoint_lag_ms",
                        "last_voice_to_final_transcript_ms",
                        "last_voice_to_first_audio_ms",
                    )
                },
            }
        )
    growth, growth_error = _growth_per_turn(answered, "last_voice_to_final_transcript_ms")
    lag_p99 = stages["endpoint_lag_ms"].get("p99")
    keeps_up = None
    if growth is not None and growth_error is not None:
        grows = growth > KEEP_UP_GROWTH_MS and growth - 2 * growth_error > 0
        audio_in_time = lag_p99 is not None and lag_p99 <= KEEP_UP_LAG_MS
        keeps_up = len(answered) == len(rows) and audio_in_time and not grows
    return {
        "callers": len(callers),
        "turns_planned": len(rows),
        "turns_answered": len(answered),
        "caller_errors": [c.error for c in callers if c.error],
        "max_send_lateness_ms": round(max(c.max_lateness_ms for c in callers), 1),
        "stages_ms": stages,
        "by_turn": by_turn,
        "final_transcript_growth_ms_per_turn": growth,
        "final_transcript_growth_standard_error": growth_error,
        # None when there are too few turns to tell
        "keeps_up": keeps_up,
        "turns": rows,
    }


def _growth_per_turn(rows: list[dict[str, Any]], name: str) -> tuple[float | None, float | None]:
    """Return the least-squares slope of `name` over the turn number in ms per turn, and
    its standard error; both are None with fewer than three distinct turns."""
    points = [(row["turn"], row[name]) for row in rows if row[name] is not None]
    if len({turn for turn, _ in points}) < 3:
        return None, None
    turns = np.array([p[0] for p in points], dtype=float)
    values = np.array([p[1] for p in points], dtype=float)
    slope, intercept = np.polyfit(turns, values, 1)
    residuals = values - (slope * turns + intercept)
    spread = np.sum((turns - turns.mean()) ** 2)
    error = math.sqrt(np.sum(residuals**2) / (len(points) - 2) / spread)
    return round(float(slope), 1), round(error, 1)


def check_targets(results: dict[str, Any]) -> dict[str, Any]:
    levels = results["levels"]
    one = levels.get("1", {}).get("stages_ms", {}).get("transcript_to_first_audio_ms", {})
    value = one.get("p50")
    keeping_up = [int(count) for count, level in levels.items() if level["keeps_up"] is True]
    return {
        "transcript_to_first_audio_p50_ms_at_1_stream": {
            "target": TARGET_TRANSCRIPT_TO_AUDIO_MS,
            "value": value,
            "met": value is not None and value < TARGET_TRANSCRIPT_TO_AUDIO_MS,
        },
        "max_streams_kept_up": max(keeping_up, default=0),
    }


# environment and output


def environment() -> dict[str, Any]:
    """Return the commit, uncommitted files on the voice path, packages and the machine."""
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    mem_kb = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal:"))
    cpu_models = [
        line.split(":", 1)[1].strip()
        for line in Path("/proc/cpuinfo").read_text().splitlines()
        if line.startswith("model name")
    ]
    espeak = subprocess.run(
        ["espeak-ng", "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "commit": _git("rev-parse", "HEAD"),
        "uncommitted": _git(
            "status", "--porcelain", "--", "server", "asr_tts", "rag", "bench/voice.py"
        ).splitlines(),
        "packages": {
            "python": platform.python_version(),
            **{name: metadata.version(name) for name in PACKAGES},
            "espeak-ng": espeak,
        },
        "machine": {
            "cpus": len(os.sched_getaffinity(0)),
            "cpu_model": cpu_models[0] if cpu_models else platform.processor(),
            "memory_gib": round(mem_kb / 2**20, 1),
            "kernel": platform.release(),
            "openblas_threads": os.environ["OPENBLAS_NUM_THREADS"],
            "omp_threads": os.environ.get("OMP_NUM_THREADS", "unset"),
        },
    }


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU seconds used so far by the whole machine and by this process with its children."""

    at: float
    machine_busy_s: float
    own_s: float

    @classmethod
    def take(cls) -> CpuSnapshot:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        jiffies = [int(value) for value in fields]
        # idle and iowait are the 4th and 5th fields of the "cpu" line
        busy = sum(jiffies) - jiffies[3] - jiffies[4]
        own = os.times()
        return cls(
            time.perf_counter(),
            busy / os.sysconf("SC_CLK_TCK"),
            own.user + own.system + own.children_user + own.children_system,
        )

    def since(self, start: CpuSnapshot) -> dict[str, float]:
        """Return the cores this process and all other processes kept busy since `start`."""
        wall = self.at - start.at
        own = self.own_s - start.own_s
        other = self.machine_busy_s - start.machine_busy_s - own
        return {
            "wall_s": round(wall, 1),
            "own_cores": round(own / wall, 2),
            "other_cores": round(max(0.0, other) / wall, 2),
        }


def _git(*command: str) -> str:
    done = subprocess.run(["git", *command], cwd=REPO, capture_output=True, text=True, check=False)
    return done.stdout.strip()


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    defaults = Settings.model_fields
    return {
        "streams": args.streams,
        "turns": args.turns,
        "stagger_ms": args.stagger_ms,
        "reps": args.reps,
        "quick": args.quick,
        "chunk_ms": CHUNK_MS,
        "trailing_silence_ms": TRAILING_SILENCE_MS,
        "end_silence_ms": END_SILENCE_MS,
        "speculative_silence_ms": ENDPOINTER.speculative_silence_ms,
        "server_workers": defaults["workers"].default,
        "default_max_voice_streams": defaults["max_voice_streams"].default,
        "asr_engine": defaults["asr_engine"].default,
        "tts_engine": defaults["tts_engine"].default,
    }


def _whisper_config(engine: Any) -> dict[str, Any]:
    config = engine.config
    return {
        name: getattr(config, name)
        for name in ("compute_type", "beam_size", "cpu_threads", "num_workers")
    }


def _stats(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {}
    array = np.asarray(values, dtype=float)
    return {
        "p50": round(float(np.percentile(array, 50)), 1),
        "p99": round(float(np.percentile(array, 99)), 1),
        "mean": round(float(array.mean()), 1),
        "max": round(float(array.max()), 1),
        "n": len(array),
    }


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.fmean(present), 1) if present else None


def print_summary(results: dict[str, Any]) -> None:
    show: Callable[[dict[str, float]], str] = lambda s: (  # noqa: E731
        f"{s.get('p50', '-')}/{s.get('p99', '-')}" if s else "-"
    )
    for name, row in results["asr_rtf"].items():
        print(f"ASR {name}: {row['decode_ms']['p50']} ms for {row['audio_ms']} ms, "
              f"RTF {row['rtf']}")  # fmt: skip
    for outcome in results["default_limit"]["outcomes"]:
        print(f"default limit: {outcome['outcome']} after {outcome['after_ms']} ms")
    for count, level in results["levels"].items():
        stages = level["stages_ms"]
        print(
            f"{count} caller(s): answered {level['turns_answered']}/{level['turns_planned']}, "
            f"last voice -> first audio p50/p99 {show(stages['last_voice_to_first_audio_ms'])} "
            f"ms, transcript -> audio {show(stages['transcript_to_first_audio_ms'])} ms, "
            f"endpoint lag {show(stages['endpoint_lag_ms'])} ms, keeps up {level['keeps_up']}"
        )
    for row in results["tts"]:
        first, whole = row["first_chunk_ms"]["p50"], row["whole_answer_ms"]["p50"]
        print(f"TTS {row['text_id']} ({row['chars']} chars): first chunk {first} ms, "
              f"whole {whole} ms")  # fmt: skip
    print(f"CPU use (cores busy): {json.dumps(results['cpu_use'])}")
    print(f"targets: {json.dumps(results['targets'])}")


if __name__ == "__main__":
    sys.exit(main())
