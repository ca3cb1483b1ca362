"""The web app without HTTP: what each request gets, as a function of its method, path and body.

:class:`MattingApp` answers ``respond(method, path, read_body) -> Response``; the HTTP server
(:mod:`deepmatting.serve.server`) only checks where a request comes from, reads it within its limits and
writes the answer. Everything here runs, and is tested, without a socket.

The API (documented for users in the README, section "HTTP API"):

``POST /api/predict`` with ``Content-Type: application/json``::

    {"image": BASE64, "image_name": "cat.jpg",                   # PNG/JPEG/... bytes, data URLs accepted
     "trimap": BASE64 | "mask": BASE64 | "scribbles": BASE64,     # exactly one of them
     "example": 2,                                                # optional: a built-in example (adds its GT)
     "quality": "best"}                                           # optional: which shipped model runs

- ``trimap``: 0 background, 128 unknown, 255 foreground (values within ±2 are snapped, as for files);
- ``mask``: a coarse binary or soft mask; trimap models turn it into a trimap with an unknown band along
  its edge (:func:`deepmatting.inference.predict`);
- ``scribbles``: an RGBA image the size of the photo, transparent where nothing was drawn. Scribbles form a
  **trimap**: opaque light strokes (white) are foreground, opaque dark strokes (black) are background,
  and every pixel not drawn on is unknown (see :func:`scribbles_to_trimap`).
- none of them for an image-only model (``GET /api/info`` says ``"input": "image"``): it reads the image
  alone; a guide sent anyway is ignored, and the answer's ``note`` says so (``guide`` is ``"none"``).

- ``quality``: ``"fast"``, ``"best"`` or ``"fusion"``, among the qualities ``GET /api/info`` offers (those
  that ship, when the server runs a shipped model; none when it runs a given checkpoint or ONNX file, and
  then the field is an error). Without it the server's own quality runs. Another quality's model is loaded on
  its first request and kept.

answered with ``{"width", "height", "guide", "model", "quality", "seconds", "alpha", "cutout", "figure",
"trimap"}``: ``model`` names the model that ran (:func:`~deepmatting.backends.describe_backend`) and
``quality`` its quality (``null`` for a given model); ``seconds`` is the time
:func:`~deepmatting.inference.predict` took, and the images are
``data:image/png;base64`` URLs: the 8-bit alpha, the RGBA cutout (foreground colours estimated, so no
halo), the side-by-side figure (:func:`deepmatting.visualize.side_by_side`, called as ``deepmatting predict
--figure`` calls it) and the trimap used (given, drawn, or for a mask the one derived from it, as
``deepmatting predict`` derives it). Anything wrong is answered with a
4xx status (503 when busy) and ``{"error": message}``; the page shows the message; the server goes on.

``GET /api/info`` describes the model and the limits, with ``"qualities"`` (the shipped qualities
offered, ``[]`` for a given model) and ``"quality"`` (the one that runs when a request names none, or
``null``); ``GET /api/examples/<i>/<image|trimap|alpha>.png`` serves the built-in examples (samples of
:class:`~deepmatting.data.SyntheticMattingDataset`).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import importlib.resources
import io
import json
import re
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http import HTTPStatus

import numpy as np
from PIL import Image

from .. import checkpoint
from ..backends import Backend, describe_backend, load_backend
from ..data import DatasetError, SyntheticMattingDataset, image_size, read_alpha, read_image, read_trimap
from ..data.io import IMAGE_FORMATS, PNG_COMPRESS_LEVEL
from ..foreground import cutout, estimate_foreground
from ..inference import mask_to_trimap, predict
from ..tensors import TRIMAP_BG, TRIMAP_FG, TRIMAP_UNKNOWN
from ..visualize import side_by_side

#: Largest image accepted by default, in pixels (width x height): a 2000 x 2000 photo, about 8 s of the
#: default model on two CPU cores (``deepmatting serve --max-megapixels`` raises it).
MAX_PIXELS = 4_000_000

#: Predictions that may wait while one runs; the next request is answered 503 "busy" at once.
QUEUE = 2

#: Seconds one prediction may hold the model (from reading the uploads to the figure): it is checked
#: between the steps, and a prediction over it is stopped at the next check and answered 503, so the next
#: request runs. A step that has begun ends first, so the real bound is this plus the longest step.
#: Measured for 4 MP requests on two shared CPU cores: a tile of the network at most 1.7 s, the foreground
#: estimate up to 5.6 s, the figure up to 4.4 s (20:1 images); the classical solves of the best and fusion
#: qualities check it every 8 conjugate-gradient iterations and between their stages (1.6 s at most).
PREDICTION_TIMEOUT = 60.0

#: Uploads with a side shorter than this, or sides further apart than MAX_ASPECT : 1, are refused: no
#: photo is that shape, and such shapes cost far more than their pixels (a 4 MP image 2 px high held the
#: server for over 10 minutes; the figure of a 16x1600 image takes 20 s, of a 2000x100 one 4.4 s).
MIN_SIDE = 16
MAX_ASPECT = 20

#: The built-in examples: how many, their side in pixels, and the seed of the synthetic set (the demo
#: trains on seed 0 and evaluates on seed 50000; these are neither).
EXAMPLES = 4
EXAMPLE_SIZE = 320
EXAMPLE_SEED = 70_000

JSON = "application/json"

#: Static files of the page, inside the package, and their content types.
STATIC_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}

GUIDES = ("trimap", "mask", "scribbles")

#: The methods the app answers; others get 405 with this list in ``Allow``.
METHODS = ("GET", "HEAD", "POST")


def shipped_qualities() -> tuple[str, ...]:
    """The qualities whose model ships with this build of deepmatting, in the order of ``QUALITIES``."""
    return tuple(q for q in checkpoint.QUALITIES if checkpoint.default_weights(q) is not None)


def max_body_bytes(max_pixels: int) -> int:
    """Largest request body for images of ``max_pixels``: an image and a guide of at most 4 bytes a pixel
    each (uncompressed RGBA, more than any PNG or JPEG of a photo needs), base64-encoded, plus 1 MiB.

    >>> max_body_bytes(4_000_000) // 2**20
    41
    """
    return 4 * (4 + 4) * int(max_pixels) // 3 + 2**20


class UploadError(ValueError):
    """A request the app cannot serve: ``status`` (4xx, or 503) and ``headers`` go with the message."""

    def __init__(self, message: str, status: int = HTTPStatus.BAD_REQUEST,
                 headers: tuple[tuple[str, str], ...] = ()):
        super().__init__(message)
        self.status = int(status)
        self.headers = headers


@dataclass(frozen=True)
class Response:
    """What the server sends back: status, body bytes, content type and extra headers."""

    status: int
    body: bytes
    content_type: str = JSON
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def json(cls, status: int, obj: dict, headers: tuple[tuple[str, str], ...] = ()) -> Response:
        return cls(int(status), json.dumps(obj).encode("utf-8"), JSON, headers)

    @classmethod
    def error(cls, e: UploadError) -> Response:
        return cls.json(e.status, {"error": str(e)}, e.headers)


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


def parse_json(body: bytes) -> object:
    """A request body as JSON; :class:`UploadError` (400) for anything else, deep nesting included."""
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UploadError(f"the request body is not JSON ({e})") from None
    except RecursionError:
        raise UploadError("the request body is JSON nested too deeply: send a flat object") from None


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
    """``(h, w)`` from the header alone; refuses files that are not of :data:`IMAGE_FORMATS` (no other
    decoder of Pillow's is tried), images over the limit and degenerate shapes (:data:`MIN_SIDE`,
    :data:`MAX_ASPECT`)."""
    try:
        h, w = image_size(upload, IMAGE_FORMATS)
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
            f"{max_pixels / 1e6:g} MP: downscale it first (or start the server with a larger "
            "--max-megapixels)",
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        )
    if min(h, w) < MIN_SIDE or max(h, w) > MAX_ASPECT * min(h, w):
        raise UploadError(f"{upload} is {w}x{h} pixels: this server mattes images at least {MIN_SIDE} px on "
                          f"each side and at most {MAX_ASPECT} times as long as they are wide (or as wide as "
                          "they are long): crop or pad it")
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


def png_bytes(array: np.ndarray, mode: str | None = None) -> bytes:
    """An ``HxW`` / ``HxWxC`` uint8 array as PNG file bytes."""
    buffer = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def data_url(png: bytes) -> str:
    """PNG bytes as a ``data:image/png;base64,...`` URL."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def figure_png(image: np.ndarray, alpha: np.ndarray, trimap: np.ndarray | None, fg: np.ndarray,
               gt: np.ndarray | None = None) -> bytes:
    """The side-by-side figure as PNG bytes, made as ``deepmatting predict --figure`` makes it.

    The same call as the CLI's (image, alpha, the trimap given, the estimated foreground); ``gt`` adds the
    ground-truth and error panels, for the built-in examples only.
    """
    buffer = io.BytesIO()
    side_by_side(image, alpha, buffer, gt=gt, trimap=trimap, fg=fg)
    return buffer.getvalue()


def _to_uint8(a: np.ndarray) -> np.ndarray:
    return np.round(np.clip(a, 0, 1) * 255).astype(np.uint8)


class MattingApp:
    """What the web page talks to, without the HTTP: model info, examples, and predictions.

    Parameters
    ----------
    backend : Backend
        A :class:`~deepmatting.inference.TorchBackend`, ``deepmatting.export.OnnxBackend``, or any object
        following the backend protocol of :mod:`deepmatting.inference`. Loaded once by the caller and
        used for every request that names no quality.
    max_pixels : int, default 4 000 000
        Larger images are refused (HTTP 413) before they are decoded; the largest request body accepted
        follows from it (:func:`max_body_bytes`).
    examples : int, default 4
        Number of built-in synthetic examples (made on first use, or by :meth:`warm`).
    name : str, optional
        What the page calls the model (default: :func:`~deepmatting.backends.describe_backend`).
    queue : int, default 2
        Predictions that may wait while one runs (one runs at a time: bounded memory, predictable
        latency); beyond them a request is answered 503 "busy", before its body is read when the places
        are taken already. A request takes its place once its body has arrived.
    quality : "fast", "best" or "fusion", optional
        The shipped quality ``backend`` runs, when it is a shipped model: requests may then choose any
        quality that ships (:func:`shipped_qualities`), whose model is loaded on its first request with
        :func:`~deepmatting.backends.load_backend` and kept. None (the default): ``backend`` is a given
        model and a request naming a quality is refused.
    device : str, default "auto"
        Where the other qualities' models run (``load_backend``'s ``device``).
    prediction_timeout : float, default 60
        Seconds one prediction may hold the model (:data:`PREDICTION_TIMEOUT`): it is checked between
        the steps of a prediction (reading, the classical matte, each tile, the foreground estimate, the
        figure), and a prediction over it is stopped there and answered 503. A step that has begun runs
        to its end, so the real bound is this plus the longest step.

    Examples
    --------
    >>> app = MattingApp(TorchBackend(DeepMatting(), "cpu"))  # doctest: +SKIP
    >>> app.respond("GET", "/api/info", read_body=lambda limit: b"").status  # doctest: +SKIP
    200
    """

    def __init__(self, backend: Backend, max_pixels: int = MAX_PIXELS, examples: int = EXAMPLES,
                 name: str | None = None, queue: int = QUEUE, quality: str | None = None,
                 device: str = "auto", prediction_timeout: float = PREDICTION_TIMEOUT):
        if max_pixels < 1 or queue < 0 or not prediction_timeout > 0:
            raise ValueError(f"max_pixels and prediction_timeout must be positive and queue >= 0, got "
                             f"{max_pixels}, {prediction_timeout}, {queue}")
        if quality is not None and quality not in checkpoint.QUALITIES:
            raise ValueError(f"quality {quality!r}: choose {' or '.join(checkpoint.QUALITIES)}, or None")
        self.backend = backend
        self.quality = quality
        #: The qualities a request may choose: those that ship (``backend``'s own among them), or none.
        shipped = shipped_qualities() if quality is not None else ()
        self.qualities = tuple(q for q in checkpoint.QUALITIES if q == quality or q in shipped)
        self.device = device
        self._backends = {quality: backend}  # by quality; the others loaded on first use
        self.max_pixels = int(max_pixels)
        self.max_body_bytes = max_body_bytes(self.max_pixels)
        self.queue = int(queue)
        self.prediction_timeout = float(prediction_timeout)
        self.examples = SyntheticMattingDataset(examples, size=EXAMPLE_SIZE, seed=EXAMPLE_SEED)
        self.name = name or describe_backend(backend)
        self._example_cache: dict[int, dict] = {}
        self._example_lock = threading.Lock()  # examples never wait behind a prediction
        self._predict_lock = threading.Lock()  # one prediction at a time
        self._admitted = threading.BoundedSemaphore(self.queue + 1)  # the running one and those waiting

    # ---- the requests -----------------------------------------------------------------------------
    def respond(self, method: str, path: str, read_body: Callable[[int], bytes],
                gone: Callable[[], bool] | None = None) -> Response:
        """The answer to one request; never raises for anything a client sends.

        Parameters
        ----------
        method, path : str
            ``GET``/``HEAD``/``POST`` (others get 405) and the path, query string allowed.
        read_body : callable
            ``read_body(limit) -> bytes``: the request body, refused (:class:`UploadError`) beyond ``limit``
            bytes. Called only for ``POST /api/predict``, and only when a prediction place is free; the
            place is taken once the body has arrived (a slow upload holds none).
        gone : callable, optional
            ``gone() -> bool``: True once the client has gone; its prediction is then stopped (or skipped,
            when it was waiting) at the next step.
        """
        path = path.split("?", 1)[0]
        try:
            if method in ("GET", "HEAD"):
                return self._get(path)
            if method == "POST":
                if path != "/api/predict":
                    raise UploadError(f"no endpoint {path}: POST to /api/predict", HTTPStatus.NOT_FOUND)
                with self.admission():  # a look only: no place is held while the body arrives
                    pass
                body = read_body(self.max_body_bytes)
                with self.admission():
                    payload = parse_json(body)
                    del body
                    return Response.json(HTTPStatus.OK, self.predict(payload, gone))
            raise UploadError(f"{method} is not supported here: use {', '.join(METHODS)}",
                              HTTPStatus.METHOD_NOT_ALLOWED, (("Allow", ", ".join(METHODS)),))
        except UploadError as e:
            return Response.error(e)
        except Exception as e:  # noqa: BLE001 - the server must keep serving whatever one request does
            traceback.print_exc(file=sys.stderr)
            return Response.json(HTTPStatus.INTERNAL_SERVER_ERROR,
                                 {"error": f"internal error ({type(e).__name__}: {e})"})

    def _get(self, path: str) -> Response:
        if path in STATIC_FILES:
            name, content_type = STATIC_FILES[path]
            return Response(HTTPStatus.OK, _static(name), content_type)
        if path == "/api/info":
            return Response.json(HTTPStatus.OK, self.info())
        if match := _EXAMPLE_PATH.match(path):
            return Response(HTTPStatus.OK, self.example_png(int(match[1]), match[2]), "image/png")
        raise UploadError(f"no page {path}", HTTPStatus.NOT_FOUND)

    @contextlib.contextmanager
    def admission(self) -> Iterator[None]:
        """A place among the running and waiting predictions; a 503 :class:`UploadError` when none is left."""
        if not self._admitted.acquire(blocking=False):
            raise UploadError(f"the server is busy: one prediction is running and {self.queue} are waiting; "
                              "try again in a few seconds", HTTPStatus.SERVICE_UNAVAILABLE,
                              (("Retry-After", "5"),))
        try:
            yield
        finally:
            self._admitted.release()

    def _stopper(self, gone: Callable[[], bool] | None) -> Callable[[], None]:
        """The check a prediction makes between its steps, its clock started now: raises
        :class:`UploadError` once the client has gone or :attr:`prediction_timeout` has passed."""
        start = time.monotonic()

        def check() -> None:
            if gone is not None and gone():
                raise UploadError("the client closed its connection: its prediction was stopped")
            if time.monotonic() - start > self.prediction_timeout:
                raise UploadError(
                    f"the prediction took longer than this server's limit of {self.prediction_timeout:g} s "
                    "and was stopped: send a smaller image (or ask for the fast quality), or start the "
                    "server with a larger --prediction-timeout", HTTPStatus.SERVICE_UNAVAILABLE)
        return check

    # ---- what the routes return ---------------------------------------------------------------------
    def info(self) -> dict:
        return {
            "model": self.name,
            "input": self.backend.input,
            "pad_multiple": int(self.backend.pad_multiple),
            "max_pixels": self.max_pixels,
            "max_body_bytes": self.max_body_bytes,
            "guides": list(GUIDES),
            "qualities": list(self.qualities),
            "quality": self.quality,
            "examples": [{"id": i, "size": EXAMPLE_SIZE} for i in range(len(self.examples))],
        }

    def example(self, i: int) -> dict:
        """Built-in example ``i``: a sample dict of the synthetic set (cached)."""
        if not 0 <= i < len(self.examples):
            raise UploadError(f"no example {i}: there are {len(self.examples)}", HTTPStatus.NOT_FOUND)
        with self._example_lock:
            if i not in self._example_cache:
                self._example_cache[i] = self.examples[i]
            return self._example_cache[i]

    def warm(self) -> None:
        """Make every built-in example now (the server does it in the background when it starts)."""
        for i in range(len(self.examples)):
            self.example(i)

    def example_png(self, i: int, kind: str) -> bytes:
        """PNG bytes of example ``i``'s ``image``, ``trimap`` or ``alpha`` (ground truth)."""
        sample = self.example(i)
        if kind not in ("image", "trimap", "alpha"):
            raise UploadError(f"examples have an image, a trimap and an alpha, not {kind!r}",
                              HTTPStatus.NOT_FOUND)
        return png_bytes(sample[kind] if kind == "trimap" else _to_uint8(sample[kind]))

    def requested_quality(self, value: object) -> str | None:
        """The quality a request's ``quality`` field names, checked; the server's own when it names none.

        Raises
        ------
        UploadError
            400 for a quality this server does not offer: unknown, not shipped with this build, or any
            quality when the server runs a given model.
        """
        if value is None:
            return self.quality
        if not self.qualities:
            raise UploadError(f"this server runs one given model ({self.name}): 'quality' chooses among the "
                              "models that ship with deepmatting, for a server started without --checkpoint "
                              "or --onnx; leave it out")
        offered = " or ".join(self.qualities)
        if value not in self.qualities:
            if value in checkpoint.QUALITIES:
                raise UploadError(f"quality {value!r}: no {value}-quality model ships with this build of "
                                  f"deepmatting; this server offers {offered}")
            raise UploadError(f"unknown quality {value!r}: this server offers {offered}")
        return value

    def backend_for(self, quality: str | None) -> Backend:
        """The backend of an offered quality (loaded on its first use, then kept); ``backend`` for None."""
        if quality not in self._backends:
            self._backends[quality] = load_backend(quality=quality, device=self.device)
        return self._backends[quality]

    def predict(self, payload: object, gone: Callable[[], bool] | None = None) -> dict:
        """Serve one ``POST /api/predict`` request (see the module docstring).

        ``gone() -> bool`` says when the client has gone (the prediction then stops at its next step).

        Raises
        ------
        UploadError
            For anything wrong with the request, with a message for the page; 503 for a prediction
            stopped at :attr:`prediction_timeout`.
        """
        if not isinstance(payload, dict):
            raise UploadError("the request must be a JSON object: an 'image' and a trimap, mask or scribbles")
        guides = [g for g in GUIDES if payload.get(g)]
        quality = self.requested_quality(payload.get("quality"))
        image_only = quality == self.quality and self.backend.input == "image"
        note = None
        if image_only:  # the model reads the image alone: a guide sent anyway is not decoded
            guide = "none"
            if guides:
                note = f"this model reads the image alone: the {' and '.join(guides)} sent was ignored"
        elif len(guides) != 1:
            raise UploadError("send the image with exactly one of a trimap, a mask or scribbles "
                              f"(got {', '.join(guides) or 'none'})")
        else:
            guide = guides[0]
        upload = decode_upload(payload, "image", "image")
        h, w = _checked_size(upload, self.max_pixels)
        if not image_only:
            guide_upload = decode_upload(payload, guide, guide)
            gh, gw = _checked_size(guide_upload, self.max_pixels)
            if (gh, gw) != (h, w):
                raise UploadError(f"the image is {w}x{h} pixels but the {guide} is {gw}x{gh}: "
                                  f"the {guide} must have the same size as the image")
        example = payload.get("example")
        gt = None
        if isinstance(example, int) and not isinstance(example, bool) and 0 <= example < len(self.examples):
            gt = self.example(example)["alpha"]  # the page says the image is this example: show its GT too
        with self._predict_lock:
            backend = self.backend_for(quality)
            check = self._stopper(gone)
            try:
                check()  # a client that left while its request waited
                image = read_image(upload, formats=IMAGE_FORMATS)
                trimap = mask = None
                if guide == "trimap":  # (an image-only model's guide is "none": nothing to read)
                    trimap = read_trimap(guide_upload, formats=IMAGE_FORMATS)
                elif guide == "mask":
                    mask = read_alpha(guide_upload, formats=IMAGE_FORMATS)
                    if backend.input == "trimap":  # the trimap predict would derive, as the CLI does
                        trimap, mask = mask_to_trimap(mask), None
                elif guide == "scribbles":
                    trimap = scribbles_to_trimap(_read_rgba(guide_upload))
                    if (trimap == TRIMAP_UNKNOWN).all():
                        raise UploadError("nothing is drawn yet: paint some foreground (white) and "
                                          "background (black) strokes on the image")
                check()
                start = time.perf_counter()
                alpha = predict(image, trimap, mask, backend=backend, check=check)
                seconds = time.perf_counter() - start
                check()
                fg = estimate_foreground(image, alpha)
                check()
                gt = gt if gt is not None and gt.shape == (h, w) else None
                figure = figure_png(image, alpha, trimap, fg, gt)
                check()
            except DatasetError as e:
                raise UploadError(str(e)) from None
            except ValueError as e:
                if isinstance(e, UploadError):
                    raise
                raise UploadError(str(e)) from None
        return {
            "width": w, "height": h, "guide": guide, "model": describe_backend(backend), "quality": quality,
            "seconds": round(seconds, 3),
            "alpha": data_url(png_bytes(_to_uint8(alpha), "L")),
            "cutout": data_url(png_bytes(cutout(image, alpha, fg), "RGBA")),
            "figure": data_url(figure),
            "trimap": data_url(png_bytes(trimap, "L")) if trimap is not None else None,
            **({"note": note} if note else {}),
        }


def _read_rgba(upload: _Upload) -> np.ndarray:
    """An uploaded scribble layer as ``HxWx4`` uint8 (an image without alpha counts as drawn everywhere)."""
    try:
        with Image.open(upload, formats=IMAGE_FORMATS) as im:
            im.load()
            return np.asarray(im.convert("RGBA"))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise UploadError(f"{upload}: cannot decode the image ({type(e).__name__}: {e})") from None


def _static(name: str) -> bytes:
    return importlib.resources.files("deepmatting").joinpath("web", name).read_bytes()


_EXAMPLE_PATH = re.compile(r"^/api/examples/(\d+)/(image|trimap|alpha)\.png$")
