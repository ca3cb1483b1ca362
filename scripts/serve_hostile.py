"""The hostile-client matrix of the web server (issue "Reliability and security"), measured on a live server.

Starts ``deepmatting serve`` on a free port with a tiny random-weight model (or attaches to a running server
with ``--url``/``--pid``/``--log``), then plays each hostile client against it and prints one line per case:

1. ``Content-Length: -1`` followed by a 300 MiB body, and a ``Content-Length`` of 1 TB;
2. a client that announces 200 MB (or 10 MB) and sends 10 bytes; one that trickles its headers; 200 of the
   10 MB ones at once (server threads, whether a normal request is still answered, what reaches stderr);
3. cross-origin requests: a ``text/plain`` POST from another origin, a ``Host`` of another name (DNS
   rebinding), and the same-origin and curl-like requests that must still pass;
4. deeply nested JSON and an unsupported method;
5. the pixel limit and what a second prediction gets while one is running.

Run (from the project root): ``.venv/bin/python scripts/serve_hostile.py [--hold-cap 60]``. Linux only (reads
``/proc`` for the server's peak memory and thread count).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

import numpy as np
from PIL import Image


def proc_status(pid: int, key: str) -> int:
    """A number from ``/proc/PID/status`` (``VmHWM`` in kB, ``Threads``)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


class Target:
    def __init__(self, url: str, pid: int, log: str | None):
        parts = urllib.parse.urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.pid, self.log = pid, log

    def connect(self, timeout: float = 10.0) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout=timeout)

    def head(self, method: str, path: str, headers: dict[str, str]) -> bytes:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def log_lines(self) -> list[str]:
        if not self.log:
            return []
        with open(self.log, errors="replace") as f:
            return f.readlines()


def read_answer(sock: socket.socket, timeout: float) -> tuple[str, str, bytes]:
    """(status line, content type, first bytes of the body) of the answer, or ('closed', '', b'')."""
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        if not head:
            return "closed", "", b""
        lines = head.decode("latin-1").split("\r\n")
        ctype = next((line.split(":", 1)[1].strip() for line in lines[1:]
                      if line.lower().startswith("content-type:")), "")
        return lines[0], ctype, body[:200]
    except (TimeoutError, ConnectionError) as e:
        return ("no answer" if isinstance(e, TimeoutError) else "reset"), "", b""


def status_code(line: str) -> str:
    m = re.match(r"HTTP/1\.[01] (\d{3})", line)
    return m[1] if m else line


def request(t: Target, method: str, path: str, headers: dict[str, str],
            body: bytes = b"") -> tuple[str, str, bytes]:
    with t.connect() as s:
        if body or method == "POST":
            headers = {"Content-Length": str(len(body)), **headers}
        s.sendall(t.head(method, path, headers) + body)
        return read_answer(s, 30)


def negative_length(t: Target, mib: int) -> str:
    before = proc_status(t.pid, "VmHWM")
    start = time.monotonic()
    with t.connect() as s:
        s.sendall(t.head("POST", "/api/predict", {"Content-Type": "application/json",
                                                 "Content-Length": "-1"}))
        chunk = b'{"image": "' + b"A" * (2**20 - 11)
        sent = 0
        try:
            s.sendall(chunk)
            sent += 1
            filler = b"A" * 2**20
            for _ in range(mib - 2):
                s.sendall(filler)
                sent += 1
            s.sendall(b"A" * (2**20 - 2) + b'"}')
            sent += 1
            s.shutdown(socket.SHUT_WR)
        except (ConnectionError, TimeoutError):
            pass
        line, ctype, _ = read_answer(s, 120)
    grown = max(0, proc_status(t.pid, "VmHWM") - before) / 1024
    return (f"Content-Length: -1, {mib} MiB body: answer {status_code(line)} ({ctype or '-'}) after "
            f"{time.monotonic() - start:.1f} s; {sent} MiB accepted by the socket; server peak memory "
            f"+{grown:.0f} MiB")


def huge_length(t: Target) -> str:
    line, ctype, _ = request(t, "POST", "/api/predict", {"Content-Type": "application/json",
                                                         "Content-Length": str(10**12)})
    return f"Content-Length: 10^12, no body: answer {status_code(line)} ({ctype or '-'})"


def slow_body(t: Target, cap: float, announced: int) -> str:
    start = time.monotonic()
    with t.connect() as s:
        s.sendall(t.head("POST", "/api/predict", {"Content-Type": "application/json",
                                                 "Content-Length": str(announced)}) + b'{"image":"')
        line, _, _ = read_answer(s, cap)
    held = time.monotonic() - start
    shown = f"> {cap:.0f} s (still open)" if line == "no answer" else f"{held:.1f} s"
    return f"announces {announced / 1e6:g} MB, sends 10 bytes: held {shown}, then {status_code(line)}"


def slow_headers(t: Target, cap: float) -> str:
    start = time.monotonic()
    with t.connect() as s:
        s.sendall(f"GET /api/info HTTP/1.1\r\nHost: {t.host}:{t.port}\r\nX-Slow: ".encode())
        s.settimeout(0.5)
        line = "no answer"
        while time.monotonic() - start < cap:
            try:
                s.sendall(b"a")
                data = s.recv(4096)
                line = data.decode("latin-1").split("\r\n")[0] if data else "closed"
                break
            except TimeoutError:
                continue
            except ConnectionError:
                line = "reset"
                break
    held = time.monotonic() - start
    shown = f"> {cap:.0f} s (still open)" if line == "no answer" else f"{held:.1f} s"
    return f"headers trickled at 2 bytes/s: held {shown}, then {status_code(line)}"


def many_slow(t: Target, n: int, announced: int) -> list[str]:
    lines_before = len(t.log_lines())
    threads_before = proc_status(t.pid, "Threads")
    socks, refused = [], 0
    for _ in range(n):
        try:
            s = t.connect()
            s.sendall(t.head("POST", "/api/predict", {"Content-Type": "application/json",
                                                     "Content-Length": str(announced)}) + b'{"image":"')
            socks.append(s)
        except OSError:
            refused += 1
    time.sleep(1.0)
    threads = proc_status(t.pid, "Threads")
    start = time.monotonic()
    try:
        line, _, _ = request(t, "GET", "/api/info", {})
    except OSError as e:
        line = type(e).__name__
    info_seconds = time.monotonic() - start
    answered_busy = 0
    for s in socks:
        s.setblocking(False)
        try:
            if s.recv(64).startswith(b"HTTP/1.1 503"):
                answered_busy += 1
        except OSError:
            pass
    for s in socks:
        s.close()
    time.sleep(2.0)
    after, _, _ = request(t, "GET", "/api/info", {})
    new = t.log_lines()[lines_before:]
    tracebacks = sum("Traceback" in l for l in new)
    five_hundreds = sum(bool(re.search(r'" 500 ', l)) for l in new)
    return [f"{n} slow clients announcing {announced / 1e6:g} MB: server threads {threads_before} -> "
            f"{threads}; {answered_busy} answered 503 busy at once; {refused} refused; GET /api/info "
            f"meanwhile: {status_code(line)} in {info_seconds:.2f} s",
            f"{n} slow clients closed: {len(new)} stderr lines ({tracebacks} tracebacks, {five_hundreds} "
            f"logged 500); GET /api/info then: {status_code(after)}"]


def cross_origin(t: Target) -> list[str]:
    own = f"http://{t.host}:{t.port}"
    body = b"{}"
    cases = [
        ("POST text/plain, Origin http://evil.example", "POST", "/api/predict",
         {"Content-Type": "text/plain", "Origin": "http://evil.example"}),
        ("POST application/json, Origin http://evil.example", "POST", "/api/predict",
         {"Content-Type": "application/json", "Origin": "http://evil.example"}),
        ("POST text/plain, no Origin", "POST", "/api/predict", {"Content-Type": "text/plain"}),
        ("GET /api/info, Host: evil.example (DNS rebinding)", "GET", "/api/info",
         {"Host": f"evil.example:{t.port}"}),
        (f"POST application/json, Origin {own} (the page)", "POST", "/api/predict",
         {"Content-Type": "application/json", "Origin": own}),
        ("POST application/json, no Origin (curl)", "POST", "/api/predict",
         {"Content-Type": "application/json"}),
    ]
    out = []
    for label, method, path, headers in cases:
        with t.connect() as s:
            sent = {k: v for k, v in headers.items() if k != "Host"} | {"Content-Length": "2"}
            head = t.head(method, path, sent)
            if "Host" in headers:
                head = head.replace(f"Host: {t.host}:{t.port}".encode(), f"Host: {headers['Host']}".encode())
            s.sendall(head + body)
            line, _, _ = read_answer(s, 30)
        out.append(f"{label}: {status_code(line)}")
    return out


def odd_requests(t: Target) -> list[str]:
    depth = 100_000
    nested = b"[" * depth + b"]" * depth
    out = []
    line, ctype, _ = request(t, "POST", "/api/predict", {"Content-Type": "application/json"}, nested)
    out.append(f"JSON nested {depth} deep: {status_code(line)} ({ctype or '-'})")
    for method in ("PUT", "DELETE", "PATCH"):
        line, ctype, _ = request(t, method, "/api/predict", {})
        out.append(f"{method} /api/predict: {status_code(line)} ({ctype or '-'})")
    return out


def _png_b64(array: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def busy(t: Target, side: int) -> list[str]:
    _, _, body = request(t, "GET", "/api/info", {})
    with t.connect() as s:
        s.sendall(t.head("GET", "/api/info", {}))
        s.settimeout(30)
        data = b""
        while True:
            chunk = s.recv(65536)
            data += chunk
            head, _, rest = data.partition(b"\r\n\r\n")
            m = re.search(rb"Content-Length: (\d+)", head)
            if not chunk or (m and len(rest) >= int(m[1])):
                break
    info = json.loads(rest)
    rng = np.random.default_rng(0)
    trimap = np.full((side, side), 128, np.uint8)
    payload = json.dumps({"image": _png_b64((rng.random((side, side, 3)) * 255).astype(np.uint8)),
                          "trimap": _png_b64(trimap)}).encode()
    results = []

    def one():
        start = time.monotonic()
        line, _, _ = request(t, "POST", "/api/predict", {"Content-Type": "application/json"}, payload)
        results.append((status_code(line), time.monotonic() - start))

    workers = [threading.Thread(target=one) for _ in range(4)]
    for w in workers:
        w.start()
        time.sleep(0.05)
    for w in workers:
        w.join()
    shown = ", ".join(f"{code} in {s:.1f} s" for code, s in sorted(results, key=lambda r: r[1]))
    limit = info.get("max_pixels")
    return [f"pixel limit per request: {limit / 1e6:g} MP" if limit else "pixel limit: not reported",
            f"4 simultaneous {side}x{side} predictions (all unknown): {shown}"]


def start_server(log_path: str, folder: str) -> tuple[subprocess.Popen, str]:
    import torch

    from deepmatting import DeepMatting

    torch.manual_seed(0)
    ckpt = os.path.join(folder, "tiny.pt")
    DeepMatting(width=0.25).save(ckpt)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, "-m", "deepmatting", "serve", "--checkpoint", ckpt,
                             "--device", "cpu", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc, url
        except OSError:
            time.sleep(0.25)
    proc.kill()
    raise SystemExit(f"the server did not start: see {log_path}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", help="a running server (default: start one with a tiny random model)")
    p.add_argument("--pid", type=int, help="its process id (with --url)")
    p.add_argument("--log", help="its stderr log file (with --url)")
    p.add_argument("--hold-cap", type=float, default=60.0, help="stop waiting on a held client after this")
    p.add_argument("--clients", type=int, default=200, help="slow clients at once")
    p.add_argument("--mib", type=int, default=300, help="size of the Content-Length: -1 body")
    p.add_argument("--side", type=int, default=512, help="side of the images of the busy case")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        proc = None
        if args.url:
            target = Target(args.url, args.pid, args.log)
        else:
            log = os.path.join(folder, "serve.log")
            proc, url = start_server(log, folder)
            target = Target(url, proc.pid, log)
        try:
            print("1.", negative_length(target, args.mib), flush=True)
            print("1.", huge_length(target), flush=True)
            for announced in (200_000_000, 10_000_000):
                print("2.", slow_body(target, args.hold_cap, announced), flush=True)
            print("2.", slow_headers(target, args.hold_cap), flush=True)
            for line in many_slow(target, args.clients, 10_000_000):
                print("2.", line, flush=True)
            for line in cross_origin(target):
                print("3.", line, flush=True)
            for line in odd_requests(target):
                print("4.", line, flush=True)
            for line in busy(target, args.side):
                print("5.", line, flush=True)
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(10)


if __name__ == "__main__":
    main()
