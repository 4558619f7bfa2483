"""Start the real app (python app.py) in a child process and wait until it answers: for tests and measurement
scripts, with its own runs folder, port and log."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from gradio_client import Client

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RunningApp:
    """A started app: its process, address, runs folder and log."""

    process: subprocess.Popen
    url: str
    runs: Path
    log: Path

    def client(self) -> Client:
        return Client(self.url, verbose=False)

    def kill(self, sig=signal.SIGKILL) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=60)


def start_app(runs: Path, log: Path, extra_env: dict | None = None, timeout: float = 120) -> RunningApp:
    """`python app.py` offline on a free port, its runs in `runs` and its output in `log`, once gradio_client can
    connect. Raises RuntimeError with the end of the log when it exits or does not answer within `timeout` s."""
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RUDISTIL_RUNS_DIR": str(runs), "RUDISTIL_PORT": str(port),
           **(extra_env or {})}
    process = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=env, stdout=open(log, "w"),
                               stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the app exited: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                Client(url, verbose=False)
                return RunningApp(process, url, runs, log)
        except Exception:
            time.sleep(0.5)
    process.kill()
    raise RuntimeError(f"the app did not answer within {timeout} s: {log.read_text()[-2000:]}")
