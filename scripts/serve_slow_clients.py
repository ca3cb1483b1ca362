"""Slow and idle clients against a live ``deepmatting serve``: is a real user still answered? (matrix C5-C7)

Starts ``deepmatting serve --quality fast`` on a free port (the ``PYTHONPATH`` it runs with decides which
code: a checkout's ``src`` for "before" and "after"), then plays each case for ``--seconds`` and counts the
user's requests answered 200 out of those tried:

- C5: 3 POSTs that announce 10 MB and send 10 bytes, held open; the user predicts (64x64) every 0.5 s;
- C6: the same 3, reconnecting as soon as they are closed;
- C7: 40 idle sockets (nothing sent) reconnecting as soon as they are closed; the user gets ``/api/info``
  and predicts, each every 0.5 s;
- C5-7: 60 sockets, half idle, half trickling a request head, all reconnecting, and 3 POSTs trickling their
  bodies (a byte every 0.5 s), reconnecting; the user predicts every 0.5 s.

Run (from the project root): ``PYTHONPATH=src .venv/bin/python scripts/serve_slow_clients.py``.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import numpy as np
from PIL import Image


def _png(array: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Attackers:
    """``n`` client threads, each doing ``kind`` on a fresh connection again and again until stopped."""

    def __init__(self, port: int, n: int, kind: str, reconnect: bool):
        self.port, self.kind, self.reconnect = port, kind, reconnect
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(n)]
        for t in self.threads:
            t.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    self._play(s)
            except OSError:
                time.sleep(0.01)
            if not self.reconnect:
                self.stop.wait()

    def _play(self, s: socket.socket) -> None:
        head = (f"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nContent-Type: application/json"
                "\r\nContent-Length: 10000000\r\n\r\n").encode()
        if self.kind == "slow-body":  # 10 bytes of 10 MB, then nothing
            s.sendall(head + b'{"image":"')
        elif self.kind == "trickle-body":
            s.sendall(head)
        elif self.kind == "trickle-head":
            s.sendall(f"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n".encode())
        while not self.stop.is_set():  # hold the connection until the server closes it
            try:
                if self.kind.startswith("trickle"):
                    s.sendall(b"a" if self.kind == "trickle-body" else b"X-a: b\r\n")
                if s.recv(65536) == b"":
                    return
            except TimeoutError:
                continue
            except OSError:
                return
            if self.kind == "trickle-body":
                time.sleep(0.5)

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(5)


def user(port: int, seconds: float, what: str) -> tuple[int, int]:
    """``(answered 200, tried)``: requests of a real user every 0.5 s for ``seconds``."""
    payload = json.dumps({"image": _png(np.full((64, 64, 3), 90, np.uint8)),
                          "trimap": _png(np.full((64, 64), 128, np.uint8))}).encode()
    ok = tried = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        tried += 1
        url = f"http://127.0.0.1:{port}/api/" + ("info" if what == "info" else "predict")
        data = None if what == "info" else payload
        request = urllib.request.Request(url, data, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                ok += answer.status == 200
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    return ok, tried


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="how long each case is played")
    args = parser.parse_args()
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "deepmatting", "serve", "--quality", "fast", "--port",
                               str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ)
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/info", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        print(f"baseline: predictions {user(port, 2, 'predict')}")
        cases = {
            "C5 3 slow POSTs, held": [(3, "slow-body", False)],
            "C6 3 slow POSTs, reconnecting": [(3, "slow-body", True)],
            "C7 40 idle sockets, reconnecting": [(40, "idle", True)],
            "C5-7 60 idle/slow-head + 3 trickled bodies, reconnecting": [
                (30, "idle", True), (30, "trickle-head", True), (3, "trickle-body", True)],
        }
        for name, groups in cases.items():
            attackers = [Attackers(port, n, kind, reconnect) for n, kind, reconnect in groups]
            time.sleep(1)
            kinds = ("info", "predict") if name.startswith("C7") else ("predict",)
            results: dict[str, tuple[int, int]] = {}

            def play(what: str, results: dict = results) -> None:
                results[what] = user(port, args.seconds, what)

            threads = [threading.Thread(target=play, args=(w,)) for w in kinds]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            for a in attackers:
                a.close()
            shown = ", ".join(f"{w} answered {ok}/{tried}" for w, (ok, tried) in results.items())
            print(f"{name}: {shown}", flush=True)
            time.sleep(1)
    finally:
        server.terminate()
        server.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
