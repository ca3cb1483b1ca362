"""The web app's HTTP API: a real server on 127.0.0.1 in a thread, driven with urllib."""

import base64
import io
import json
import struct
import threading
import urllib.error
import urllib.request
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from deepmatting import DeepMatting
from deepmatting.backends import load_backend
from deepmatting.serve import MAX_PIXELS, make_server, scribbles_to_trimap

H, W = 48, 72


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    torch.manual_seed(0)
    ckpt = tmp_path_factory.mktemp("serve") / "tiny.pt"
    DeepMatting(width=0.25).save(ckpt)  # a tiny random-weight model
    server = make_server(load_backend(ckpt, device="cpu"), "127.0.0.1", 0, examples=2, quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


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


def _post(url, payload, raw=None):
    """(status, JSON body) of POST /api/predict; 4xx answers are returned, not raised."""
    data = raw if raw is not None else json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(f"{url}/api/predict", data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_page_and_info(url):
    status, content_type, body = _get(url + "/")
    assert status == 200 and content_type.startswith("text/html")
    assert b"<html" in body and b"app.js" in body
    for path in ("/app.js", "/style.css"):
        assert _get(url + path)[0] == 200
    status, _, body = _get(url + "/api/info")
    info = json.loads(body)
    assert info["input"] == "trimap" and info["pad_multiple"] == 32 and info["max_pixels"] == MAX_PIXELS
    assert len(info["examples"]) == 2


def test_predict_with_trimap(url):
    trimap = _trimap()
    status, body = _post(url, {"image": _png(_image()), "image_name": "cat.png", "trimap": _png(trimap)})
    assert status == 200, body
    assert (body["width"], body["height"], body["guide"]) == (W, H, "trimap")
    alpha = np.asarray(_decode(body["alpha"]))
    assert alpha.shape == (H, W) and alpha.dtype == np.uint8
    assert (alpha[trimap == 0] == 0).all() and (alpha[trimap == 255] == 255).all()
    cutout = _decode(body["cutout"])
    assert cutout.mode == "RGBA" and cutout.size == (W, H)
    assert np.array_equal(np.asarray(cutout)[..., 3], alpha)
    assert _decode(body["figure"]).size[0] > 0


def test_predict_with_mask_and_data_url(url):
    mask = np.zeros((H, W), np.uint8)
    mask[:, W // 2:] = 255
    image = "data:image/png;base64," + _png(_image())
    status, body = _post(url, {"image": image, "mask": _png(mask)})
    assert status == 200, body
    alpha = np.asarray(_decode(body["alpha"]))
    assert alpha.shape == (H, W)
    assert (alpha[:, :5] == 0).all() and (alpha[:, -5:] == 255).all()  # far from the edge: known
    assert np.asarray(_decode(body["trimap"])).shape == (H, W)


def test_predict_with_scribbles(url):
    strokes = np.zeros((H, W, 4), np.uint8)
    strokes[5:10, 10:60] = (255, 255, 255, 255)  # foreground stroke
    strokes[40:44, 10:60] = (0, 0, 0, 255)  # background stroke
    strokes[20, 20] = (255, 255, 255, 60)  # faint anti-aliasing: not drawn
    status, body = _post(url, {"image": _png(_image()), "scribbles": _png(strokes, "RGBA")})
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


def test_examples(url):
    status, content_type, body = _get(url + "/api/examples/1/image.png")
    assert status == 200 and content_type == "image/png"
    assert Image.open(io.BytesIO(body)).size == (320, 320)
    trimap = np.asarray(Image.open(io.BytesIO(_get(url + "/api/examples/1/trimap.png")[2])))
    assert set(np.unique(trimap)) <= {0, 128, 255}
    with pytest.raises(urllib.error.HTTPError) as e:
        _get(url + "/api/examples/7/image.png")
    assert e.value.code == 404 and "no example" in json.loads(e.value.read())["error"]
    # the page sends the example index: the figure gets the ground-truth and error panels
    image = base64.b64encode(body).decode()
    status, out = _post(url, {"image": image, "trimap": _png(trimap), "example": 1})
    assert status == 200 and _decode(out["figure"]).size[0] > 0


def _huge_png(w, h):
    """A PNG header claiming ``w x h`` pixels (the server must refuse it before decoding anything)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)  # 8-bit grayscale
    chunks = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    png = b"\x89PNG\r\n\x1a\n" + chunks
    return base64.b64encode(png).decode()


@pytest.mark.parametrize(
    "payload, status, message",
    [
        ({"image": base64.b64encode(b"hello, not an image").decode(), "trimap": _png(_trimap())}, 415,
         "not an image"),
        ({"image": _huge_png(6000, 5000), "trimap": _huge_png(6000, 5000)}, 413, "up to 25 MP"),
        ({"image": _huge_png(20000, 20000), "trimap": _png(_trimap())}, 413, "up to 25 MP"),
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
    ids=["not-an-image", "huge", "decompression-bomb", "size-mismatch", "bad-trimap", "no-guide",
         "two-guides", "bad-base64", "empty-scribbles", "not-an-object"],
)
def test_bad_uploads_get_a_message_and_the_server_goes_on(url, payload, status, message):
    code, body = _post(url, payload)
    assert code == status, body
    assert message in body["error"] and "Traceback" not in body["error"]
    assert _get(url + "/api/info")[0] == 200  # still serving


def test_bad_requests(url):
    code, body = _post(url, None, raw=b"{not json")
    assert code == 400 and "not JSON" in body["error"]
    with pytest.raises(urllib.error.HTTPError) as e:
        _get(url + "/nope")
    assert e.value.code == 404
    request = urllib.request.Request(f"{url}/api/other", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(request, timeout=10)
    assert e.value.code == 404
    # and a good request still works after all of that
    status, body = _post(url, {"image": _png(_image()), "trimap": _png(_trimap())})
    assert status == 200 and body["width"] == W


def test_serve_command_without_a_model_says_so(capsys, monkeypatch):
    from deepmatting.backends import _default_backend
    from deepmatting.cli import main

    # as in a build that ships no model
    monkeypatch.setattr("deepmatting.models.deepmatting.default_weights", lambda: None)
    _default_backend.cache_clear()
    assert main(["serve", "--port", "0"]) == 2
    assert "no default model" in capsys.readouterr().err
