"""A real `adgen ui` server for the web app tests: its own home, two advertisers, a free port."""

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import MODELS, REPO, adgen

USERS = {"alice": ("alice-password-1", "Northwind Coffee"), "bob": ("bob-password-22", "Contoso Tea")}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_ui(root: Path, env: dict | None = None):
    """Start `adgen ui` in a subprocess with the two users added; yields its URL."""
    env = {"ADGEN_HOME": str(root / "home"), "ADGEN_MODELS": str(MODELS), "GRADIO_TEMP_DIR": str(root / "gradio"),
           "GRADIO_ANALYTICS_ENABLED": "False", **(env or {})}
    for name, (password, brand) in USERS.items():
        adgen("users", "add", name, "--brand", brand, env={**env, "ADGEN_PASSWORD": password})
    port = _free_port()
    log = (root / "server.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "adgen", "ui", "--port", str(port)], cwd=REPO,
                            env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{url}/config", timeout=2)
                break
            except urllib.error.HTTPError:
                break  # 401: up, and asking for a sign-in
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("adgen ui did not start:\n" + (root / "server.log").read_text()) from None
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
