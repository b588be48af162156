"""The pytriton venv and the scripted Triton server of the Triton engine tests.

pytriton 0.7 needs numpy<2 while kefu uses numpy 2, so the test server runs from its own
venv, `.venv-triton` at the repository root. `ensure_triton_venv` builds it once from the
package registry and reuses it afterwards; running this file builds it ahead of the tests:

    .venv/bin/python tests/rag/triton_env.py
"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TRITON_VENV = REPO / ".venv-triton"
TRITON_PACKAGES = ("nvidia-pytriton==0.7.0", "numpy<2")
SERVER_SCRIPT = Path(__file__).resolve().parent / "triton_scripted_server.py"
# A marker written after a successful install; it lists the packages it was built with.
READY_MARKER = ".kefu-ready"
PIP_TIMEOUT_S = 900
STARTUP_TIMEOUT_S = 90
STOP_TIMEOUT_S = 15


class TritonUnavailable(RuntimeError):
    """pytriton cannot be installed or started on this machine; the message says why."""


def venv_python(venv: Path = TRITON_VENV) -> Path:
    return venv / "bin" / "python"


def ensure_triton_venv(venv: Path = TRITON_VENV) -> Path:
    """Build the pytriton venv unless it is already built; return its Python.

    A file lock makes concurrent test processes wait for one build.

    Raises:
        TritonUnavailable: venv creation or pip install failed, with pip's output.
    """
    venv.mkdir(exist_ok=True)
    marker = venv / READY_MARKER
    wanted = "\n".join(TRITON_PACKAGES)
    with open(venv / ".build-lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists() and marker.read_text() == wanted and venv_python(venv).exists():
            return venv_python(venv)
        _run([sys.executable, "-m", "venv", str(venv)], "creating the pytriton venv")
        _run(
            [str(venv_python(venv)), "-m", "pip", "install", "--quiet", *TRITON_PACKAGES],
            "installing pytriton into the venv",
        )
        marker.write_text(wanted)
    return venv_python(venv)


def _run(command: list[str], what: str) -> None:
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TritonUnavailable(f"{what} failed: {exc}") from exc
    if done.returncode != 0:
        raise TritonUnavailable(
            f"{what} failed with exit code {done.returncode}: {done.stderr.strip()[-2000:]}"
        )


def python_lib_dir(python: Path) -> str:
    """Return the folder of libpython for `python`; Triton's Python backend loads it."""
    done = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_config_var('LIBDIR'))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def free_ports(count: int) -> list[int]:
    """Return `count` distinct ports that were free on 127.0.0.1 a moment ago."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class ScriptedTritonServer:
    """The scripted Triton server in a subprocess on 127.0.0.1, with free ports.

    The server runs in its own process group, so `stop` ends the launcher, tritonserver
    and the Python backend stubs it started, and nothing else.
    """

    def __init__(self, python: Path, folder: Path) -> None:
        self.python = python
        self.folder = folder
        self.grpc_port, self.http_port, self.metrics_port = free_ports(3)
        self.url = f"127.0.0.1:{self.grpc_port}"
        self.request_log = folder / "requests.jsonl"
        self.server_log = folder / "server.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        """Start the server and wait until both models are ready.

        Raises:
            TritonUnavailable: the server exited or was not ready in time; the message
                holds the end of its log.
        """
        env = dict(os.environ)
        lib_dir = python_lib_dir(self.python)
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            filter(None, [lib_dir, env.get("LD_LIBRARY_PATH")])
        )
        command = [
            str(self.python),
            str(SERVER_SCRIPT),
            str(self.grpc_port),
            str(self.http_port),
            str(self.metrics_port),
            str(self.request_log),
            str(self.folder / "workspace"),
        ]
        with self.server_log.open("wb") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        import tritonclient.grpc as grpcclient
        from tritonclient.utils import InferenceServerException

        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        client = grpcclient.InferenceServerClient(self.url)
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise TritonUnavailable(
                        f"the pytriton server exited with code {self.process.returncode}: "
                        f"{self.log_tail()}"
                    )
                try:
                    if all(client.is_model_ready(m) for m in ("qwen_vllm", "ensemble")):
                        return
                except InferenceServerException:
                    pass
                time.sleep(0.25)
        finally:
            client.close()
        self.stop()
        raise TritonUnavailable(
            f"the pytriton server was not ready within {STARTUP_TIMEOUT_S} s: {self.log_tail()}"
        )

    def log_tail(self, chars: int = 3000) -> str:
        if not self.server_log.exists():
            return "(no server log)"
        return self.server_log.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        """Stop the server's process group: SIGTERM, then SIGKILL after STOP_TIMEOUT_S."""
        if self.process is None or self.process.poll() is not None:
            return
        group = self.process.pid
        os.killpg(group, signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(group, signal.SIGKILL)
            self.process.wait()
        # tritonserver and the stubs may outlive the launcher for a moment.
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while _group_alive(group) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _group_alive(group):
            os.killpg(group, signal.SIGKILL)


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


if __name__ == "__main__":
    print(ensure_triton_venv())
