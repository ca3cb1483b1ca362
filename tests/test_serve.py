"""The web app: the app without HTTP (``MattingApp.respond``), and its HTTP server on 127.0.0.1 in a thread,
driven with urllib and raw sockets (the hostile clients of the "Reliability and security" issue)."""

import argparse
import base64
import contextlib
import io
import json
import socket
import struct
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib

import numpy as np
import pytest
from PIL import Image

from deepmatting.serve import MAX_PIXELS, MattingApp, UploadError, request_refusal, scribbles_to_trimap

H, W = 48, 72
JSON = "application/json"


def _png(array, mode=None):
    buffer = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _decode(data_url):
    assert data_url.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(data_url.partition(",")[2])))


def _image(h=H, w=W):
    return (np.random.default_rng(0).random((h, w, 3)) * 255).astype(np.uint8)


def _trimap(h=H, w=W):
    t = np.full((h, w), 128, np.uint8)
    t[: h // 4] = 0
    t[-(h // 4):] = 255
    return t


def _get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.status, r.headers["Content-Type"], r.read()


def _post(url, payload, raw=None, path="/api/predict"):
    """(status, JSON body) of a POST; 4xx answers are returned, not raised."""
    data = raw if raw is not None else json.dumps(payload).encode()
    request = urllib.request.Request(f"{url}{path}", data=data, headers={"Content-Type": JSON})
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


# ---- raw HTTP, for the clients urllib cannot play ------------------------------------------------------
def _connect(url, timeout=10.0):
    parts = urllib.parse.urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=timeout)


def _head(url, method, path, headers=(), host=None):
    host = host or urllib.parse.urlsplit(url).netloc
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in dict(headers).items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _answer(sock, timeout=10.0):
    """(status, headers with lower-case names, body) of the next answer; status None if closed without one."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None, {}, b""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    while len(body) < int(headers.get("content-length", 0)):
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body


def _closed(sock, timeout=10.0):
    """True when the server closes the connection (reads EOF or a reset) within ``timeout``."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except ConnectionError:
        pass
    return True


def _raw(url, data, timeout=10.0):
    with _connect(url) as s:
        s.sendall(data)
        return _answer(s, timeout)


# ---- predictions --------------------------------------------------------------------------------------
def test_page_and_info(server_url):
    status, content_type, body = _get(server_url + "/")
    assert status == 200 and content_type.startswith("text/html")
    assert b"<html" in body and b"app.js" in body
    for path in ("/app.js", "/style.css"):
        assert _get(server_url + path)[0] == 200
    status, _, body = _get(server_url + "/api/info")
    info = json.loads(body)
    assert info["input"] == "trimap" and info["pad_multiple"] == 32 and info["max_pixels"] == MAX_PIXELS
    assert len(info["examples"]) == 2 and info["max_body_bytes"] > 8 * MAX_PIXELS


def test_predict_with_trimap(server_url):
    trimap = _trimap()
    payload = {"image": _png(_image()), "image_name": "cat.png", "trimap": _png(trimap)}
    status, body = _post(server_url, payload)
    assert status == 200, body
    assert (body["width"], body["height"], body["guide"]) == (W, H, "trimap")
    alpha = np.asarray(_decode(body["alpha"]))
    assert alpha.shape == (H, W) and alpha.dtype == np.uint8
    assert (alpha[trimap == 0] == 0).all() and (alpha[trimap == 255] == 255).all()
    cutout = _decode(body["cutout"])
    assert cutout.mode == "RGBA" and cutout.size == (W, H)
    assert np.array_equal(np.asarray(cutout)[..., 3], alpha)
    assert _decode(body["figure"]).size[0] > 0
    assert np.array_equal(np.asarray(_decode(body["trimap"])), trimap)


def test_predict_with_mask_and_data_url(server_url):
    mask = np.zeros((H, W), np.uint8)
    mask[:, W // 2:] = 255
    image = "data:image/png;base64," + _png(_image())
    status, body = _post(server_url, {"image": image, "mask": _png(mask)})
    assert status == 200, body
    alpha = np.asarray(_decode(body["alpha"]))
    assert alpha.shape == (H, W)
    assert (alpha[:, :5] == 0).all() and (alpha[:, -5:] == 255).all()  # far from the edge: known
    from deepmatting.inference import mask_to_trimap

    # the trimap derived from the mask, by the one rule predict and the CLI use
    assert np.array_equal(np.asarray(_decode(body["trimap"])), mask_to_trimap(mask))


def test_predict_with_scribbles(server_url):
    strokes = np.zeros((H, W, 4), np.uint8)
    strokes[5:10, 10:60] = (255, 255, 255, 255)  # foreground stroke
    strokes[40:44, 10:60] = (0, 0, 0, 255)  # background stroke
    strokes[20, 20] = (255, 255, 255, 60)  # faint anti-aliasing: not drawn
    status, body = _post(server_url, {"image": _png(_image()), "scribbles": _png(strokes, "RGBA")})
    assert status == 200, body
    alpha = np.asarray(_decode(body["alpha"]))
    assert (alpha[5:10, 10:60] == 255).all() and (alpha[40:44, 10:60] == 0).all()
    trimap = np.asarray(_decode(body["trimap"]))
    assert trimap[20, 20] == 128 and trimap[0, 0] == 128


def test_scribbles_to_trimap():
    s = np.zeros((3, 2, 4), np.uint8)
    s[0] = (250, 240, 255, 255)
    s[2] = (20, 0, 10, 200)
    assert scribbles_to_trimap(s)[:, 0].tolist() == [255, 128, 0]
    with pytest.raises(ValueError, match="RGBA"):
        scribbles_to_trimap(np.zeros((3, 2, 3), np.uint8))


def test_examples(server_url):
    status, content_type, body = _get(server_url + "/api/examples/1/image.png")
    assert status == 200 and content_type == "image/png"
    assert Image.open(io.BytesIO(body)).size == (320, 320)
    trimap = np.asarray(Image.open(io.BytesIO(_get(server_url + "/api/examples/1/trimap.png")[2])))
    assert set(np.unique(trimap)) <= {0, 128, 255}
    with pytest.raises(urllib.error.HTTPError) as e:
        _get(server_url + "/api/examples/7/image.png")
    assert e.value.code == 404 and "no example" in json.loads(e.value.read())["error"]
    # the page sends the example index: the figure gets the ground-truth and error panels
    image = base64.b64encode(body).decode()
    status, out = _post(server_url, {"image": image, "trimap": _png(trimap), "example": 1})
    assert status == 200 and _decode(out["figure"]).size[0] > 0


@pytest.mark.parametrize("guide", ["trimap", "mask"])
def test_the_page_figure_is_the_cli_figure(tiny_checkpoint, tiny_backend, tmp_path, guide):
    from deepmatting.cli import main

    Image.fromarray(_image()).save(tmp_path / "photo.png")
    Image.fromarray(_trimap()).save(tmp_path / "guide.png")
    assert main(["predict", "--checkpoint", str(tiny_checkpoint), "--device", "cpu", "--image",
                 str(tmp_path / "photo.png"), f"--{guide}", str(tmp_path / "guide.png"), "--out",
                 str(tmp_path / "out"), "--figure"]) == 0
    app = MattingApp(tiny_backend, examples=0)
    payload = {"image": _png(_image()), guide: _png(_trimap())}
    figure = _decode(app.predict(payload)["figure"])
    with Image.open(tmp_path / "out" / "photo_figure.png") as cli:
        assert np.array_equal(np.asarray(figure), np.asarray(cli))


def _huge_png(w, h):
    """A PNG header claiming ``w x h`` pixels (the server must refuse it before decoding anything)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)  # 8-bit grayscale
    chunks = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    png = b"\x89PNG\r\n\x1a\n" + chunks
    return base64.b64encode(png).decode()


LIMIT = f"up to {MAX_PIXELS / 1e6:g} MP"


@pytest.mark.parametrize(
    "payload, status, message",
    [
        ({"image": base64.b64encode(b"hello, not an image").decode(), "trimap": _png(_trimap())}, 415,
         "not an image"),
        ({"image": _huge_png(6000, 5000), "trimap": _huge_png(6000, 5000)}, 413, LIMIT),
        ({"image": _huge_png(2001, 2000), "trimap": _huge_png(2001, 2000)}, 413, LIMIT),  # just over 4 MP
        ({"image": _huge_png(20000, 20000), "trimap": _png(_trimap())}, 413, LIMIT),
        ({"image": _png(_image()), "trimap": _png(_trimap(H + 1, W))}, 400, "same size"),
        ({"image": _png(_image()), "trimap": _png(np.full((H, W), 77, np.uint8))}, 400, "not a trimap"),
        ({"image": _png(_image())}, 400, "exactly one of"),
        ({"image": _png(_image()), "trimap": _png(_trimap()), "mask": _png(_trimap())}, 400,
         "exactly one of"),
        ({"image": "%%%", "trimap": _png(_trimap())}, 400, "not valid base64"),
        ({"image": _png(_image()), "scribbles": _png(np.zeros((H, W, 4), np.uint8), "RGBA")}, 400,
         "nothing is drawn"),
        ([1, 2, 3], 400, "JSON object"),
    ],
    ids=["not-an-image", "huge", "just-over-the-limit", "decompression-bomb", "size-mismatch", "bad-trimap",
         "no-guide", "two-guides", "bad-base64", "empty-scribbles", "not-an-object"],
)
def test_bad_uploads_get_a_message_and_the_server_goes_on(server_url, payload, status, message):
    code, body = _post(server_url, payload)
    assert code == status, body
    assert message in body["error"] and "Traceback" not in body["error"]
    assert _get(server_url + "/api/info")[0] == 200  # still serving


def test_bad_requests(server_url):
    code, body = _post(server_url, None, raw=b"{not json")
    assert code == 400 and "not JSON" in body["error"]
    with pytest.raises(urllib.error.HTTPError) as e:
        _get(server_url + "/nope")
    assert e.value.code == 404
    assert _post(server_url, {}, path="/api/other")[0] == 404
    # and a good request still works after all of that
    status, body = _post(server_url, {"image": _png(_image()), "trimap": _png(_trimap())})
    assert status == 200 and body["width"] == W


# ---- the app without HTTP ------------------------------------------------------------------------------
def _no_body(limit):
    raise AssertionError("the body of a GET is not read")


def test_the_app_answers_without_http(tiny_backend):
    app = MattingApp(tiny_backend, examples=1)
    info = app.respond("GET", "/api/info?x=1", _no_body)
    assert info.status == 200 and info.content_type == JSON
    assert json.loads(info.body)["examples"][0]["id"] == 0
    assert app.respond("HEAD", "/", _no_body).content_type.startswith("text/html")
    body = json.dumps({"image": _png(_image()), "trimap": _png(_trimap())}).encode()
    limits = []
    answer = app.respond("POST", "/api/predict", lambda limit: limits.append(limit) or body)
    assert answer.status == 200 and json.loads(answer.body)["width"] == W
    assert limits == [app.max_body_bytes]

    def late(limit):
        raise UploadError("late", 408)

    refused = app.respond("POST", "/api/predict", late)
    assert (refused.status, json.loads(refused.body)) == (408, {"error": "late"})


def test_the_app_is_busy_beyond_its_queue(tiny_backend):
    app = MattingApp(tiny_backend, examples=0, queue=1)
    with app.admission(), app.admission():
        busy = app.respond("POST", "/api/predict", lambda limit: pytest.fail("a busy answer reads no body"))
        assert busy.status == 503 and "busy" in json.loads(busy.body)["error"]
        assert ("Retry-After", "5") in busy.headers
    with app.admission():  # places are given back
        pass


def test_the_server_loads_the_model_once(monkeypatch, tiny_checkpoint):
    import deepmatting.inference
    import deepmatting.serve.server as server_module
    from deepmatting import DeepMatting
    from deepmatting.serve import MattingServer, serve

    loads, answers = [], []
    real = deepmatting.inference.load_backend
    monkeypatch.setattr(server_module, "load_backend", lambda *a, **k: loads.append(1) or real(*a, **k))

    def serve_two_predictions(self):
        for owner, name in ((deepmatting.inference, "load_backend"), (DeepMatting, "from_checkpoint")):
            monkeypatch.setattr(owner, name, lambda *a, **k: pytest.fail("the model was loaded again"))
        body = json.dumps({"image": _png(_image()), "trimap": _png(_trimap())}).encode()
        answers.extend(self.app.respond("POST", "/api/predict", lambda limit: body).status for _ in range(2))

    monkeypatch.setattr(MattingServer, "serve_forever", serve_two_predictions)
    serve(tiny_checkpoint, "127.0.0.1", 0, device="cpu", examples=0)
    assert loads == [1] and answers == [200, 200]


# ---- quality: a choice among the shipped models -------------------------------------------------------
@pytest.fixture
def two_qualities(ship, tiny_checkpoint, tiny_best_checkpoint):
    """The app on the shipped fast model (the tiny one), with a best model shipped too (tiny effnet-cf)."""
    from deepmatting.backends import load_backend

    with ship({"fast": tiny_checkpoint, "best": tiny_best_checkpoint}):
        yield MattingApp(load_backend(quality="fast", device="cpu"), examples=0, quality="fast", device="cpu")


def test_info_lists_the_qualities_that_ship(two_qualities, ship, tiny_checkpoint, tiny_backend):
    info = json.loads(two_qualities.respond("GET", "/api/info", _no_body).body)
    assert (info["qualities"], info["quality"]) == (["fast", "best"], "fast")
    assert info["model"].endswith("(PyTorch, the shipped fast model)")
    with ship({"fast": tiny_checkpoint}):  # a build without the best model
        assert MattingApp(tiny_backend, examples=0, quality="fast").info()["qualities"] == ["fast"]
    given = MattingApp(tiny_backend, examples=0).info()  # a checkpoint given: no choice
    assert (given["qualities"], given["quality"]) == ([], None)


def test_a_request_chooses_the_quality_and_its_model_loads_once(two_qualities, monkeypatch):
    import deepmatting.serve.app as app_module
    from deepmatting.closed_form import closed_form_alpha

    loads = []
    real = app_module.load_backend
    monkeypatch.setattr(app_module, "load_backend", lambda **k: loads.append(k) or real(**k))
    image, trimap = _image(), _trimap()
    payload = {"image": _png(image), "trimap": _png(trimap)}
    fast = two_qualities.predict(payload)
    assert (fast["quality"], fast["model"]) == ("fast", two_qualities.name)
    for _ in range(2):
        best = two_qualities.predict({**payload, "quality": "best"})
        assert (best["quality"], best["model"]) == ("best", "effnet-cf (PyTorch, the shipped best model)")
    assert loads == [{"quality": "best", "device": "cpu"}]  # on first use, once
    assert two_qualities.predict({**payload, "quality": "fast"})["model"] == two_qualities.name
    # the best model ran: the untrained effnet-cf is closed-form matting, to the PNG's 8 bits
    unknown = trimap == 128
    expected = np.clip(closed_form_alpha(image / 255.0, trimap), 1e-3, 1 - 1e-3)[unknown]
    alpha = np.asarray(_decode(best["alpha"]))[unknown] / 255.0
    assert np.abs(alpha - expected).max() <= 0.5 / 255 + 1e-5
    assert np.abs(np.asarray(_decode(fast["alpha"]))[unknown] / 255.0 - expected).max() > 0.1


def test_a_quality_not_offered_is_a_400(two_qualities, ship, tiny_checkpoint, tiny_backend, server_url):
    payload = {"image": _png(_image()), "trimap": _png(_trimap())}

    def refusal(app, quality):
        body = json.dumps({**payload, "quality": quality}).encode()
        answer = app.respond("POST", "/api/predict", lambda limit: body)
        return answer.status, json.loads(answer.body)["error"]

    assert refusal(two_qualities, "ultra") == (400, "unknown quality 'ultra': this server offers fast or "
                                                    "best")
    assert refusal(two_qualities, 3)[1].startswith("unknown quality 3")
    with ship({"fast": tiny_checkpoint}):
        only_fast = MattingApp(tiny_backend, examples=0, quality="fast")
    status, message = refusal(only_fast, "best")
    assert status == 400 and "no best-quality model ships" in message and "offers fast" in message
    # a server given a checkpoint runs that model only: over HTTP, as the page would send it
    status, body = _post(server_url, {**payload, "quality": "fast"})
    assert status == 400 and "runs one given model" in body["error"] and "--checkpoint" in body["error"]
    assert _post(server_url, {**payload, "quality": None})[0] == 200  # null: no choice made


def test_serve_offers_the_shipped_qualities(monkeypatch, capsys, ship, tiny_checkpoint, tiny_best_checkpoint):
    from deepmatting.serve import MattingServer, serve

    seen = []
    monkeypatch.setattr(MattingServer, "serve_forever", lambda self: seen.append(
        (self.app.qualities, self.app.quality, self.app.device)))
    with ship({"fast": tiny_checkpoint, "best": tiny_best_checkpoint}):
        serve(None, "127.0.0.1", 0, quality="fast", device="cpu", examples=0)
        serve(None, "127.0.0.1", 0, quality="best", device="cpu", examples=0)
        serve(tiny_checkpoint, "127.0.0.1", 0, device="cpu", examples=0)
    assert seen == [(("fast", "best"), "fast", "cpu"), (("fast", "best"), "best", "cpu"), ((), None, "cpu")]
    assert capsys.readouterr().out.count("(qualities: fast, best)") == 2


def test_serve_help_names_the_library_defaults():
    from deepmatting.commands import serve as command
    from deepmatting.serve.app import QUEUE
    from deepmatting.serve.server import MAX_CONNECTIONS, TIMEOUT

    parser = argparse.ArgumentParser(formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    command.add_arguments(parser)
    args = parser.parse_args([])  # the command's defaults are the library's, and --help shows them
    assert (args.max_megapixels, args.queue, args.timeout, args.max_connections) == (
        MAX_PIXELS / 1e6, QUEUE, TIMEOUT, MAX_CONNECTIONS)
    text = " ".join(parser.format_help().split())
    for value in (MAX_PIXELS / 1e6, QUEUE, TIMEOUT, MAX_CONNECTIONS):
        assert f"(default: {value})" in text


def test_serve_command_without_a_model_says_so(capsys, ship):
    from deepmatting.cli import main

    with ship({}):  # a build that ships no model
        assert main(["serve", "--port", "0"]) == 2
    assert "no default model" in capsys.readouterr().err


# ---- 1. bodies: only 0 <= Content-Length <= limit, read in bounded chunks ---------------------------------
@pytest.mark.parametrize("length", ["-1", "+12", "0x10", "12, 12"])
def test_a_bad_content_length_is_refused_without_reading(server_url, length):
    with _connect(server_url) as s:  # the body never ends: a server that reads it would never answer
        s.sendall(_head(server_url, "POST", "/api/predict", {"Content-Type": JSON, "Content-Length": length})
                  + b'{"image": "AAAA')
        status, headers, body = _answer(s)
        assert status == 400 and "not a byte count" in json.loads(body)["error"]
        assert headers["connection"] == "close" and _closed(s)


def test_a_body_over_the_limit_is_refused_before_it_is_read(server_url):
    limit = json.loads(_get(server_url + "/api/info")[2])["max_body_bytes"]
    with _connect(server_url) as s:
        s.sendall(_head(server_url, "POST", "/api/predict", {"Content-Type": JSON,
                                                             "Content-Length": limit + 1}) + b"{")
        status, headers, body = _answer(s)
        assert status == 413 and "the limit is" in json.loads(body)["error"]
        assert headers["connection"] == "close"
    status, _, body = _raw(server_url, _head(server_url, "POST", "/api/predict", {"Content-Type": JSON}))
    assert status == 411 and "Content-Length" in json.loads(body)["error"]


# ---- 2. timeouts, a connection cap, clients that vanish ----------------------------------------------------
@pytest.fixture(scope="module")
def quick_url(start_server, tiny_backend):
    """A server that gives each request 1 s to arrive and serves two connections at once."""
    return start_server(tiny_backend, timeout=1.0, max_connections=2)


def test_a_slow_body_is_answered_408_and_closed_at_the_deadline(quick_url):
    with _connect(quick_url) as s:
        start = time.monotonic()
        s.sendall(_head(quick_url, "POST", "/api/predict", {"Content-Type": JSON, "Content-Length": 1000})
                  + b'{"image":"')
        status, headers, body = _answer(s)
        held = time.monotonic() - start
        assert status == 408 and "within 1 s" in json.loads(body)["error"]
        assert headers["connection"] == "close"
        assert 0.8 < held < 5 and _closed(s)


def test_trickled_headers_are_cut_at_the_deadline(quick_url):
    with _connect(quick_url) as s:
        start = time.monotonic()
        host = urllib.parse.urlsplit(quick_url).netloc
        s.sendall(f"GET /api/info HTTP/1.1\r\nHost: {host}\r\nX-Slow: ".encode())
        s.settimeout(0.2)
        answer = b""
        while time.monotonic() - start < 10:  # a byte every 0.2 s: each read is quick, the request never ends
            try:
                s.sendall(b"a")
                answer = s.recv(65536)
                break
            except TimeoutError:
                continue
            except ConnectionError:
                break
        held = time.monotonic() - start
    assert held < 5, "a client trickling its headers held the connection"
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408")


def test_connections_beyond_the_cap_are_answered_busy(quick_url):
    waiting = [_connect(quick_url) for _ in range(2)]
    receiving = [_connect(quick_url) for _ in range(2)]
    try:
        for s in waiting:
            s.sendall(b"GET /api/info HTTP/1.1\r\n")  # and nothing more: this waits, and holds no place
        time.sleep(0.1)
        assert _raw(quick_url, _head(quick_url, "GET", "/api/info"))[0] == 200
        for s in receiving:  # a whole head, then a body that does not come: each holds one of the 2 places
            s.sendall(_head(quick_url, "POST", "/api/predict", {"Content-Type": JSON, "Content-Length": 1000})
                      + b'{"image":"')
        end = time.monotonic() + 0.8  # both places are taken as soon as the two heads have been read
        while time.monotonic() < end:
            start = time.monotonic()
            status, headers, body = _raw(quick_url, _head(quick_url, "GET", "/api/info"))
            if status == 503:
                break
        assert status == 503 and "busy" in json.loads(body)["error"] and time.monotonic() - start < 0.3
        for s in waiting + receiving:  # the deadline frees the places
            assert _answer(s)[0] == 408
    finally:
        for s in waiting + receiving:
            s.close()
    time.sleep(0.2)
    assert _raw(quick_url, _head(quick_url, "GET", "/api/info"))[0] == 200


def test_a_vanished_client_leaves_no_traceback_and_no_false_500(start_server, tiny_backend, capsys):
    url = start_server(tiny_backend, timeout=1.0, quiet=False)
    for _ in range(3):
        s = _connect(url)
        s.sendall(_head(url, "POST", "/api/predict", {"Content-Type": JSON, "Content-Length": 100_000})
                  + b'{"image":"')
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()  # a reset, with the body unsent
    time.sleep(0.5)
    assert _raw(url, _head(url, "GET", "/api/info"))[0] == 200
    err = capsys.readouterr().err
    assert "Traceback" not in err and '" 500 ' not in err, err


# ---- 3. only this server's own page, by this server's own names -------------------------------------------
@pytest.mark.parametrize(
    "headers, host, status",
    [
        ({"Content-Type": "text/plain", "Origin": "http://evil.example"}, None, 403),
        ({"Content-Type": JSON, "Origin": "http://evil.example"}, None, 403),
        ({"Content-Type": JSON, "Origin": "null"}, None, 403),
        ({"Content-Type": "text/plain"}, None, 415),
        ({"Content-Type": "application/x-www-form-urlencoded"}, None, 415),
        ({"Content-Type": JSON}, "evil.example", 403),  # DNS rebinding: the name is not this server's
        ({"Content-Type": JSON}, "localhost", 400),  # passes the policy; {} is not a prediction
        ({"Content-Type": JSON + "; charset=utf-8", "Origin": "SAME"}, None, 400),
    ],
    ids=["text-plain-cross-origin", "json-cross-origin", "origin-null", "text-plain", "form", "rebinding",
         "localhost", "same-origin"],
)
def test_cross_origin_requests_are_refused(server_url, headers, host, status):
    port = urllib.parse.urlsplit(server_url).port
    host = f"{host}:{port}" if host else None
    headers = {k: (server_url if v == "SAME" else v) for k, v in headers.items()} | {"Content-Length": 2}
    code, _, body = _raw(server_url, _head(server_url, "POST", "/api/predict", headers, host) + b"{}")
    assert code == status and "error" in json.loads(body)


def test_a_refused_request_still_sending_a_large_body_reads_its_answer(server_url):
    body = b"x" * (8 * 2**20)
    with _connect(server_url) as s:
        s.sendall(_head(server_url, "POST", "/api/predict", {"Content-Type": "text/plain",
                                                             "Content-Length": len(body)}))

        def send():
            with contextlib.suppress(OSError):  # the server stops reading and closes
                s.sendall(body)

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        status, headers, answer = _answer(s)
        assert status == 415 and headers["connection"] == "close" and "JSON" in json.loads(answer)["error"]
    sender.join(10)


def test_the_host_policy():
    ok = {"Content-Type": JSON}
    for host in ("127.0.0.1:7860", "localhost:7860", "[::1]:7860", "192.168.1.20:7860", "app.localhost"):
        assert request_refusal("POST", ok | {"Host": host, "Origin": f"http://{host}"}) is None, host
    assert request_refusal("GET", {"Host": "evil.example"}).status == 403
    assert request_refusal("GET", {"Host": "studio.lan:7860"}, {"studio.lan"}) is None
    assert request_refusal("GET", {}).status == 400
    assert request_refusal("GET", {"Host": "localhost:7860", "Origin": "http://localhost:9999"}).status == 403


# ---- 4. every answer is JSON: deep nesting, other methods, malformed requests ------------------------------
def test_deeply_nested_json_is_a_400(server_url):
    code, body = _post(server_url, None, raw=b"[" * 100_000 + b"]" * 100_000)
    assert code == 400 and "nested too deeply" in body["error"]


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS", "BREW"])
def test_other_methods_get_a_json_405(server_url, method):
    status, headers, body = _raw(server_url, _head(server_url, method, "/api/predict"))
    assert status == 405 and headers["content-type"] == JSON and headers["allow"] == "GET, HEAD, POST"
    assert method in json.loads(body)["error"]


def test_a_malformed_request_gets_json(server_url):
    status, headers, body = _raw(server_url, b"GET / HTTP/9\r\n\r\n")
    assert status == 400 and headers["content-type"] == JSON and "error" in json.loads(body)


# ---- 5. a tighter pixel bound, and "busy" instead of an unbounded queue ------------------------------------
class _BlockingBackend:
    """A trimap model that holds each prediction until released (alpha 0.5 everywhere)."""

    pad_multiple, input = 32, "trimap"

    def __init__(self):
        self.running, self.release = threading.Event(), threading.Event()

    def __call__(self, image, trimap):
        self.running.set()
        assert self.release.wait(20)
        return np.full((image.shape[0], 1, *image.shape[2:]), 0.5, np.float32)


def test_a_prediction_beyond_the_queue_is_answered_busy(start_server):
    backend = _BlockingBackend()
    url = start_server(backend, queue=0, examples=0)
    payload = {"image": _png(_image()), "trimap": _png(_trimap())}
    first = []
    thread = threading.Thread(target=lambda: first.append(_post(url, payload)))
    thread.start()
    try:
        assert backend.running.wait(20)
        start = time.monotonic()
        request = urllib.request.Request(f"{url}/api/predict", json.dumps(payload).encode(),
                                         {"Content-Type": JSON})
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(request, timeout=10)
        assert e.value.code == 503 and e.value.headers["Retry-After"] == "5"
        assert "busy" in json.loads(e.value.read())["error"] and time.monotonic() - start < 5
    finally:
        backend.release.set()
        thread.join(30)
    assert first[0][0] == 200
    assert _post(url, payload)[0] == 200  # free again
