"""The `kefu` command line: serve, ingest, ask, demo."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

from server.config import Settings, load_settings
from server.errors import InvalidArgumentError, KefuError
from server.logs import configure_logging

logger = logging.getLogger(__name__)

INGEST_EXTENSIONS = (".csv", ".xlsx", ".jsonl", ".json", ".txt", ".md", ".markdown")


def _global_options(default: object) -> argparse.ArgumentParser:
    """Return a parent parser with the options every command takes."""
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "--config", type=Path, default=default, help="YAML settings file (KEFU_* env overrides it)"
    )
    options.add_argument(
        "--data-dir", type=Path, default=default, help="folder for the store and databases"
    )
    options.add_argument("--log-level", default=default, help="DEBUG, INFO, WARNING or ERROR")
    return options


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kefu",
        description="Self-hosted Chinese customer-service assistant over gRPC.",
        parents=[_global_options(None)],
    )
    # The same options after the command name (kefu serve --data-dir D). SUPPRESS keeps a
    # value given before the command when they are not repeated after it.
    shared = _global_options(argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", parents=[shared], help="run the gRPC server")
    serve.add_argument("--host", help="listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default 50051; 0 picks one)")

    ingest = commands.add_parser(
        "ingest", parents=[shared], help="add knowledge files for a tenant"
    )
    ingest.add_argument("paths", nargs="+", type=Path, help="files or folders to ingest")
    ingest.add_argument("--tenant", required=True, help="tenant id")
    ingest.add_argument("--title-field", help="record field holding each record's title")
    ingest.add_argument("--server", help="HOST:PORT of a running kefu serve to ingest through")
    ingest.add_argument(
        "--user-dict",
        type=Path,
        action="append",
        default=[],
        help="jieba user dictionary with product words (repeatable)",
    )

    ask = commands.add_parser("ask", parents=[shared], help="ask a question and print the answer")
    ask.add_argument("text", nargs="?", help="the question")
    ask.add_argument("--tenant", required=True, help="tenant id")
    ask.add_argument("--session", default="", help="session id shared by follow-up questions")
    ask.add_argument("--locale", default="", help="zh-CN (default) or en-US")
    ask.add_argument("--json", action="store_true", help="print the answer as one JSON object")
    ask.add_argument(
        "--batch",
        type=Path,
        help='JSONL file of {"text": ..., "session": ...}; prints one JSON answer per line',
    )
    ask.add_argument("--server", help="HOST:PORT of a running kefu serve to ask")
    ask.add_argument(
        "--audio", type=Path, help="WAV file with a spoken question, sent through Converse"
    )
    ask.add_argument("--image", type=Path, help="photo sent with the question (or alone)")
    ask.add_argument(
        "--say", type=Path, help="with --audio: write the spoken answer to this WAV file"
    )

    images = commands.add_parser(
        "ingest-images", parents=[shared], help="sync a tenant's catalog photos with a folder"
    )
    images.add_argument("folder", type=Path, help="folder of product photos")
    images.add_argument("--tenant", required=True, help="tenant id")
    images.add_argument(
        "--manifest", type=Path, help="CSV or JSON mapping file names to product ids"
    )
    images.add_argument("--server", help="HOST:PORT of a running kefu serve to ingest through")

    say = commands.add_parser(
        "say", parents=[shared], help="synthesize text as the assistant speaks it"
    )
    say.add_argument("text", help="the text to speak")
    say.add_argument("--out", type=Path, required=True, help="WAV file to write")
    say.add_argument(
        "--print-normalized", action="store_true", help="print the text as it is spoken"
    )

    demo = commands.add_parser(
        "demo", parents=[shared], help="run a server on the sample knowledge base"
    )
    demo.add_argument("--keep", action="store_true", help="keep the demo data folder")
    demo.add_argument(
        "--audio", type=Path, help="WAV recording for the spoken question (default: synthesized)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(
            args.config,
            data_dir=args.data_dir,
            log_level=args.log_level,
            host=getattr(args, "host", None),
            port=getattr(args, "port", None),
            user_dict=getattr(args, "user_dict", None) or None,
        )
        configure_logging(
            settings.log_level if args.log_level or args.command == "serve" else "WARNING"
        )
        return _COMMANDS[args.command](args, settings)
    except KefuError as exc:
        print(f"kefu {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from server.app import serve

    asyncio.run(serve(settings))
    return 0


def expand_paths(paths: list[Path]) -> Iterator[Path]:
    """Yield files, walking folders for files with an ingestible extension."""
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and child.suffix.lower() in INGEST_EXTENSIONS:
                    yield child
        else:
            yield path


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from server.ingest_cli import ingest_local, ingest_remote

    # Checked before the store is opened, so a typo leaves no empty store behind.
    missing = [path for path in args.paths if not path.exists()]
    if missing:
        raise InvalidArgumentError("paths", str(missing[0]), "file or folder not found")
    files = list(expand_paths(args.paths))
    if args.server:
        report = ingest_remote(args.server, args.tenant, files, args.title_field)
    else:
        report = ingest_local(settings, args.tenant, files, args.title_field)
    print(
        f"tenant {args.tenant}: {report.added} added, {report.updated} updated, "
        f"{report.unchanged} unchanged, {report.deleted} deleted, {len(report.skipped)} skipped"
    )
    if report.index_s:
        print(f"built the search index in {report.index_s:.1f} s")
    for row in report.skipped:
        print(f"  skipped {row}")
    return 0


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    from server.ask_cli import run_ask

    return run_ask(args, settings)


def cmd_ingest_images(args: argparse.Namespace, settings: Settings) -> int:
    from server.ingest_cli import ingest_images

    report = ingest_images(settings, args.tenant, args.folder, args.manifest, args.server)
    print(
        f"tenant {args.tenant}: {report.added} photos added, {report.updated} updated, "
        f"{report.unchanged} unchanged, {report.deleted} deleted, {len(report.skipped)} skipped"
    )
    for row in report.skipped:
        print(f"  skipped {row}")
    return 0


def cmd_say(args: argparse.Namespace, settings: Settings) -> int:
    from server.ask_cli import write_wav
    from server.voice import build_voice_engines, speak_to_pcm16

    voice = build_voice_engines("none", settings.tts_engine, settings.resolved_model_dir, None)
    tts = voice.require_tts("tts_engine")
    try:
        if args.print_normalized:
            print(tts.normalized_text(args.text))
        pcm16 = speak_to_pcm16(tts, args.text)
        write_wav(args.out, pcm16, tts.sample_rate_hz)
    finally:
        voice.close()
    print(f"wrote {len(pcm16) / 2 / tts.sample_rate_hz:.2f} s of speech to {args.out}")
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from server.demo import run_demo

    return run_demo(settings, keep=args.keep, audio=args.audio)


_COMMANDS = {
    "serve": cmd_serve,
    "ingest": cmd_ingest,
    "ingest-images": cmd_ingest_images,
    "ask": cmd_ask,
    "say": cmd_say,
    "demo": cmd_demo,
}


if __name__ == "__main__":
    sys.exit(main())
