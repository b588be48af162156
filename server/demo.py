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


def run_demo(settings: Settings, keep: bool = False) -> int:
    """Start a server on 127.0.0.1 with a fresh data folder, ingest, ask, print."""
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
    finally:
        client.close()
        server.stop()
        if not keep:
            shutil.rmtree(data_dir, ignore_errors=True)
    return 0
