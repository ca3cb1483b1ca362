"""A small local web app for matting: upload or draw, predict, look at the result, download it.

Standard library only (``http.server``); the page is ``deepmatting/web/index.html`` with plain JavaScript.

The page sends one JSON request, ``POST /api/predict``::

    {"image": BASE64, "image_name": "cat.jpg",                   # PNG/JPEG/... bytes, data URLs accepted
     "trimap": BASE64 | "mask": BASE64 | "scribbles": BASE64,     # exactly one of them
     "example": 2}                                                # optional: a built-in example (adds its GT)

- ``trimap``: 0 background, 128 unknown, 255 foreground (values within ±2 are snapped, as for files);
- ``mask``: a coarse binary or soft mask; trimap models turn it into a trimap with an unknown band along
  its edge (:func:`deepmatting.inference.predict`);
- ``scribbles``: an RGBA image the size of the photo, transparent where nothing was drawn. Scribbles form a
  **trimap**: opaque light strokes (white) are foreground, opaque dark strokes (black) are background,
  and every pixel not drawn on is unknown (see :func:`scribbles_to_trimap`).

and gets back ``{"width", "height", "guide", "seconds", "alpha", "cutout", "figure", "trimap"}``:
``seconds`` is the time :func:`~deepmatting.inference.predict` took, and the images are
``data:image/png;base64`` URLs: the 8-bit alpha, the RGBA cutout (foreground colours estimated, so no
halo), the side-by-side figure (:func:`deepmatting.visualize.side_by_side`) and the trimap that was used.
Bad input (not an image, more than ``max_pixels`` pixels, sizes that do not match, a bad trimap) is
answered with a 4xx status and ``{"error": message}``; the page shows the message; the server goes on.

``GET /api/info`` describes the model and the limits; ``GET /api/examples/<i>/<image|trimap|alpha>.png``
serves the built-in examples (samples of :class:`~deepmatting.data.SyntheticMattingDataset`).
"""

from __future__ import annotations

import base64
import binascii
import importlib.resources
import io
import json
import os
import re
import sys
import threading
import time
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from PIL import Image

from .data import DatasetError, SyntheticMattingDataset, image_size, read_alpha, read_image, read_trimap
from .data.trimap import trimap_from_mask
from .foreground import cutout, estimate_foreground
from .inference import Backend, as_mask, default_mask_band, load_backend, predict
from .tensors import TRIMAP_BG, TRIMAP_FG, TRIMAP_UNKNOWN
from .visualize import side_by_side

#: Largest image accepted, in pixels (width x height).
MAX_PIXELS = 25_000_000

#: Largest request body accepted, in bytes (a 25 MP photo as PNG plus its trimap, base64-encoded).
MAX_BODY_BYTES = 256 * 2**20

#: The built-in examples: how many, their side in pixels, and the seed of the synthetic set (the demo
#: trains on seed 0 and evaluates on seed 50000; these are neither).
EXAMPLES = 4
EXAMPLE_SIZE = 320
EXAMPLE_SEED = 70_000

#: Static files of the page, inside the package, and their content types.
STATIC_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}

GUIDES = ("trimap", "mask", "scribbles")


class UploadError(ValueError):
    """A request the app cannot serve; ``status`` is the HTTP status (4xx) sent with the message."""

    def __init__(self, message: str, status: int = HTTPStatus.BAD_REQUEST):
        super().__init__(message)
        self.status = int(status)


class _Upload(io.BytesIO):
    """Uploaded bytes that Pillow opens like a file and that error messages name like a file.

    The readers of :mod:`deepmatting.data.io` format their argument into their messages (``f"{path}: ..."``);
    an upload formats as ``the uploaded image 'cat.jpg'``.
    """

    def __init__(self, data: bytes, label: str):
        super().__init__(data)
        self.label = label

    def __str__(self) -> str:
        return self.label

    def __format__(self, spec: str) -> str:
        return format(self.label, spec)


def decode_upload(payload: dict, field: str, what: str) -> _Upload:
    """The base64 field ``field`` of a request (plain or a ``data:...;base64,`` URL) as a named upload."""
    value = payload.get(field)
    if not isinstance(value, str) or not value:
        raise UploadError(f"{what}: expected a base64-encoded image file in the '{field}' field")
    if value.startswith("data:"):
        value = value.partition(",")[2]
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise UploadError(f"{what}: the '{field}' field is not valid base64") from None
    if not data:
        raise UploadError(f"{what}: the file is empty")
    name = payload.get(f"{field}_name")
    label = f"the uploaded {what} {name!r}" if isinstance(name, str) and name else f"the uploaded {what}"
    return _Upload(data, label)


def _checked_size(upload: _Upload, max_pixels: int) -> tuple[int, int]:
    """``(h, w)`` from the header alone; refuses files Pillow cannot identify and images over the limit."""
    try:
        h, w = image_size(upload)
    except DatasetError as e:
        if isinstance(e.__cause__, Image.DecompressionBombError):  # Pillow refuses > 2x its own limit
            raise UploadError(f"{upload} is far too large: this server accepts up to {max_pixels / 1e6:g} MP",
                              HTTPStatus.REQUEST_ENTITY_TOO_LARGE) from None
        raise UploadError(f"{upload} is not an image this server can read (PNG, JPEG, WebP, BMP, TIFF)",
                          HTTPStatus.UNSUPPORTED_MEDIA_TYPE) from None
    finally:
        upload.seek(0)
    if h * w > max_pixels:
        raise UploadError(
            f"{upload} is {w}x{h} pixels ({h * w / 1e6:.1f} MP); this server accepts up to "
            f"{max_pixels / 1e6:g} MP: downscale it first",
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        )
    return h, w


def scribbles_to_trimap(scribbles: np.ndarray) -> np.ndarray:
    """Scribbles drawn on the photo -> a trimap: white strokes foreground, black background, the rest unknown.

    Parameters
    ----------
    scribbles : np.ndarray, HxWx4 uint8 RGBA
        Transparent (alpha < 128) where nothing was drawn; strokes opaque. A stroke pixel whose mean RGB is
        at least 128 is foreground, below 128 background (so anti-aliased stroke edges are tolerated).

    Returns
    -------
    np.ndarray, HxW uint8 {0, 128, 255}

    Examples
    --------
    >>> s = np.zeros((4, 4, 4), np.uint8); s[0] = (255, 255, 255, 255); s[3] = (0, 0, 0, 255)
    >>> scribbles_to_trimap(s)[:, 0].tolist()
    [255, 128, 128, 0]
    """
    s = np.asarray(scribbles)
    if s.ndim != 3 or s.shape[2] != 4:
        raise ValueError(f"scribbles must be an HxWx4 RGBA array, got shape {s.shape}")
    drawn = s[:, :, 3] >= 128
    light = s[:, :, :3].mean(axis=2) >= 128
    trimap = np.full(s.shape[:2], TRIMAP_UNKNOWN, np.uint8)
    trimap[drawn & light] = TRIMAP_FG
    trimap[drawn & ~light] = TRIMAP_BG
    return trimap


def png_data_url(array: np.ndarray, mode: str | None = None) -> str:
    """An ``HxW`` / ``HxWxC`` uint8 array as a ``data:image/png;base64,...`` URL."""
    buffer = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _to_uint8(a: np.ndarray) -> np.ndarray:
    return np.round(np.clip(a, 0, 1) * 255).astype(np.uint8)


class MattingApp:
    """What the web page talks to, without the HTTP: model info, examples, and predictions.

    Parameters
    ----------
    backend : Backend
        A :class:`~deepmatting.inference.TorchBackend`, ``deepmatting.export.OnnxBackend``, or any object
        following the backend protocol of :mod:`deepmatting.inference`.
    max_pixels : int, default 25 000 000
        Larger images are refused (HTTP 413) before they are decoded.
    examples : int, default 4
        Number of built-in synthetic examples (made on first use).
    name : str, optional
        What the page calls the model (default: the architecture, when the backend knows it).
    """

    def __init__(self, backend: Backend, max_pixels: int = MAX_PIXELS, examples: int = EXAMPLES,
                 name: str | None = None):
        self.backend = backend
        self.max_pixels = int(max_pixels)
        self.examples = SyntheticMattingDataset(examples, size=EXAMPLE_SIZE, seed=EXAMPLE_SEED)
        self.name = name or _backend_name(backend)
        self._example_cache: dict[int, dict] = {}
        self._lock = threading.Lock()  # one prediction at a time: bounded memory, predictable latency

    def info(self) -> dict:
        return {
            "model": self.name,
            "input": self.backend.input,
            "pad_multiple": int(self.backend.pad_multiple),
            "max_pixels": self.max_pixels,
            "guides": list(GUIDES),
            "examples": [{"id": i, "size": EXAMPLE_SIZE} for i in range(len(self.examples))],
        }

    def example(self, i: int) -> dict:
        """Built-in example ``i``: a sample dict of the synthetic set (cached)."""
        if not 0 <= i < len(self.examples):
            raise UploadError(f"no example {i}: there are {len(self.examples)}", HTTPStatus.NOT_FOUND)
        with self._lock:
            if i not in self._example_cache:
                self._example_cache[i] = self.examples[i]
            return self._example_cache[i]

    def example_png(self, i: int, kind: str) -> bytes:
        """PNG bytes of example ``i``'s ``image``, ``trimap`` or ``alpha`` (ground truth)."""
        sample = self.example(i)
        if kind not in ("image", "trimap", "alpha"):
            raise UploadError(f"examples have an image, a trimap and an alpha, not {kind!r}",
                              HTTPStatus.NOT_FOUND)
        array = sample[kind] if kind == "trimap" else _to_uint8(sample[kind])
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format="PNG")
        return buffer.getvalue()

    def predict(self, payload: dict) -> dict:
        """Serve one ``POST /api/predict`` request (see the module docstring).

        Raises
        ------
        UploadError
            For anything wrong with the request, with a message for the page.
        """
        if not isinstance(payload, dict):
            raise UploadError("the request must be a JSON object: an 'image' and a trimap, mask or scribbles")
        guides = [g for g in GUIDES if payload.get(g)]
        if len(guides) != 1:
            raise UploadError("send the image with exactly one of a trimap, a mask or scribbles "
                              f"(got {', '.join(guides) or 'none'})")
        guide = guides[0]
        upload = decode_upload(payload, "image", "image")
        guide_upload = decode_upload(payload, guide, guide)
        h, w = _checked_size(upload, self.max_pixels)
        gh, gw = _checked_size(guide_upload, self.max_pixels)
        if (gh, gw) != (h, w):
            raise UploadError(f"the image is {w}x{h} pixels but the {guide} is {gw}x{gh}: "
                              f"the {guide} must have the same size as the image")
        example = payload.get("example")
        gt = None
        if isinstance(example, int) and not isinstance(example, bool) and 0 <= example < len(self.examples):
            gt = self.example(example)["alpha"]  # the page says the image is this example: show its GT too
        with self._lock:
            try:
                image = read_image(upload)
                trimap = mask = None
                if guide == "trimap":
                    trimap = read_trimap(guide_upload)
                elif guide == "mask":
                    mask = read_alpha(guide_upload)
                else:
                    trimap = scribbles_to_trimap(_read_rgba(guide_upload))
                    if (trimap == TRIMAP_UNKNOWN).all():
                        raise UploadError("nothing is drawn yet: paint some foreground (white) and "
                                          "background (black) strokes on the image")
                start = time.perf_counter()
                alpha = predict(image, trimap, mask, backend=self.backend)
                seconds = time.perf_counter() - start
                if gt is not None and gt.shape != (h, w):
                    gt = None
                result = self._render(image, alpha, trimap, mask, gt)
            except DatasetError as e:
                raise UploadError(str(e)) from None
            except ValueError as e:
                if isinstance(e, UploadError):
                    raise
                raise UploadError(str(e)) from None
        result.update(width=w, height=h, guide=guide, seconds=round(seconds, 3))
        return result

    def _render(self, image: np.ndarray, alpha: np.ndarray, trimap: np.ndarray | None,
                mask: np.ndarray | None, gt: np.ndarray | None) -> dict:
        """The images sent back: alpha, RGBA cutout, side-by-side figure, and the trimap used (data URLs)."""
        if trimap is None and mask is not None and self.backend.input == "trimap":
            h, w = alpha.shape
            trimap = trimap_from_mask(as_mask(mask), default_mask_band(h, w))  # the trimap predict made
        fg = estimate_foreground(image, alpha)
        figure = side_by_side(image, alpha, gt=gt, trimap=trimap, fg=fg)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        return {
            "alpha": png_data_url(_to_uint8(alpha), "L"),
            "cutout": png_data_url(cutout(image, alpha, fg), "RGBA"),
            "figure": "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"),
            "trimap": png_data_url(trimap, "L") if trimap is not None else None,
        }


def _read_rgba(upload: _Upload) -> np.ndarray:
    """An uploaded scribble layer as ``HxWx4`` uint8 (an image without alpha counts as drawn everywhere)."""
    try:
        with Image.open(upload) as im:
            im.load()
            return np.asarray(im.convert("RGBA"))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise UploadError(f"{upload}: cannot decode the image ({type(e).__name__}: {e})") from None


def _backend_name(backend: Backend) -> str:
    model = getattr(backend, "model", None)
    config = getattr(model, "config", None)
    if config is not None:
        return f"{config.arch} (PyTorch)"
    metadata = getattr(backend, "metadata", None)
    if isinstance(metadata, dict) and "deepmatting.arch" in metadata:
        return f"{metadata['deepmatting.arch']} (ONNX)"
    return type(backend).__name__


def _static(name: str) -> bytes:
    return importlib.resources.files("deepmatting").joinpath("web", name).read_bytes()


_EXAMPLE_PATH = re.compile(r"^/api/examples/(\d+)/(image|trimap|alpha)\.png$")


class MattingRequestHandler(BaseHTTPRequestHandler):
    """Routes requests to ``self.server.app`` (a :class:`MattingApp`); errors become JSON messages."""

    server_version = "deepmatting"
    protocol_version = "HTTP/1.1"

    # ---- responses --------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj: dict) -> None:
        self._send(status, json.dumps(obj).encode("utf-8"), "application/json")

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message})

    # ---- routes -------------------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
        self._guard(self._get)

    def do_HEAD(self) -> None:  # noqa: N802
        self._guard(self._get)

    def do_POST(self) -> None:  # noqa: N802
        self._guard(self._post)

    def _guard(self, route) -> None:
        """Run a route; turn any failure into a JSON message (never a traceback to the client)."""
        try:
            route()
        except UploadError as e:
            self._error(e.status, str(e))
        except Exception as e:  # noqa: BLE001 - the server must keep serving whatever one request does
            traceback.print_exc(file=sys.stderr)
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"internal error ({type(e).__name__}: {e})")

    def _get(self) -> None:
        app: MattingApp = self.server.app
        path = self.path.split("?", 1)[0]
        if path in STATIC_FILES:
            name, content_type = STATIC_FILES[path]
            self._send(HTTPStatus.OK, _static(name), content_type)
        elif path == "/api/info":
            self._json(HTTPStatus.OK, app.info())
        elif match := _EXAMPLE_PATH.match(path):
            self._send(HTTPStatus.OK, app.example_png(int(match[1]), match[2]), "image/png")
        else:
            self._error(HTTPStatus.NOT_FOUND, f"no page {path}")

    def _post(self) -> None:
        app: MattingApp = self.server.app
        path = self.path.split("?", 1)[0]
        if path != "/api/predict":
            self._drain()
            raise UploadError(f"no endpoint {path}: POST to /api/predict", HTTPStatus.NOT_FOUND)
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self.close_connection = True
            raise UploadError("the request needs a Content-Length header",
                              HTTPStatus.LENGTH_REQUIRED) from None
        if length > MAX_BODY_BYTES:
            self.close_connection = True  # the body is not read: this connection cannot be reused
            raise UploadError(f"the request is {length / 2**20:.0f} MiB; the limit is "
                              f"{MAX_BODY_BYTES // 2**20} MiB", HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        body = self.rfile.read(length)
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise UploadError(f"the request body is not JSON ({e})") from None
        self._json(HTTPStatus.OK, app.predict(payload))

    def _drain(self) -> None:
        length = self.headers.get("Content-Length")
        if length and length.isdigit() and int(length) <= MAX_BODY_BYTES:
            self.rfile.read(int(length))
        else:
            self.close_connection = True

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the signature of the base class
        if not getattr(self.server, "quiet", False):
            super().log_message(format, *args)


def make_server(backend: Backend, host: str = "127.0.0.1", port: int = 7860, *, max_pixels: int = MAX_PIXELS,
                examples: int = EXAMPLES, quiet: bool = False) -> ThreadingHTTPServer:
    """A ready (not yet serving) HTTP server for the web app; call ``serve_forever()`` on it.

    Parameters
    ----------
    backend : Backend
        The model (see :func:`deepmatting.inference.load_backend`).
    host, port : str, int
        Where to listen; port 0 picks a free port (read it back from ``server.server_address``).
    max_pixels : int
        Larger uploads are refused with a message.
    examples : int
        Number of built-in synthetic examples offered by the page.
    quiet : bool
        Do not log each request to stderr.

    Examples
    --------
    >>> server = make_server(TorchBackend(DeepMatting(), "cpu"), port=0)  # doctest: +SKIP
    >>> threading.Thread(target=server.serve_forever, daemon=True).start()  # doctest: +SKIP
    """
    server = ThreadingHTTPServer((host, port), MattingRequestHandler)
    server.daemon_threads = True
    server.app = MattingApp(backend, max_pixels=max_pixels, examples=examples)
    server.quiet = quiet
    return server


def serve(checkpoint: str | os.PathLike | None = None, host: str = "127.0.0.1", port: int = 7860, *,
          onnx: str | os.PathLike | None = None, device: str = "auto", max_pixels: int = MAX_PIXELS) -> None:
    """Load a model and serve the web app until interrupted (Ctrl+C).

    Parameters
    ----------
    checkpoint : path, optional
        A ``.pt`` checkpoint; the default model that ships with the package when omitted (a
        ``CheckpointError`` says so when none does).
    host, port : str, int
        Where to listen (``127.0.0.1``: this machine only).
    onnx : path, optional
        An exported ONNX model to run with onnxruntime instead of a checkpoint.
    device : str
        Where a PyTorch model runs: ``auto|cpu|cuda|mps``.
    max_pixels : int
        Larger uploads are refused with a message.
    """
    backend = load_backend(checkpoint=checkpoint, onnx=onnx, device=device)
    server = make_server(backend, host, port, max_pixels=max_pixels)
    shown = "127.0.0.1" if host in ("", "0.0.0.0") else host
    url = f"http://{shown}:{server.server_address[1]}/"
    print(f"deepmatting web app: {server.app.name} on {url} (Ctrl+C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
