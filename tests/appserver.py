"""Start the real app in a child process for tests, and wait until it answers."""
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
