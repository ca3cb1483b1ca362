"""Backends: "a model, a checkpoint, an ONNX file or the shipped default" -> one callable for ``predict``.

A *backend* is any object with

- ``pad_multiple: int`` — what H and W get padded to (the backend pads itself; tiles are aligned to it),
- ``input: str`` — ``"trimap"``, ``"mask"`` or ``"image"`` (what the model reads beside the image; nothing
  for ``"image"``, whose calls get ``trimap=None``),
- ``prior: str | None`` — the classical matte(s) the model reads (``"closed-form"``, ``"closed-form+knn"``),
  and ``prior_pixels: int`` — the largest size they are solved at (larger images: solved smaller),
- ``__call__(image Bx3xHxW float32 [0,1], trimap Bx1xHxW float32 {0,0.5,1}[, prior BxPxHxW]) ->
  Bx1xHxW float32 [0,1]`` on NumPy arrays.

:class:`TorchBackend` runs a :class:`~deepmatting.models.DeepMatting` (BatchNorm folded, channels-last);
:class:`OnnxBackend` runs a file written by ``deepmatting.export.export_onnx`` with onnxruntime.
:func:`load_backend` is the one function that turns what a user names into a backend: load it once and
reuse it for many images (it is the "session" object; the shipped default is cached for the process).
"""

from __future__ import annotations

import copy
import functools
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from .checkpoint import DEFAULT_QUALITY, CheckpointError
from .data.prior_pool import PRIOR_MAX_PIXELS
from .device import autocast_dtype, resolve_device
from .models import DeepMatting
from .models.blocks import fuse_conv_bn
from .onnx_graph import (
    INPUT_NAMES,
    META_ARCH,
    META_CONFIG,
    META_INPUT,
    META_PAD_MULTIPLE,
    META_PRIOR,
    META_WEIGHTS,
    OUTPUT_NAME,
    PRIOR_NAME,
    graph_input_names,
    require_onnx,
    weights_digest,
)

UNTRAINED_WARNING = (
    "this DeepMatting model was neither trained nor loaded: its weights are the random initialisation and "
    "its alpha is meaningless. Use DeepMatting.pretrained() (the shipped model), "
    "DeepMatting.from_checkpoint(path), or train it first"
)


# ---- PyTorch ---------------------------------------------------------------------------------------
@runtime_checkable
class Backend(Protocol):
    """What :func:`predict` needs from a model: see the module docstring."""

    pad_multiple: int
    input: str

    def __call__(self, image: np.ndarray, trimap: np.ndarray, *prior: np.ndarray) -> np.ndarray: ...


class TorchBackend:
    """Run a :class:`DeepMatting` model on NumPy batches.

    The backend runs a copy of the model in eval mode, with every BatchNorm folded into the convolution
    before it (fewer passes over memory: faster on the CPU), moved to ``device`` and to the channels-last
    memory format; the module passed in is left unchanged. Inference runs under ``torch.inference_mode``.

    Parameters
    ----------
    model : DeepMatting
    device : str or torch.device, default "auto"
        ``auto|cpu|cuda|cuda:N|mps`` (see :func:`deepmatting.device.resolve_device`).
    amp : bool, optional
        Mixed precision: float16 autocast on CUDA, bfloat16 autocast on the CPU. ``None`` (the default)
        turns it on for CUDA only; the CPU keeps float32 unless ``amp=True``.
    channels_last : bool, default True
        Run convolutions in the NHWC memory format (faster on most CPUs and GPUs).

    Examples
    --------
    >>> backend = TorchBackend(DeepMatting(), device="cpu")
    >>> backend(np.zeros((1, 3, 40, 50), np.float32), np.full((1, 1, 40, 50), 0.5, np.float32)).shape
    (1, 1, 40, 50)
    """

    def __init__(self, model: DeepMatting, device: str | torch.device = "auto", amp: bool | None = None,
                 channels_last: bool = True):
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        self.amp = self.device.type == "cuda" if amp is None else bool(amp)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        if model.weights_source is None:
            warnings.warn(UNTRAINED_WARNING, UserWarning, stacklevel=3)
        fused = fuse_conv_bn(copy.deepcopy(model).eval())
        self.model = fused.to(self.device, memory_format=self.memory_format)
        self.pad_multiple = int(model.pad_multiple)
        self.input = model.config.input
        self.arch = model.config.arch
        self.prior = model.prior
        self.prior_pixels = model.prior_pixels
        self.source = model.weights_source or "random weights"

    def __call__(self, image: np.ndarray, trimap: np.ndarray | None, prior: np.ndarray | None = None
                 ) -> np.ndarray:
        """``Bx3xHxW`` image, ``Bx1xHxW`` trimap (None for image-only models) and prior -> ``Bx1xHxW``."""
        def tensor(a: np.ndarray | None) -> torch.Tensor | None:
            if a is None:
                return None
            t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(self.device)
            return t.contiguous(memory_format=self.memory_format)  # (B, C, H, W)

        with torch.inference_mode():
            inputs = [tensor(image), tensor(trimap)] + ([tensor(prior)] if prior is not None else [])
            with torch.autocast(self.device.type, dtype=autocast_dtype(self.device), enabled=self.amp):
                alpha = self.model(*inputs)  # (B, 1, H, W)
            return alpha.float().cpu().numpy()


# ---- onnxruntime -----------------------------------------------------------------------------------
def default_providers() -> list[str]:
    """CUDA when this onnxruntime build has it, then the CPU."""
    ort = require_onnx("onnxruntime")
    available = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


class OnnxBackend:
    """Run an ONNX file written by ``deepmatting export`` with onnxruntime (a backend for ``predict``).

    Parameters
    ----------
    path : path
        The ``.onnx`` file.
    providers : list of str, optional
        onnxruntime execution providers; CUDA (when available) then CPU by default.
    threads : int, optional
        Intra-op threads; onnxruntime's default (one per physical core) when None.
    source : str, optional
        What the model is, for messages (the file's path by default).

    Attributes
    ----------
    pad_multiple : int
        Read from the file's metadata; the graph pads (and crops) itself, so any size is accepted.
    input : str
        ``"trimap"`` or ``"mask"``, read from the file's metadata.
    metadata : dict[str, str]
        All ``metadata_props`` of the file.

    Raises
    ------
    ImportError
        When onnxruntime is missing (``pip install 'deepmatting[onnx]'``).
    CheckpointError
        When the file is missing, is not an ONNX model, or was not written by ``export_onnx``.

    Examples
    --------
    >>> backend = OnnxBackend("model.onnx")  # doctest: +SKIP
    >>> alpha = predict(image, trimap, backend=backend)  # doctest: +SKIP
    """

    def __init__(
        self, path: str | os.PathLike, providers: list[str] | None = None, threads: int | None = None,
        source: str | None = None,
    ) -> None:
        ort = require_onnx("onnxruntime")
        self.path = Path(path)
        self.source = source or str(self.path)  # what describe_backend names
        if not self.path.is_file():
            raise CheckpointError(f"ONNX model {self.path}: no such file (write one: `deepmatting export`)")
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(
                str(self.path), sess_options=options, providers=providers or default_providers()
            )
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types for a bad file
            message = f"ONNX model {self.path}: cannot be loaded ({type(e).__name__}: {e})"
            raise CheckpointError(message) from e
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        names = tuple(i.name for i in self.session.get_inputs())
        expected = graph_input_names(self.metadata.get(META_INPUT, ""), bool(self.metadata.get(META_PRIOR)))
        if names != expected or META_PAD_MULTIPLE not in self.metadata or META_INPUT not in self.metadata:
            raise CheckpointError(
                f"ONNX model {self.path}: not written by `deepmatting export` (inputs {list(names)}, "
                f"metadata keys {sorted(self.metadata)}); write one with `deepmatting export`"
            )
        self.pad_multiple = int(self.metadata[META_PAD_MULTIPLE])
        self.input = self.metadata[META_INPUT]
        self.input_names = names
        self.prior = self.metadata.get(META_PRIOR) or None
        try:
            config = json.loads(self.metadata.get(META_CONFIG, "{}"))
        except ValueError:
            config = {}
        pixels = config.get("prior_pixels") if isinstance(config, dict) else None
        self.prior_pixels = pixels if isinstance(pixels, int) and pixels > 0 else PRIOR_MAX_PIXELS

    def __call__(self, image: np.ndarray, trimap: np.ndarray | None, prior: np.ndarray | None = None
                 ) -> np.ndarray:
        """``Bx3xHxW`` image in [0,1], ``Bx1xHxW`` trimap (and prior matte), float32 -> ``Bx1xHxW`` alpha.
        An image-only model's graph reads the image alone (``trimap`` None)."""
        feeds = {name: np.ascontiguousarray(a, dtype=np.float32)
                 for name, a in zip((*INPUT_NAMES, PRIOR_NAME), (image, trimap, prior), strict=True)
                 if a is not None and name in self.input_names}
        return self.session.run([OUTPUT_NAME], feeds)[0]

    def __repr__(self) -> str:
        return f"OnnxBackend({str(self.path)!r}, providers={self.session.get_providers()})"


# ---- the one loader ----------------------------------------------------------------------------------
def load_backend(model: DeepMatting | str | os.PathLike | None = None, *,
                 onnx: str | os.PathLike | None = None, quality: str | None = None,
                 device: str | torch.device = "auto", amp: bool | None = None,
                 runtime: str | None = None) -> Backend:
    """The backend for a model, a checkpoint, an ONNX file, or the packaged default model.

    Load it once and pass it to :func:`deepmatting.predict` (``backend=``) for every image: loading and
    preparing a model costs far more than a small image. The default model's backend is cached, so
    ``load_backend()`` (and ``predict`` without a model) builds it once per process, device and ``amp``.

    Parameters
    ----------
    model : DeepMatting, path, or None
        A model, a ``.pt`` checkpoint written by ``deepmatting train`` or ``DeepMatting.save``, or None for
        the default model that ships with the package.
    onnx : path, optional
        An ONNX file from ``deepmatting export``, run with onnxruntime (``pip install deepmatting[onnx]``).
    quality : "fast" or "best", optional
        Which shipped model, when neither ``model`` nor ``onnx`` is given: ``"fast"`` (the default) or
        ``"best"`` (refines closed-form matting: better mattes, several times slower).
    device, amp
        For PyTorch models, see :class:`TorchBackend`.
    runtime : "auto", "torch" or "onnxruntime", optional
        How a shipped model runs on the CPU. ``"auto"`` (the default, or the ``DEEPMATTING_RUNTIME``
        environment variable) uses onnxruntime when the ``onnx`` extra is installed (about twice as fast
        as PyTorch here, same output to 1e-7): the model is exported once to the cache folder
        (``DEEPMATTING_CACHE``, default ``~/.cache/deepmatting``), then reused as long as it records the
        digest of the shipped weights (a damaged or foreign file is exported again, with a line on stderr).
        When the cache cannot be used, ``"auto"`` runs PyTorch and says why on stderr.

    Raises
    ------
    CheckpointError
        When the checkpoint or ONNX file cannot be loaded, or when neither is given and no default model
        ships.
    ValueError
        When both ``model`` and ``onnx`` are given.

    Examples
    --------
    >>> backend = load_backend("runs/demo/best.pt", device="cpu")  # doctest: +SKIP
    >>> alphas = [predict(image, trimap, backend=backend) for image, trimap in pairs]  # doctest: +SKIP
    """
    if quality is not None and (model is not None or onnx is not None):
        raise ValueError("quality chooses among the shipped models: give a quality or a model, not both")
    if onnx is not None:
        if model is not None:
            raise ValueError("give a checkpoint (or model) or an ONNX file, not both")
        return OnnxBackend(onnx)
    if isinstance(model, DeepMatting):
        return TorchBackend(model, device=device, amp=amp)
    if model is None:
        runtime = runtime or os.environ.get("DEEPMATTING_RUNTIME", "auto")
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime {runtime!r}: choose one of {', '.join(RUNTIMES)}")
        return _shipped_backend(quality or DEFAULT_QUALITY, str(resolve_device(device)), amp, runtime)
    if isinstance(model, (str, os.PathLike)):
        return TorchBackend(DeepMatting.from_checkpoint(model), device=device, amp=amp)
    raise ValueError(f"model must be a DeepMatting, a checkpoint path or None, got {type(model).__name__}")


RUNTIMES = ("auto", "torch", "onnxruntime")


@functools.lru_cache(maxsize=4)
def _shipped_backend(quality: str, device: str, amp: bool | None, runtime: str) -> Backend:
    """A shipped model's backend: onnxruntime from the verified cache on the CPU (unless told otherwise),
    else PyTorch. Falling back to PyTorch for any reason but a missing ``onnx`` extra says why on stderr
    (the model runs about half as fast)."""
    model = DeepMatting.pretrained(quality=quality)
    if device == "cpu" and not amp and runtime != "torch":
        try:
            return _cached_onnx_backend(model)
        except ImportError:  # the optional onnx extra is not installed: PyTorch, as documented
            if runtime == "onnxruntime":
                raise
        except (OSError, CheckpointError) as e:
            if runtime == "onnxruntime":
                raise
            _note(f"{e}; running the {quality} model in PyTorch instead (slower)")
    return TorchBackend(model, device=device, amp=amp)


def _note(message: str) -> None:
    """One line on stderr about how the shipped model runs (seen by CLI users and in the server's log)."""
    print(f"deepmatting: {message}", file=sys.stderr)


def cache_folder() -> Path:
    """Where exported models are kept: ``DEEPMATTING_CACHE``, else ``~/.cache/deepmatting``."""
    return Path(os.environ.get("DEEPMATTING_CACHE") or Path.home() / ".cache" / "deepmatting")


def _cache_description(folder: Path) -> str:
    named = " (DEEPMATTING_CACHE)" if os.environ.get("DEEPMATTING_CACHE") else ""
    return f"the ONNX cache folder {folder}{named}"


def _cached_onnx_backend(model: DeepMatting) -> OnnxBackend:
    """``model`` run by onnxruntime from its export in :func:`cache_folder`, exported on first use.

    The file is named by the digest of the weights (:func:`~deepmatting.onnx_graph.weights_digest`) but not
    trusted by its name: it runs only when it loads, records that same digest in its metadata and belongs
    to this user. Anything else (a file cut short, another model under that name, a file an other user put
    in a shared cache) is exported again over it, with one line on stderr saying so.

    Raises
    ------
    ImportError
        Without the ``onnx`` extra.
    CheckpointError
        When the cache cannot hold the export (not a folder, not writable), or the fresh export fails.
    """
    require_onnx("onnxruntime")
    digest = weights_digest(model)
    folder = cache_folder()
    if folder.exists() and not folder.is_dir():
        raise CheckpointError(f"{_cache_description(folder)} is a file, not a folder")
    path = folder / f"{model.config.arch}-{digest[:16]}.onnx"
    if path.exists():
        backend, problem = _verified(path, digest, model.weights_source)
        if backend is not None:
            return backend
        _note(f"the cached ONNX model {path} {problem}; exporting the model again")
    _export_to_cache(model, path)
    backend, problem = _verified(path, digest, model.weights_source)
    if backend is None:
        raise CheckpointError(f"the fresh export {path} {problem}")
    return backend


def _verified(path: Path, digest: str, source: str | None) -> tuple[OnnxBackend | None, str]:
    """``(backend, "")`` when the cached file ``path`` is the export of the weights of ``digest``, else
    ``(None, what is wrong with it)``. Files of this user or of root are trusted to be what they record."""
    try:
        uid = path.stat().st_uid
    except OSError as e:
        return None, f"cannot be read ({e.strerror or e})"
    if hasattr(os, "getuid") and uid not in (os.getuid(), 0):
        return None, f"belongs to another user (uid {uid})"
    try:
        backend = OnnxBackend(path, source=source)
    except CheckpointError as e:
        return None, str(e).removeprefix(f"ONNX model {path}: ")
    found = backend.metadata.get(META_WEIGHTS)
    if found is None:
        return None, "records no weights digest (an older deepmatting or another tool wrote it)"
    if found != digest:
        arch = backend.metadata.get(META_ARCH, "unknown")
        return None, (f"holds other weights (a {arch} model with the digest {found[:16]}..., not "
                      f"{digest[:16]}...)")
    return backend, ""


def _export_to_cache(model: DeepMatting, path: Path) -> None:
    """Export ``model`` to ``path`` in the cache; a folder that cannot be made or written is a
    :class:`CheckpointError` naming the cache."""
    from .onnx_graph import export_onnx

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        export_onnx(model, path)
    except (OSError, CheckpointError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise CheckpointError(f"cannot export the shipped model into {_cache_description(path.parent)}: "
                              f"{reason}") from e


def describe_backend(backend: Backend) -> str:
    """One line naming the model a backend runs: architecture and source (default, checkpoint, ONNX)."""
    if isinstance(backend, TorchBackend):
        return f"{backend.arch} (PyTorch, {backend.source})"
    if isinstance(backend, OnnxBackend):
        return f"{backend.metadata.get(META_ARCH, 'unknown architecture')} (onnxruntime, {backend.source})"
    return type(backend).__name__
