"""The server's limits against slow, idle and hostile clients, and on what one prediction may cost.

Reliability matrix (turn 3): slow uploads no longer hold prediction places (C5, C6), idle connections no
thread (C7), a prediction has a time limit and stops when its client has gone (D2), uploads are decoded
only as the documented formats (D7), a liar PNG upload is refused (D9), two Host headers are a 400 (D15),
a PNG's late eXIf no longer makes every guide the wrong size (D16), and the ``serve`` options are checked
(D13).
"""

import argparse
import base64
import contextlib
import email.message
import io
import json
import socket
import struct
import threading
import time
import zlib

import numpy as np
import pytest
from PIL import Image
from test_serve import JSON, _answer, _closed, _connect, _head, _png, _raw

from deepmatting.data import image_size, read_image
from deepmatting.inference import predict
from deepmatting.serve import MattingApp, MattingServer, make_server, request_refusal
from deepmatting.serve import app as app_module
from deepmatting.serve import server as server_module


def _payload(h=40, w=48, image=None, trimap=None):
    image = _png(np.full((h, w, 3), 90, np.uint8)) if image is None else image
    return {"image": image, "trimap": _png(np.full((h, w), 128, np.uint8)) if trimap is None else trimap}


def _body(payload):
    return json.dumps(payload).encode()


def _predict_raw(url, payload, timeout=10.0):
    data = _body(payload)
    return _raw(url, _head(url, "POST", "/api/predict", {"Content-Type": JSON, "Content-Length": len(data)})
                + data, timeout)


@contextlib.contextmanager
def _serving(server):
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _slow_upload(url, announced=1000):
    """A connection that sent a whole POST head and 10 bytes of its body, and nothing more."""
    s = _connect(url)
    s.sendall(_head(url, "POST", "/api/predict", {"Content-Type": JSON, "Content-Length": announced})
              + b'{"image":"')
    return s


class _SlowFirstBackend:
    """A trimap model whose first call takes ``seconds`` (the rest are instant); alpha 0.5 everywhere."""

    pad_multiple, input = 32, "trimap"

    def __init__(self, seconds=0.0, gate=None):
        self.seconds, self.gate, self.calls = seconds, gate, 0
        self.entered = threading.Event()

    def __call__(self, image, trimap):
        self.calls += 1
        self.entered.set()
        if self.calls == 1:
            if self.gate is not None:
                assert self.gate.wait(20)
            time.sleep(self.seconds)
        return np.full((image.shape[0], 1, *image.shape[2:]), 0.5, np.float32)


# ---- C5, C6: slow uploads hold a receiving place for a few seconds, never a prediction place -----------
def test_slow_uploads_leave_the_prediction_place_free(start_server, tiny_backend):
    url = start_server(tiny_backend, queue=0, timeout=5.0, examples=0)  # one prediction place in all
    slow = [_slow_upload(url) for _ in range(3)]
    try:
        time.sleep(0.2)
        start = time.monotonic()
        status, _, body = _predict_raw(url, _payload())
        assert status == 200 and json.loads(body)["width"] == 48 and time.monotonic() - start < 3
    finally:
        for s in slow:
            s.close()


def test_a_body_below_the_minimum_rate_is_cut_before_the_timeout(start_server, tiny_backend, monkeypatch):
    monkeypatch.setattr(server_module, "GRACE", 0.3)
    url = start_server(tiny_backend, timeout=20.0, examples=0)
    with _slow_upload(url) as s:
        start = time.monotonic()
        status, headers, body = _answer(s)
        assert status == 408 and "less than 64 KiB/s" in json.loads(body)["error"]
        assert time.monotonic() - start < 3 and headers["connection"] == "close"


def test_uploads_beyond_the_receiving_places_are_answered_busy(start_server, tiny_backend):
    url = start_server(tiny_backend, receiving=1, timeout=5.0, examples=0)
    with _slow_upload(url):
        time.sleep(0.2)
        status, headers, body = _predict_raw(url, _payload())
        assert status == 503 and "uploads are arriving" in json.loads(body)["error"]
        assert headers["retry-after"] == "5"
    time.sleep(0.2)
    assert _predict_raw(url, _payload())[0] == 200  # the place is given back when the client goes


# ---- C7: idle connections cost no thread; beyond the waiting cap the oldest is closed ------------------
def test_idle_connections_hold_no_thread(start_server, tiny_backend):
    url = start_server(tiny_backend, max_connections=2, timeout=5.0, examples=0)
    idle = [_connect(url) for _ in range(20)]
    try:
        time.sleep(0.2)
        assert _raw(url, _head(url, "GET", "/api/info"))[0] == 200
        assert _predict_raw(url, _payload())[0] == 200
    finally:
        for s in idle:
            s.close()


def test_beyond_the_waiting_cap_the_longest_waiting_connection_is_closed(tiny_backend):
    app = MattingApp(tiny_backend, examples=0)
    server = MattingServer(("127.0.0.1", 0), app, quiet=True, max_waiting=4, max_waiting_per_address=4)
    with _serving(server) as url:
        idle = [_connect(url) for _ in range(4)]
        for _ in idle:
            time.sleep(0.05)  # in order of age
        try:
            assert _raw(url, _head(url, "GET", "/api/info"))[0] == 200
            assert _closed(idle[0], timeout=2)  # the oldest made room for the new connection
            with pytest.raises(TimeoutError):  # the newest still waits
                idle[-1].settimeout(0.2)
                idle[-1].recv(1)
        finally:
            for s in idle:
                s.close()


def test_a_connection_goes_on_after_its_answer_and_pipelined_requests_are_answered(server_url):
    get = _head(server_url, "GET", "/api/info")
    with _connect(server_url) as s:
        for _ in range(2):  # keep-alive: the connection waits in the reception thread between requests
            s.sendall(get)
            assert _answer(s)[0] == 200
        s.sendall(get + get + _head(server_url, "HEAD", "/api/info"))
        data, end = b"", time.monotonic() + 10
        while data.count(b"HTTP/1.1 200") < 3 and time.monotonic() < end:
            data += s.recv(65536)
        assert data.count(b"HTTP/1.1 200") == 3


# ---- D2: a time limit on one prediction, and a client that has gone stops its prediction -------------
def test_a_prediction_over_the_time_limit_is_answered_503_and_the_next_runs():
    backend = _SlowFirstBackend(seconds=0.6)
    server = make_server(backend, "127.0.0.1", 0, prediction_timeout=0.2, examples=0, quiet=True)
    with _serving(server) as url:
        start = time.monotonic()
        status, _, body = _predict_raw(url, _payload())
        held = time.monotonic() - start
        assert status == 503 and "limit of 0.2 s" in json.loads(body)["error"] and held < 3
        server.app.prediction_timeout = 60.0  # the next one, instant, is not held up by the first
        status, _, body = _predict_raw(url, _payload())
        assert status == 200 and json.loads(body)["width"] == 48 and backend.calls == 2


def test_predict_stops_between_tiles_when_its_check_raises():
    backend = _SlowFirstBackend()
    image, trimap = np.full((64, 256, 3), 0.5, np.float32), np.full((64, 256), 128, np.uint8)

    def check():
        if backend.calls >= 1:
            raise TimeoutError("stop")

    with pytest.raises(TimeoutError, match="stop"):
        predict(image, trimap, backend=backend, tile_size=64, tile_overlap=0, check=check)
    assert backend.calls == 1  # of the 4 tiles, only the first ran


def test_a_waiting_prediction_whose_client_has_gone_is_skipped(start_server):
    gate = threading.Event()
    backend = _SlowFirstBackend(gate=gate)
    url = start_server(backend, queue=1, examples=0)
    first = []
    thread = threading.Thread(target=lambda: first.append(_predict_raw(url, _payload())))
    thread.start()
    try:
        assert backend.entered.wait(20)
        data = _body(_payload())
        with _connect(url) as s:  # a second request waits behind the first, then its client leaves
            s.sendall(_head(url, "POST", "/api/predict", {"Content-Type": JSON, "Content-Length": len(data)})
                      + data)
            time.sleep(0.3)
    finally:
        gate.set()
        thread.join(20)
    assert first[0][0] == 200
    time.sleep(0.3)
    assert backend.calls == 1  # the second prediction did not run
    assert _predict_raw(url, _payload())[0] == 200 and backend.calls == 2


# ---- D7, D9, D16: what an upload may be ----------------------------------------------------------------
def _file(save, **kwargs):
    buffer = io.BytesIO()
    save(buffer, **kwargs)
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.mark.parametrize("kind", ["PCX", "TGA", "PPM", "EPS"])
def test_uploads_other_than_the_five_formats_are_refused_415(tiny_backend, kind):
    app = MattingApp(tiny_backend, examples=0)
    if kind == "EPS":  # Pillow's EPS decoder runs Ghostscript on it
        image = base64.b64encode(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 48 40\nshowpage\n").decode()
    else:
        image = _file(Image.new("RGB", (48, 40)).save, format=kind)
    answer = app.respond("POST", "/api/predict", lambda limit: _body(_payload(image=image)))
    assert answer.status == 415
    message = json.loads(answer.body)["error"]
    assert "not an image this server can read (PNG, JPEG, WebP, BMP, TIFF)" in message


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def test_a_liar_png_upload_is_refused_as_truncated(tiny_backend):
    liar = (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", 200, 160, 8, 2, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(b"\0" * 601)) + _chunk(b"IEND", b""))
    with pytest.raises(ValueError, match="truncated"):
        read_image(io.BytesIO(liar))
    app = MattingApp(tiny_backend, examples=0)
    payload = _payload(160, 200, image=base64.b64encode(liar).decode())
    answer = app.respond("POST", "/api/predict", lambda limit: _body(payload))
    assert answer.status == 400 and "truncated" in json.loads(answer.body)["error"]


def test_a_png_whose_exif_comes_after_its_pixels_is_read_at_its_header_size(tiny_backend):
    exif = Image.Exif()
    exif[0x0112] = 6  # "turn by 90 degrees", but stored after IDAT, where the PNG specification allows none
    png = base64.b64decode(_png(np.full((40, 48, 3), 90, np.uint8)))
    late = png[:-12] + _chunk(b"eXIf", exif.tobytes()) + png[-12:]  # before IEND
    assert image_size(io.BytesIO(late)) == read_image(io.BytesIO(late)).shape[:2] == (40, 48)
    app = MattingApp(tiny_backend, examples=0)
    answer = app.respond("POST", "/api/predict",
                         lambda limit: _body(_payload(40, 48, image=base64.b64encode(late).decode())))
    assert answer.status == 200 and json.loads(answer.body)["width"] == 48


@pytest.mark.parametrize("h, w", [(2, 4000), (15, 64), (20, 401), (801, 40)])
def test_degenerate_shapes_are_refused_at_the_size_check(tiny_backend, h, w):
    app = MattingApp(tiny_backend, examples=0)
    answer = app.respond("POST", "/api/predict", lambda limit: _body(_payload(h, w)))
    assert answer.status == 400 and "at least 16 px on each side" in json.loads(answer.body)["error"]


@pytest.mark.parametrize("h, w", [(16, 320), (400, 20)])
def test_the_least_degenerate_shapes_pass_the_size_check(h, w):
    upload = app_module._Upload(base64.b64decode(_png(np.zeros((h, w, 3), np.uint8))), "the image")
    assert app_module._checked_size(upload, 10**6) == (h, w)


# ---- D15: one Host header -------------------------------------------------------------------------------
def test_two_host_headers_are_a_400(server_url):
    headers = email.message.Message()
    headers["Host"], headers["Host"] = "127.0.0.1", "evil.example"
    assert request_refusal("GET", headers).status == 400
    port = server_url.rsplit(":", 1)[1]
    status, _, body = _raw(server_url, f"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                                       "Host: evil.example\r\n\r\n".encode())
    assert status == 400 and "2 Host headers" in json.loads(body)["error"]


# ---- D13: the serve options --------------------------------------------------------------------------
@pytest.mark.parametrize("option, value", [
    ("--port", "99999"), ("--port", "-1"), ("--max-megapixels", "inf"), ("--max-megapixels", "nan"),
    ("--max-megapixels", "-1"), ("--timeout", "nan"), ("--timeout", "inf"), ("--timeout", "1e-9"),
    ("--prediction-timeout", "0"), ("--queue", "-1"), ("--max-connections", "0"),
])
def test_serve_options_out_of_range_are_a_usage_error_naming_the_option(capsys, option, value):
    from deepmatting.commands import serve as command

    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    with pytest.raises(SystemExit) as e:
        parser.parse_args([option, value])
    assert e.value.code == 2 and f"argument {option}: {value!r}" in capsys.readouterr().err


def test_serve_help_states_the_prediction_time_limit():
    from deepmatting.commands import serve as command
    from deepmatting.serve.app import PREDICTION_TIMEOUT

    parser = argparse.ArgumentParser(formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    command.add_arguments(parser)
    assert parser.parse_args([]).prediction_timeout == PREDICTION_TIMEOUT
    text = " ".join(parser.format_help().split())
    assert "--prediction-timeout SECONDS time one prediction may hold the model" in text
    assert f"(default: {PREDICTION_TIMEOUT})" in text


def test_a_port_in_use_is_named(tiny_backend):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}: Address already in use"):
            make_server(tiny_backend, "127.0.0.1", port, examples=0)
