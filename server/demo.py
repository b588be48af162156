"""`kefu demo`: a server on a free port, the sample knowledge base, a few questions."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from server.ask_cli import format_answer
from server.client import KefuClient
from server.config import Settings

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "data" / "samples"
DEMO_TENANT = "demo"
DEMO_QUESTIONS = (
    "运费怎么算？",
    "退款多久能到账",
    "AB-1299-X 多少钱？",
    "耳机拆封了还能无理由退货吗？",
    "發票抬頭寫錯了怎麼辦",
    "你们卖不卖二手汽车？",
)


SPOKEN_QUESTION = "运费怎么算？"
ANSWER_AUDIO = Path(tempfile.gettempdir()) / "kefu-demo-answer.wav"


def run_demo(settings: Settings, keep: bool = False, audio: Path | None = None) -> int:
    """Start a server on 127.0.0.1 with a fresh data folder, ingest, ask, print.

    Args:
        audio: a WAV recording for the spoken question; synthesized when None.
    """
    from server.app import ServerThread

    data_dir = Path(tempfile.mkdtemp(prefix="kefu-demo-"))
    demo_settings = settings.model_copy(update={"data_dir": data_dir, "port": 0})
    print(f"starting kefu on 127.0.0.1 (data in {data_dir}) ...", flush=True)
    server = ServerThread(demo_settings)
    client = KefuClient(server.address)
    try:
        print(f"serving on {server.address}; ingesting {SAMPLES_DIR}")
        for path in sorted(SAMPLES_DIR.iterdir()):
            report = client.upsert_file(DEMO_TENANT, path)
            print(f"  {path.name}: {report.added} added, {len(report.skipped)} skipped")
        for question in DEMO_QUESTIONS:
            print(f"\nQ: {question}")
            print("A: " + format_answer(client.ask(DEMO_TENANT, question)))
        _spoken_question(client, server, audio)
    finally:
        client.close()
        server.stop()
        if not keep:
            shutil.rmtree(data_dir, ignore_errors=True)
    return 0


def _spoken_question(client: KefuClient, server, audio: Path | None) -> None:
    """Send one spoken question through Converse and write the spoken answer."""
    from server.ask_cli import ANSWER_AUDIO_RATE_HZ, write_wav
    from server.voice import speak_to_pcm16

    if audio is not None:
        wav = audio.read_bytes()
        print(f"\nspoken question from {audio}")
    else:
        # NOTE: Whisper base rarely understands espeak-ng's Mandarin, so the transcript of
        # a synthesized question is usually wrong; pass --audio with a real recording.
        tts = server.server.components.voice.require_tts("tts_engine")
        recording = Path(tempfile.gettempdir()) / "kefu-demo-question.wav"
        write_wav(recording, speak_to_pcm16(tts, SPOKEN_QUESTION), tts.sample_rate_hz)
        wav = recording.read_bytes()
        print(f"\nspoken question synthesized by {tts.name}: {SPOKEN_QUESTION}")
    answer, speech = client.ask_audio(DEMO_TENANT, wav, speak=True)
    print(f"transcript: {answer['transcript'] or '(no speech recognized)'}")
    if not answer["transcript"] and audio is None:
        print(
            "  Whisper base does not recognize espeak-ng's synthetic Mandarin; "
            "run `kefu demo --audio QUESTION.wav` with a real recording"
        )
    if answer["answer"]:
        print("A: " + format_answer(answer))
    if speech:
        write_wav(ANSWER_AUDIO, speech, ANSWER_AUDIO_RATE_HZ)
        seconds = len(speech) / 2 / ANSWER_AUDIO_RATE_HZ
        print(f"spoken answer ({seconds:.1f} s) written to {ANSWER_AUDIO}")
