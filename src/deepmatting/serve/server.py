"""The web app over HTTP: a thin standard-library server around :class:`~deepmatting.serve.app.MattingApp`.

The server decides only what HTTP needs; the app decides what each request gets. What it guarantees:

- **Where requests may come from**: the ``Host`` header (exactly one) must name this machine as an IP
  address, ``localhost``, the name the server was bound to, or a name given with ``allowed_hosts``
  (``--allow-host``): other names are refused with 403, so DNS rebinding does not reach it. A request
  with an ``Origin`` header must come from the page's own origin (``http://`` + its ``Host``), and every
  ``POST`` must be ``Content-Type: application/json``: a web page elsewhere cannot drive the server, not
  even with a "simple" cross-origin request.
- **Waiting connections cost no thread**: a connection waits for its request head in one reception
  thread (:mod:`selectors`), which hands it to a thread of its own only once the whole head has arrived.
  An idle connection, or one trickling its head, costs a socket and a few bytes: at most
  :data:`MAX_WAITING` wait at once (:data:`MAX_WAITING_PER_ADDRESS` from one address); beyond that the
  one that has waited longest (of that address, if it has too many) is closed. After each answer a
  connection that goes on waits there again, so a keep-alive connection holds no thread either.
- **Bodies**: only ``Content-Length: 0 ..`` :attr:`MattingApp.max_body_bytes` is read, in chunks of at
  most 1 MiB; a missing, negative or malformed length, chunked encoding, or a larger body is refused
  before any of it is kept (a refused body is skipped when small; after a larger one the connection
  closes, after at most :data:`LINGER` s of reading and dropping, so that the client reads the answer).
  At most ``receiving`` bodies arrive at once (more are answered 503 at once), each at
  :data:`MIN_RATE` bytes/s at least once :data:`GRACE` s have passed (slower ones get 408), and a
  prediction takes its place in the app's queue only once its body has arrived: a slow upload holds a
  receiving place for a few seconds, never a prediction place.
- **Time**: the whole request (head and body) must arrive within ``timeout`` seconds of its first byte,
  however slowly it trickles in; a connection that sends nothing is closed after ``timeout`` seconds. An
  answer must be written within the same time, at :data:`MIN_RATE` bytes/s at least after :data:`GRACE`
  s. A late request gets 408 and its connection is closed.
- **Threads**: at most ``max_connections`` requests are served at once (one thread each); a request
  whose head arrives beyond that is answered 503 and closed at once. A client that goes away costs a
  closed connection and no log noise; one that goes while its prediction waits or runs stops it (the app
  checks between the steps of a prediction).
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
its test client). Here :mod:`http.server` parses the requests, :mod:`selectors` watches the waiting
connections, and the guarantees above take about 490 lines of code; the package keeps needing nothing
beyond the standard library to serve its page. The numbers, before and after, are in docs/server.md
("Reliability and security of the server").
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import select
import selectors
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ..backends import Backend, load_backend
from ..checkpoint import DEFAULT_QUALITY
from .app import EXAMPLES, JSON, MAX_PIXELS, PREDICTION_TIMEOUT, QUEUE, MattingApp, Response, UploadError

#: Seconds a whole request (head and body) may take to arrive from its first byte, an idle connection may
#: wait for one, and an answer may take to be written.
TIMEOUT = 30.0

#: Requests served at once (one thread each); a request whose head arrives beyond them is answered 503.
MAX_CONNECTIONS = 32

#: Request bodies that may arrive at once; one more is answered 503 at once.
RECEIVING = 4

#: Bytes a second a body must arrive at, and an answer be read at, once GRACE seconds have passed: a
#: client trickling its upload is cut after a few seconds, not after the whole timeout.
MIN_RATE = 2**16
GRACE = 2.0

#: Connections that may wait for a request head at once, in all and from one address; one more closes
#: the one that has waited longest (of that address when it is the address that has too many).
MAX_WAITING = 256
MAX_WAITING_PER_ADDRESS = 64

#: Bodies are read in chunks of at most this many bytes.
CHUNK = 2**20

#: A body the app does not read (a refused request) is skipped when it is at most this long, and the
#: connection goes on; after a longer one the connection closes, reading and dropping for at most LINGER s.
SKIP = 2**16
LINGER = 2.0

#: A waiting connection is handed to a thread once its head has ended, or once this much of it has come
#: (http.server then answers 414 or 431 for a line or a head too long).
HEAD_LIMIT = 2**17

_LENGTH = re.compile(r"[0-9]{1,18}")
_HOST = re.compile(r"(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+))(?::[0-9]{1,5})?")  # name or [IPv6], port
_REQUEST_LINE = re.compile(rb"[!-~]+ [!-~]+ HTTP/1\.[01]\r?\n")


def _rate_deadline(start: float, done: int) -> float:
    """When a transfer begun at ``start`` (``time.monotonic``) that has moved ``done`` bytes falls below
    :data:`MIN_RATE`, after the first :data:`GRACE` seconds."""
    return start + GRACE + done / MIN_RATE


class _RequestReader:
    """The bytes of one connection for :mod:`http.server`, every read bounded by ``deadline``
    (``time.monotonic``) and, while a body arrives (:meth:`body_started`), by :data:`MIN_RATE`.

    It starts with what the reception thread read already, and it keeps what is read beyond one request
    (a pipelined next request) for :meth:`leftover`. A per-read socket timeout alone lets a client that
    sends one byte a second hold a connection forever; here the whole request must arrive by the
    deadline, however it trickles in.
    """

    def __init__(self, sock: socket.socket, buffered: bytes, timeout: float):
        self.sock = sock
        self.buffer = bytearray(buffered)
        self.timeout = timeout
        self.deadline = math.inf
        self._body_start: float | None = None
        self._body_done = 0

    def body_started(self) -> None:
        """From now on the bytes must come at :data:`MIN_RATE` (after :data:`GRACE` s) as well."""
        self._body_start, self._body_done = time.monotonic(), len(self.buffer)

    def _fill(self) -> bool:
        """One receive into the buffer; False at the end of the stream."""
        limit, why = self.deadline, f"the request did not arrive within {self.timeout:g} s"
        slow = math.inf if self._body_start is None else _rate_deadline(self._body_start, self._body_done)
        if slow < limit:
            limit, why = slow, f"the body arrived at less than {MIN_RATE // 1024} KiB/s"
        left = limit - time.monotonic()
        if left <= 0:
            raise TimeoutError(why)
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(CHUNK)
        except TimeoutError:
            raise TimeoutError(why) from None
        self._body_done += len(data)
        self.buffer += data
        return bool(data)

    def readline(self, limit: int = -1) -> bytes:
        limit = limit if limit is not None and limit >= 0 else math.inf
        while (end := self.buffer.find(b"\n")) < 0 and len(self.buffer) < limit:
            if not self._fill():
                break
        cut = int(min(limit, len(self.buffer) if end < 0 else end + 1))
        line = bytes(self.buffer[:cut])
        del self.buffer[:cut]
        return line

    def read1(self, n: int) -> bytes:
        if not self.buffer:
            self._fill()
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    def leftover(self) -> bytes:
        """What was read beyond the request: the start of the next one."""
        return bytes(self.buffer)

    def close(self) -> None:  # the socket is the server's to close
        pass


def _answer_bytes(error: UploadError) -> bytes:
    """A whole JSON error answer that closes the connection, for the reception thread (no handler there)."""
    response = Response.error(error)
    head = [f"HTTP/1.1 {response.status} {HTTPStatus(response.status).phrase}",
            f"Content-Type: {JSON}", f"Content-Length: {len(response.body)}", "Connection: close",
            *(f"{name}: {value}" for name, value in response.headers)]
    return ("\r\n".join(head) + "\r\n\r\n").encode("ascii") + response.body


def _head_ready(buffer: bytearray) -> bool:
    """True when a waiting connection's bytes hold a whole request head, or something http.server should
    answer at once (a first line that is not an HTTP/1.x request line, or too much)."""
    if b"\n\r\n" in buffer or b"\n\n" in buffer or len(buffer) > HEAD_LIMIT:
        return True
    end = buffer.find(b"\n")
    return end >= 0 and not _REQUEST_LINE.fullmatch(buffer, 0, end + 1)


@dataclass(eq=False)
class _Waiting:
    """A connection in the reception thread: its socket, address, the bytes of a head that came so far."""

    sock: socket.socket
    address: tuple
    buffer: bytearray = field(default_factory=bytearray)
    since: float = field(default_factory=time.monotonic)  # when it began to wait
    started: float | None = None  # when the first byte of its request came


class _Reception:
    """The connections waiting for a request head, all watched by one thread.

    ``add`` (from any thread) puts a connection here; once its head has come, ``dispatch`` (the server's)
    is called with it, in this thread. Connections past their deadline are closed (408 when part of a
    request came), and the caps of :data:`MAX_WAITING` and :data:`MAX_WAITING_PER_ADDRESS` close the one
    that has waited longest.
    """

    def __init__(self, timeout: float, dispatch: Callable[[_Waiting], None], max_waiting: int,
                 max_per_address: int):
        self.timeout, self.dispatch = timeout, dispatch
        self.max_waiting, self.max_per_address = max_waiting, max_per_address
        self._selector = selectors.DefaultSelector()
        self._waiting: dict[socket.socket, _Waiting] = {}
        self._incoming: list[_Waiting] = []
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = socket.socketpair()
        for s in (self._wake_r, self._wake_w):
            s.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="reception", daemon=True)
        self._thread.start()

    def add(self, sock: socket.socket, address: tuple, buffered: bytes = b"") -> None:
        conn = _Waiting(sock, address, bytearray(buffered))
        if buffered:
            conn.started = conn.since
        with self._lock:
            self._incoming.append(conn)
        self._wake()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except OSError:  # the pipe is full: the thread is woken already
            pass

    def stop(self) -> None:
        self._stopped = True
        self._wake()
        self._thread.join(5)
        with self._lock:
            pending, self._incoming = self._incoming, []
        for conn in [*self._waiting.values(), *pending]:
            _close(conn.sock)
        self._waiting.clear()
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    def _deadline(self, conn: _Waiting) -> float:
        return (conn.since if conn.started is None else conn.started) + self.timeout

    def _run(self) -> None:
        while not self._stopped:
            now = time.monotonic()
            soonest = min((self._deadline(c) for c in self._waiting.values()), default=now + 1)
            for key, _ in self._selector.select(min(max(soonest - now, 0), 1.0)):
                if key.fileobj is self._wake_r:
                    while True:
                        try:
                            if not self._wake_r.recv(4096):
                                break
                        except OSError:
                            break
                elif key.data is not None:
                    self._receive(key.data)
            with self._lock:
                incoming, self._incoming = self._incoming, []
            for conn in incoming:
                self._take(conn)
            now = time.monotonic()
            for conn in [c for c in self._waiting.values() if self._deadline(c) <= now]:
                if conn.buffer:  # part of a request came: say why the connection closes
                    _send_quietly(conn.sock, _answer_bytes(UploadError(
                        f"the request did not arrive within {self.timeout:g} s", HTTPStatus.REQUEST_TIMEOUT)))
                self._drop(conn)

    def _take(self, conn: _Waiting) -> None:
        """Start watching ``conn``, closing the longest-waiting one when a cap is reached."""
        same = [c for c in self._waiting.values() if c.address[0] == conn.address[0]]
        if len(same) >= self.max_per_address:
            self._drop(min(same, key=lambda c: c.since))
        elif len(self._waiting) >= self.max_waiting:
            self._drop(min(self._waiting.values(), key=lambda c: c.since))
        try:
            conn.sock.setblocking(False)
            self._selector.register(conn.sock, selectors.EVENT_READ, conn)
        except (OSError, ValueError):
            _close(conn.sock)
            return
        self._waiting[conn.sock] = conn
        if _head_ready(conn.buffer):  # a pipelined request came with the previous one
            self._hand_over(conn)

    def _receive(self, conn: _Waiting) -> None:
        try:
            data = conn.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the client closed
            self._drop(conn)
            return
        if conn.started is None:
            conn.started = time.monotonic()
        conn.buffer += data
        if _head_ready(conn.buffer):
            self._hand_over(conn)

    def _forget(self, conn: _Waiting) -> None:
        self._waiting.pop(conn.sock, None)
        try:
            self._selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass

    def _hand_over(self, conn: _Waiting) -> None:
        self._forget(conn)
        self.dispatch(conn)

    def _drop(self, conn: _Waiting) -> None:
        self._forget(conn)
        _close(conn.sock)


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    """Send a short answer without waiting (what does not fit the socket's buffer is lost)."""
    try:
        sock.setblocking(False)
        sock.send(data)
    except OSError:
        pass


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    sock.close()


def request_refusal(method: str, headers, allowed_hosts: Iterable[str] = ()) -> UploadError | None:
    """Why a request may not be served because of where it comes from, or None when it may.

    Parameters
    ----------
    method : str
    headers : mapping of header names to values (``email.message.Message``, whose ``get_all`` sees
        repeated headers, or dict; case as sent)
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
    hosts = headers.get_all("Host", []) if hasattr(headers, "get_all") else [headers.get("Host")]
    if len(hosts) > 1:  # RFC 9112 3.2: a proxy in front might route by the other one
        return UploadError(f"the request has {len(hosts)} Host headers: send one", HTTPStatus.BAD_REQUEST)
    host = hosts[0] if hosts else None
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
    """Checks and reads one request within the server's limits, asks ``server.app``, writes its answer.

    The reception thread has read the head already (``buffered``, whose first byte came at ``started``);
    one request is served, and a connection that goes on is given back to the reception thread with what
    was read beyond it (:meth:`MattingServer.serve_connection`).
    """

    server: MattingServer
    server_version = "deepmatting"
    protocol_version = "HTTP/1.1"

    def __init__(self, request, client_address, server: MattingServer, buffered: bytes = b"",
                 started: float | None = None):
        self._buffered = buffered
        self._started = time.monotonic() if started is None else started
        super().__init__(request, client_address, server)

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # the plain socket file: replaced by one that keeps the deadline
        self.rfile = _RequestReader(self.connection, self._buffered, self.server.timeout_s)

    def handle(self) -> None:
        self.close_connection = True
        self.handle_one_request()

    def handle_one_request(self) -> None:
        """One request: read the head by the deadline, then answer (any method)."""
        self.rfile.deadline = self._started + self.server.timeout_s
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
                self._write(self.server.app.respond(self.command, self.path, self._read_body,
                                                    self._client_gone))
            self._discard_unread()
        except TimeoutError as e:
            self.close_connection = True
            if not self._answered and self.command:  # the head came in part: say why it is closed
                self._quietly(self._write, Response.error(UploadError(str(e), HTTPStatus.REQUEST_TIMEOUT)))
        except ConnectionError:  # the client went away: nothing to answer, nothing to report
            self.close_connection = True

    def _read_body(self, limit: int) -> bytes:
        """The body, read by the deadline and at :data:`MIN_RATE` in chunks, in one of the server's
        receiving places; :class:`UploadError` for a bad, too long, too slow one, or no place left."""
        length = self.headers.get("Content-Length")
        if length is None or self.headers.get("Transfer-Encoding") is not None:
            raise UploadError("send the body with a Content-Length header (chunked encoding is not accepted)",
                              HTTPStatus.LENGTH_REQUIRED)
        if self._unread is None:
            raise UploadError(f"the Content-Length {length!r} is not a byte count", HTTPStatus.BAD_REQUEST)
        if self._unread > limit:
            raise UploadError(f"the request is {self._unread / 2**20:.0f} MiB; the limit is "
                              f"{limit / 2**20:.0f} MiB", HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        if not self.server.receiving.acquire(blocking=False):
            raise UploadError(f"the server is busy: {self.server.receiving_places} uploads are arriving; "
                              "try again in a few seconds", HTTPStatus.SERVICE_UNAVAILABLE,
                              (("Retry-After", "5"),))
        try:
            self.rfile.body_started()
            return b"".join(self._receive())
        except TimeoutError as e:
            raise UploadError(f"{e}: the connection is closed", HTTPStatus.REQUEST_TIMEOUT) from None
        except ConnectionError:  # the answer will most likely not reach the client either
            raise UploadError("the client went away before sending its whole body") from None
        finally:
            self.server.receiving.release()

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

    def _client_gone(self) -> bool:
        """True when the client has closed its connection (or reset it): its answer would reach no one."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and not self.connection.recv(1, socket.MSG_PEEK)
        except (OSError, ValueError):
            return True

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
        self.rfile.deadline = min(self.rfile.deadline, time.monotonic() + LINGER)
        try:
            self.connection.shutdown(socket.SHUT_WR)
            while self.rfile.read1(CHUNK):
                pass
        except OSError:  # TimeoutError and ConnectionError included
            pass

    def _write(self, response: Response) -> None:
        """Send ``response`` within the timeout and at :data:`MIN_RATE` (no body for HEAD); log it once it
        is sent."""
        if self._unread is None or self._unread > SKIP:
            self.close_connection = True  # a body that will not be read: the connection cannot go on
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
        head = b"".join(getattr(self, "_headers_buffer", []))  # none for an HTTP/0.9 request
        head += b"\r\n" if self.request_version != "HTTP/0.9" else b""
        self._headers_buffer = []
        self._send(head + (response.body if self.command != "HEAD" else b""))
        self.log_message('"%s" %s %s', self.requestline, response.status, len(response.body))

    def _send(self, data: bytes) -> None:
        """All of ``data`` within the timeout, at :data:`MIN_RATE` at least after :data:`GRACE` s."""
        view, sent, start = memoryview(data), 0, time.monotonic()
        while sent < len(view):
            left = min(start + self.server.timeout_s, _rate_deadline(start, sent)) - time.monotonic()
            if left <= 0:
                raise TimeoutError("the answer was not read in time")
            self.connection.settimeout(left)
            sent += self.connection.send(view[sent:sent + CHUNK])

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
    """A threading HTTP server whose waiting connections cost no thread; ``app``, limits and policy as
    attributes.

    Accepted connections go to the reception thread (:class:`_Reception`); a connection whose request head
    has come is served in a thread of its own, at most ``max_connections`` at once. See
    :func:`make_server` for the parameters.
    """

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: MattingApp, *, timeout: float = TIMEOUT,
                 max_connections: int = MAX_CONNECTIONS, receiving: int = RECEIVING,
                 allowed_hosts: Iterable[str] = (), quiet: bool = False, max_waiting: int = MAX_WAITING,
                 max_waiting_per_address: int = MAX_WAITING_PER_ADDRESS):
        if not (math.isfinite(timeout) and timeout > 0) or min(max_connections, receiving, max_waiting,
                                                                 max_waiting_per_address) < 1:
            raise ValueError(f"timeout must be a positive number and max_connections, receiving and the "
                             f"waiting caps >= 1, got {timeout}, {max_connections}, {receiving}, "
                             f"{max_waiting}, {max_waiting_per_address}")
        self.app = app
        self.timeout_s = float(timeout)
        self.max_connections = int(max_connections)
        self.receiving_places = int(receiving)
        self.receiving = threading.BoundedSemaphore(self.receiving_places)
        host = address[0]
        self.allowed_hosts = frozenset(h.lower() for h in (*allowed_hosts, host) if h)
        self.quiet = quiet
        self._workers = threading.BoundedSemaphore(self.max_connections)
        self._reception = _Reception(self.timeout_s, self._dispatch, max_waiting, max_waiting_per_address)
        super().__init__(address, MattingRequestHandler)  # a failed bind stops the reception (server_close)

    def process_request(self, request: socket.socket, client_address) -> None:
        """A new connection waits for its request head in the reception thread."""
        self._reception.add(request, client_address)

    def _dispatch(self, conn: _Waiting) -> None:
        """A connection whose head has come: a thread serves it, or it is answered 503 when none is free."""
        if self._workers.acquire(blocking=False):
            try:
                conn.sock.setblocking(True)
                threading.Thread(target=self.serve_connection, args=(conn,), daemon=True).start()
                return
            except (OSError, RuntimeError):  # no thread could start
                self._workers.release()
        _send_quietly(conn.sock, _answer_bytes(UploadError(
            f"the server is busy: {self.max_connections} requests are being served; try again in a few "
            "seconds", HTTPStatus.SERVICE_UNAVAILABLE, (("Retry-After", "5"),))))
        _close(conn.sock)

    def serve_connection(self, conn: _Waiting) -> None:
        """Serve one request of ``conn`` (in its own thread); give the connection back if it goes on."""
        leftover = None
        try:
            handler = self.RequestHandlerClass(conn.sock, conn.address, self, bytes(conn.buffer),
                                               conn.started)
            if not handler.close_connection:
                leftover = handler.rfile.leftover()
        except Exception:  # noqa: BLE001 - reported; the server goes on
            self.handle_error(conn.sock, conn.address)
        finally:
            self._workers.release()
            if leftover is None:
                _close(conn.sock)
            else:
                self._reception.add(conn.sock, conn.address, leftover)

    def server_close(self) -> None:
        super().server_close()
        self._reception.stop()

    def handle_error(self, request, client_address) -> None:
        """A client that vanished or stalled is not an error of the server; anything else is reported."""
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def make_server(backend: Backend, host: str = "127.0.0.1", port: int = 7860, *, max_pixels: int = MAX_PIXELS,
                examples: int = EXAMPLES, queue: int = QUEUE, timeout: float = TIMEOUT,
                prediction_timeout: float = PREDICTION_TIMEOUT, max_connections: int = MAX_CONNECTIONS,
                receiving: int = RECEIVING, allowed_hosts: Iterable[str] = (), quality: str | None = None,
                device: str = "auto", quiet: bool = False) -> MattingServer:
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
        Seconds a request may take to arrive (head and body) from its first byte, an idle connection may
        wait for one, and an answer may take to be written.
    prediction_timeout : float
        Seconds one prediction may hold the model; a longer one is stopped and answered 503 (see
        :class:`MattingApp`).
    max_connections : int
        Requests served at once (one thread each); more are answered 503. Connections waiting for a
        request head do not count.
    receiving : int
        Request bodies that may arrive at once; more are answered 503.
    allowed_hosts : iterable of str
        Names the ``Host`` header may carry besides IP addresses, ``localhost`` and ``host``.
    quality, device : str, optional
        The shipped quality ``backend`` runs, if it is a shipped model: the page then offers every quality
        that ships, the others loaded on first use on ``device`` (see :class:`MattingApp`).
    quiet : bool
        Do not log each request to stderr.

    Raises
    ------
    OSError
        When it cannot listen there (a port in use, an unknown host name), naming the address.

    Examples
    --------
    >>> server = make_server(TorchBackend(DeepMatting(), "cpu"), port=0)  # doctest: +SKIP
    >>> threading.Thread(target=server.serve_forever, daemon=True).start()  # doctest: +SKIP
    """
    app = MattingApp(backend, max_pixels=max_pixels, examples=examples, queue=queue, quality=quality,
                     device=device, prediction_timeout=prediction_timeout)
    try:
        server = MattingServer((host, port), app, timeout=timeout, max_connections=max_connections,
                               receiving=receiving, allowed_hosts=allowed_hosts, quiet=quiet)
    except OSError as e:
        raise OSError(f"cannot listen on {host}:{port}: {e.strerror or e}") from e
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
        ``max_pixels``, ``queue``, ``timeout``, ``prediction_timeout``, ``max_connections``, ``receiving``,
        ``allowed_hosts``: see :func:`make_server`.
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
