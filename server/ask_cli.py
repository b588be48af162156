"""`kefu ask`: one question, or a JSONL batch, in-process or through a running server."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from server.client import KefuClient, answer_to_dict
from server.config import Settings
from server.errors import InvalidArgumentError, KefuError

AskFunction = Callable[[str, str], dict]


def run_ask(args: argparse.Namespace, settings: Settings) -> int:
    if args.audio:
        return run_audio_ask(args, settings)
    if args.say:
        raise InvalidArgumentError("--say", str(args.say), "--say needs --audio FILE")
    if not args.text and not args.batch and not args.image:
        raise InvalidArgumentError("text", args.text, "give a question, --image or --batch FILE")
    image = _read_file(args.image, "--image") if args.image else None
    with _asker(args, settings) as ask:
        if args.batch:
            with args.batch.open(encoding="utf-8") as lines:
                return run_batch(lines, ask, sys.stdout)
        answer = ask(args.text or "", args.session, image)
        if args.json:
            print(json.dumps(answer, ensure_ascii=False))
        else:
            print(format_answer(answer))
    return 0


def run_audio_ask(args: argparse.Namespace, settings: Settings) -> int:
    """Send a recorded question through Converse and print the answer with its transcript."""
    try:
        wav = args.audio.read_bytes()
    except OSError as exc:
        raise InvalidArgumentError(
            "--audio", str(args.audio), f"cannot read the file: {exc}"
        ) from exc
    with _server_address(args, settings) as address:
        client = KefuClient(address)
        try:
            answer, audio = client.ask_audio(
                args.tenant, wav, args.session, args.locale, speak=bool(args.say)
            )
        finally:
            client.close()
    if args.say:
        write_wav(args.say, audio, ANSWER_AUDIO_RATE_HZ)
    if args.json:
        print(json.dumps(answer, ensure_ascii=False))
    else:
        print(f"transcript: {answer['transcript'] or '(no speech recognized)'}")
        print(format_answer(answer) if answer["answer"] else "(no answer)")
        if args.say:
            print(f"spoken answer written to {args.say}")
    return 0


ANSWER_AUDIO_RATE_HZ = 16000


def _read_file(path: Path, option: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidArgumentError(option, str(path), f"cannot read the file: {exc}") from exc


def write_wav(path: Path, pcm16: bytes, sample_rate_hz: int) -> None:
    """Write mono 16-bit PCM samples to a WAV file."""
    from asr_tts.wav import SampleEncoding, build_wav_header

    header = build_wav_header(SampleEncoding.PCM_S16LE, 1, sample_rate_hz, len(pcm16))
    path.write_bytes(header + pcm16)


@contextmanager
def _server_address(args: argparse.Namespace, settings: Settings) -> Iterator[str]:
    """Yield --server, or the address of a server started in this process for one call."""
    if args.server:
        yield args.server
        return
    from server.app import ServerThread

    server = ServerThread(settings.model_copy(update={"host": "127.0.0.1", "port": 0}))
    try:
        yield server.address
    finally:
        server.stop()


def run_batch(lines: TextIO, ask: AskFunction, out: TextIO) -> int:
    """Answer each JSONL line; a bad line prints an `error` object and the batch goes on.

    Returns 0 when every line was answered, 1 otherwise.
    """
    failures = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            if not isinstance(item, dict) or not isinstance(item.get("text"), str):
                raise InvalidArgumentError(f"line {number}", line.strip(), 'expected {"text": ...}')
            answer = ask(item["text"], str(item.get("session", "")))
            answer["line"] = number
        except (json.JSONDecodeError, KefuError) as exc:
            failures += 1
            answer = {"line": number, "error": str(exc)}
        print(json.dumps(answer, ensure_ascii=False), file=out, flush=True)
    return 1 if failures else 0


def format_answer(answer: dict) -> str:
    """Render an answer for a terminal: the text, then numbered citations."""
    lines = [answer["answer"]]
    for i, citation in enumerate(answer["citations"], start=1):
        lines.append(f"  [{i}] {citation['title']} ({citation['doc_id']}, {citation['source']})")
    flags = f"intent={answer['intent']} confidence={answer['confidence']:.2f}"
    if answer["handoff"]:
        flags += f" handoff={answer.get('handoff_reason', 'yes')}"
    lines.append(f"  {flags}")
    return "\n".join(lines)


class _asker:
    """Context manager yielding an ask(text, session) function."""

    def __init__(self, args: argparse.Namespace, settings: Settings) -> None:
        self.args = args
        self.settings = settings
        self._close: Callable[[], None] = lambda: None

    def __enter__(self) -> AskFunction:
        args = self.args
        if args.server:
            client = KefuClient(args.server)
            self._close = client.close
            return lambda text, session, image=None: client.ask(
                args.tenant, text, session, args.locale, image
            )
        return self._local()

    def _local(self) -> AskFunction:
        from server.app import build_components
        from server.assistant import Question
        from server.convert import answer_to_proto

        components = build_components(self.settings)
        self._close = components.close
        args = self.args

        def ask(text: str, session: str, image: bytes | None = None) -> dict:
            question = Question(args.tenant, text, session, locale=args.locale, image=image)
            return answer_to_dict(answer_to_proto(components.assistant.ask(question)))

        return ask

    def __exit__(self, *exc_info) -> None:
        self._close()
