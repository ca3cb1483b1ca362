"""The web app over HTTP: a thin standard-library server around :class:`~deepmatting.serve.app.MattingApp`.

The server decides only what HTTP needs; the app decides what each request gets. What it guarantees:

- **Where requests may come from**: the ``Host`` header must name this machine as an IP address,
  ``localhost``, the name the server was bound to, or a name given with ``allowed_hosts``
  (``--allow-host``): other names are refused with 403, so DNS rebinding does not reach it. A request
  with an ``Origin`` header must come from the page's own origin (``http://`` + its ``Host``), and every
  ``POST`` must be ``Content-Type: application/json``: a web page elsewhere cannot drive the server, not
  even with a "simple" cross-origin request.
- **Bodies**: only ``Content-Length: 0 ..`` :attr:`MattingApp.max_body_bytes` is read, in chunks of at
  most 1 MiB; a missing, negative or malformed length, chunked encoding, or a larger body is refused
  before any of it is kept (a refused body is skipped when small; after a larger one the connection
  closes, after at most :data:`LINGER` s of reading and dropping, so that the client reads the answer).
- **Time**: the whole request (headers and body) must arrive within ``timeout`` seconds of the previous
  answer (or of the connection), however slowly it trickles in; answers are written within the same time.
  A late request gets 408 and its connection is closed.
- **Connections**: at most ``max_connections`` at once (one thread each); the next one is answered 503
  and closed at once. A client that goes away costs a closed connection and no log noise.
- **Errors**: every answer, 404, 405 (unsupported methods) and malformed requests included, is JSON
  ``{"error": message}``.

Why the standard library and not Starlette/FastAPI on uvicorn: with the same routes on Starlette 1.10 +
uvicorn 0.54 (``limit_concurrency=32``), ``scripts/serve_hostile.py`` measured that the framework handles
``Content-Length: -1`` (h11 answers 400) and makes slow connections cheap (coroutines, not threads), but
that a client announcing 200 MB and sending 10 bytes, or one trickling its headers, is still held for as
long as it likes (uvicorn has no request-receipt timeout: ``timeout_keep_alive`` applies between
requests only, and ASGI code runs after the headers), that a ``Content-Length`` of 10^12 is waited for
(Starlette sets no body limit), that ``Host``/``Origin`` go unchecked, and that deep JSON and unsupported
methods still give a 500 and text/plain 405s. Each of those needs code of our own there too (a deadline
wrapped around uvicorn's protocol class, two middlewares, exception handlers, a bounded body reader), on
top of eight new packages (starlette, anyio, uvicorn, h11, click, idna, typing-extensions, and httpx for
its test client). Here the guarantees above take about 250 lines of code, and the package keeps needing
nothing beyond the standard library to serve its page. The numbers, before and after, are in the README
("Reliability and security of the server").
"""

from __future__ import annotations

import io
import ipaddress
import math
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ..backends import Backend, load_backend
from ..checkpoint import DEFAULT_QUALITY
from .app import EXAMPLES, JSON, MAX_PIXELS, QUEUE, MattingApp, Response, UploadError

#: Seconds a whole request (headers and body) may take to arrive, and an answer to be written.
TIMEOUT = 30.0

#: Connections served at once (one thread each); more are answered 503 and closed.
MAX_CONNECTIONS = 32

#: Bodies are read in chunks of at most this many bytes.
CHUNK = 2**20

#: A body the app does not read (a refused request) is skipped when it is at most this long, and the
#: connection goes on; after a longer one the connection closes, reading and dropping for at most LINGER s.
SKIP = 2**16
LINGER = 2.0

_LENGTH = re.compile(r"[0-9]{1,18}")
_HOST = re.compile(r"(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+))(?::[0-9]{1,5})?")  # name or [IPv6], port


class _DeadlineReader(io.RawIOBase):
    """The socket's bytes, every read bounded by what is left before ``deadline`` (``time.monotonic``).

    A per-read socket timeout alone lets a client that sends one byte a second hold a connection forever;
    here the whole request must arrive by the deadline, however it trickles in.
    """

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.deadline = math.inf

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request did not arrive in time")
        self.sock.settimeout(left)
        return self.sock.recv_into(buffer)


def request_refusal(method: str, headers, allowed_hosts: Iterable[str] = ()) -> UploadError | None:
    """Why a request may not be served because of where it comes from, or None when it may.

    Parameters
    ----------
    method : str
    headers : mapping of header names to values (``email.message.Message`` or dict; case as sent)
    allowed_hosts : names (lower case) that ``Host`` may carry besides IP addresses and ``localhost``

    Examples
    --------
    >>> request_refusal("GET", {"Host": "127.0.0.1:7860"}) is None
    True
    >>> request_refusal("GET", {"Host": "evil.example:7860"}).status
    403
    >>> request_refusal("POST", {"Host": "localhost:7860", "Origin": "http://evil.example",
    ...                          "Content-Type": "application/json"}).status
    403
    >>> request_refusal("POST", {"Host": "localhost:7860", "Content-Type": "text/plain"}).status
    415
    """
    host = headers.get("Host")
    if not host:
        return UploadError("the request has no Host header", HTTPStatus.BAD_REQUEST)
    match = _HOST.fullmatch(host)
    name = (match[1] or match[2]).lower() if match else ""
    if not (_is_ip(name) or name == "localhost" or name.endswith(".localhost") or name in set(allowed_hosts)):
        return UploadError(f"this server does not answer to the name {host!r}: open it by its address, "
                           "or start it with --allow-host NAME", HTTPStatus.FORBIDDEN)
    origin = headers.get("Origin")
    if origin is not None and origin.lower() != f"http://{host}".lower():
        return UploadError(f"refused a request from a page at {origin}: only this server's own page may "
                           "use it", HTTPStatus.FORBIDDEN)
    if method == "POST":
        content_type = (headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        if content_type != JSON:
            return UploadError(f"send JSON with the header Content-Type: {JSON} "
                               f"(got {content_type or 'none'})", HTTPStatus.UNSUPPORTED_MEDIA_TYPE)
    return None


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class MattingRequestHandler(BaseHTTPRequestHandler):
    """Checks and reads one request within the server's limits, asks ``server.app``, writes its answer."""

    server: MattingServer
    server_version = "deepmatting"
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # the plain socket file: replaced by one that keeps the deadline
        self._reader = _DeadlineReader(self.connection)
        self.rfile = io.BufferedReader(self._reader, 65536)

    def handle_one_request(self) -> None:
        """One request of the connection: read the head by the deadline, then answer (any method)."""
        self._reader.deadline = time.monotonic() + self.server.timeout_s
        self._unread: int | None = 0  # body bytes not read yet; None: unknown (bad length, chunked)
        self._answered = False
        self.command, self.requestline = None, ""
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if not self.raw_requestline:
                self.close_connection = True
                return
            if len(self.raw_requestline) > 65536:
                self.requestline, self.request_version, self.command = "", "", ""
                self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG)
                return
            if not self.parse_request():  # it answered (send_error) already
                return
            self._unread = _declared_length(self.headers)
            refusal = request_refusal(self.command, self.headers, self.server.allowed_hosts)
            if refusal is not None:
                self._write(Response.error(refusal))
            else:
                self._write(self.server.app.respond(self.command, self.path, self._read_body))
            self._discard_unread()
        except TimeoutError:
            self.close_connection = True
            if not self._answered and self.command:  # the head came in part: say why it is closed
                self._quietly(self._write, Response.error(UploadError(
                    f"the request did not arrive within {self.server.timeout_s:g} s",
                    HTTPStatus.REQUEST_TIMEOUT)))
        except ConnectionError:  # the client went away: nothing to answer, nothing to report
            self.close_connection = True

    def _read_body(self, limit: int) -> bytes:
        """The body, read by the deadline in chunks; :class:`UploadError` for a bad or too long one."""
        length = self.headers.get("Content-Length")
        if length is None or self.headers.get("Transfer-Encoding") is not None:
            raise UploadError("send the body with a Content-Length header (chunked encoding is not accepted)",
                              HTTPStatus.LENGTH_REQUIRED)
        if self._unread is None:
            raise UploadError(f"the Content-Length {length!r} is not a byte count", HTTPStatus.BAD_REQUEST)
        if self._unread > limit:
            raise UploadError(f"the request is {self._unread / 2**20:.0f} MiB; the limit is "
                              f"{limit / 2**20:.0f} MiB", HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        try:
            return b"".join(self._receive())
        except TimeoutError:
            raise UploadError(f"the request did not arrive within {self.server.timeout_s:g} s",
                              HTTPStatus.REQUEST_TIMEOUT) from None
        except ConnectionError:  # the answer will most likely not reach the client either
            raise UploadError("the client went away before sending its whole body") from None

    def _receive(self) -> Iterator[bytes]:
        """The unread body in chunks of at most :data:`CHUNK` bytes, by the deadline; a body that stops short
        raises (``TimeoutError``, ``ConnectionError``) and leaves the connection to be closed."""
        try:
            while self._unread:
                chunk = self.rfile.read1(min(self._unread, CHUNK))
                if not chunk:
                    raise ConnectionError("the client closed its side")
                self._unread -= len(chunk)
                yield chunk
        except (TimeoutError, ConnectionError):
            self._unread = None
            raise

    def _discard_unread(self) -> None:
        """A body the app did not read: a small one is skipped and the connection goes on; otherwise the
        connection is closed after at most :data:`LINGER` s of reading and dropping what still comes (so
        that a client still sending can read the answer rather than a reset)."""
        if not self._unread and self._unread is not None:
            return
        if not self.close_connection:
            try:
                for _ in self._receive():
                    pass
                return
            except (TimeoutError, ConnectionError):
                self.close_connection = True
        self._reader.deadline = min(self._reader.deadline, time.monotonic() + LINGER)
        try:
            self.connection.shutdown(socket.SHUT_WR)
            while self.rfile.read1(CHUNK):
                pass
        except OSError:  # TimeoutError and ConnectionError included
            pass

    def _write(self, response: Response) -> None:
        """Send ``response`` within the timeout (no body for HEAD); log it once it is sent."""
        if self._unread is None or self._unread > SKIP:
            self.close_connection = True  # a body that will not be read: the connection cannot go on
        self.connection.settimeout(self.server.timeout_s)
        self._answered = True
        self.send_response_only(response.status)
        self.send_header("Date", self.date_time_string())
        self.send_header("Server", self.version_string())
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in response.headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)
        self.wfile.flush()
        self.log_message('"%s" %s %s', self.requestline, response.status, len(response.body))

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors found by :mod:`http.server` itself (bad request line, headers too long, ...), as JSON."""
        self.close_connection = True
        self.request_version = "HTTP/1.0"  # a status line and headers, even when the version was unreadable
        status = HTTPStatus(code)
        self._write(Response.error(UploadError(message or status.phrase, status)))

    @staticmethod
    def _quietly(write, *args) -> None:
        try:
            write(*args)
        except OSError:
            pass

    def log_request(self, code="-", size="-") -> None:  # _write logs once the answer is sent
        pass

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the signature of the base class
        if not self.server.quiet:
            super().log_message(format, *args)


def _declared_length(headers) -> int | None:
    """The body length a request declares: 0 without one, None when it cannot be trusted."""
    if headers.get("Transfer-Encoding") is not None:
        return None
    lengths = headers.get_all("Content-Length") or []
    if not lengths:
        return 0
    if len(set(lengths)) != 1 or not _LENGTH.fullmatch(lengths[0]):
        return None
    return int(lengths[0])


class MattingServer(ThreadingHTTPServer):
    """A threading HTTP server with a cap on connections; ``app``, limits and policy as attributes.

    See :func:`make_server` for the parameters.
    """

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: MattingApp, *, timeout: float = TIMEOUT,
                 max_connections: int = MAX_CONNECTIONS, allowed_hosts: Iterable[str] = (),
                 quiet: bool = False):
        if timeout <= 0 or max_connections < 1:
            raise ValueError(f"timeout must be positive and max_connections >= 1, got {timeout}, "
                             f"{max_connections}")
        self.app = app
        self.timeout_s = float(timeout)
        self.max_connections = int(max_connections)
        host = address[0]
        self.allowed_hosts = frozenset(h.lower() for h in (*allowed_hosts, host) if h)
        self.quiet = quiet
        self._slots = threading.BoundedSemaphore(self.max_connections)
        super().__init__(address, MattingRequestHandler)

    def process_request(self, request: socket.socket, client_address) -> None:
        if not self._slots.acquire(blocking=False):
            body = Response.error(UploadError(
                f"the server is busy: {self.max_connections} connections are open; try again in a few "
                "seconds",
                HTTPStatus.SERVICE_UNAVAILABLE)).body
            head = (f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: {JSON}\r\nContent-Length: {len(body)}"
                    "\r\nRetry-After: 5\r\nConnection: close\r\n\r\n").encode("ascii")
            try:
                request.settimeout(1.0)
                request.sendall(head + body)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: socket.socket, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request, client_address) -> None:
        """A client that vanished or stalled is not an error of the server; anything else is reported."""
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def make_server(backend: Backend, host: str = "127.0.0.1", port: int = 7860, *, max_pixels: int = MAX_PIXELS,
                examples: int = EXAMPLES, queue: int = QUEUE, timeout: float = TIMEOUT,
                max_connections: int = MAX_CONNECTIONS, allowed_hosts: Iterable[str] = (),
                quality: str | None = None, device: str = "auto", quiet: bool = False) -> MattingServer:
    """A ready (not yet serving) HTTP server for the web app; call ``serve_forever()`` on it.

    Parameters
    ----------
    backend : Backend
        The model, loaded once (see :func:`deepmatting.backends.load_backend`) and used for every request.
    host, port : str, int
        Where to listen; port 0 picks a free port (read it back from ``server.server_address``).
    max_pixels : int
        Larger uploads are refused with a message; the body limit follows from it.
    examples : int
        Number of built-in synthetic examples offered by the page (made in the background from now on).
    queue : int
        Predictions that may wait while one runs; more are answered 503 "busy".
    timeout : float
        Seconds a request may take to arrive (headers and body), and an answer to be written.
    max_connections : int
        Connections served at once; more are answered 503.
    allowed_hosts : iterable of str
        Names the ``Host`` header may carry besides IP addresses, ``localhost`` and ``host``.
    quality, device : str, optional
        The shipped quality ``backend`` runs, if it is a shipped model: the page then offers every quality
        that ships, the others loaded on first use on ``device`` (see :class:`MattingApp`).
    quiet : bool
        Do not log each request to stderr.

    Examples
    --------
    >>> server = make_server(TorchBackend(DeepMatting(), "cpu"), port=0)  # doctest: +SKIP
    >>> threading.Thread(target=server.serve_forever, daemon=True).start()  # doctest: +SKIP
    """
    app = MattingApp(backend, max_pixels=max_pixels, examples=examples, queue=queue, quality=quality,
                     device=device)
    server = MattingServer((host, port), app, timeout=timeout, max_connections=max_connections,
                           allowed_hosts=allowed_hosts, quiet=quiet)
    threading.Thread(target=app.warm, name="examples", daemon=True).start()
    return server


def serve(checkpoint: str | os.PathLike | None = None, host: str = "127.0.0.1", port: int = 7860, *,
          onnx: str | os.PathLike | None = None, quality: str | None = None, device: str = "auto",
          **options) -> None:
    """Load a model once and serve the web app until interrupted (Ctrl+C).

    Parameters
    ----------
    checkpoint : path, optional
        A ``.pt`` checkpoint; the default model that ships with the package when omitted (a
        ``CheckpointError`` says so when none does).
    host, port : str, int
        Where to listen (``127.0.0.1``: this machine only).
    onnx : path, optional
        An exported ONNX model to run with onnxruntime instead of a checkpoint.
    quality : "fast", "best" or "fusion", optional
        Which shipped model, when neither ``checkpoint`` nor ``onnx`` is given (default
        ``checkpoint.DEFAULT_QUALITY``, ``"fusion"``); the
        page offers the other qualities that ship too, each loaded on its first request.
    device : str
        Where a PyTorch model runs: ``auto|cpu|cuda|mps``.
    **options
        ``max_pixels``, ``queue``, ``timeout``, ``max_connections``, ``allowed_hosts``: see
        :func:`make_server`.
    """
    backend = load_backend(checkpoint, onnx=onnx, quality=quality, device=device)
    if checkpoint is None and onnx is None:
        quality = quality or DEFAULT_QUALITY  # load_backend's default
    server = make_server(backend, host, port, quality=quality, device=device, **options)
    shown = "127.0.0.1" if host in ("", "0.0.0.0") else host
    url = f"http://{shown}:{server.server_address[1]}/"
    offered = f" (qualities: {', '.join(server.app.qualities)})" if len(server.app.qualities) > 1 else ""
    print(f"deepmatting web app: {server.app.name}{offered} on {url} (Ctrl+C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
