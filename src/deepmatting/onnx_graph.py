"""The ONNX graph of a ``DeepMatting`` model: its inputs, metadata, and the export (used by
``deepmatting export`` through :mod:`deepmatting.export`, and by :mod:`deepmatting.backends` to run the
shipped models with onnxruntime); ``deepmatting.backends.OnnxBackend`` runs it.

The exported graph has two inputs (three for models that read classical mattes: ``prior``, BxPxHxW)
and one output, all with dynamic batch, height and width:

- ``image``  ``Bx3xHxW`` float32 in [0,1]
- ``trimap`` ``Bx1xHxW`` float32 {0, 0.5, 1} (a coarse mask in [0,1] for ``input="mask"`` models; absent
  from image-only models' graphs, ``input="image"``: their one input is the image)
- ``alpha``  ``Bx1xHxW`` float32 in [0,1]

Everything the model does to its inputs is inside the graph: the RGB normalisation, the trimap encoding,
and the replicate padding of H and W up to ``pad_multiple`` (computed from the input shape, then cropped
back), so the ONNX file takes any size on its own. The model's ``pad_multiple``, input kind, architecture,
config and the digest of its weights (:func:`weights_digest`) are stored in the ONNX ``metadata_props``
under ``deepmatting.*`` keys; ``OnnxBackend`` reads them from there, and the cache of exported shipped
models checks the digest before it runs a file.

Both ``onnx`` and ``onnxruntime`` are optional dependencies: ``pip install 'deepmatting[onnx]'``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import json
import os
import warnings
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from . import __version__
from .checkpoint import atomic_write
from .models import DeepMatting

INSTALL_HINT = "pip install 'deepmatting[onnx]'"

#: Names of the ONNX graph's inputs and output.
INPUT_NAMES = ("image", "trimap")
PRIOR_NAME = "prior"  # the third input of models that refine a classical matte


def graph_input_names(model_input: str, prior: bool) -> tuple[str, ...]:
    """The graph's input names for a model reading ``model_input`` (``ModelConfig.input``) and, when
    ``prior``, classical mattes: ``("image",)`` for image-only models."""
    if model_input == "image":
        return INPUT_NAMES[:1]
    return (*INPUT_NAMES, PRIOR_NAME) if prior else INPUT_NAMES
OUTPUT_NAME = "alpha"

#: ``metadata_props`` keys written by ``deepmatting.export.export_onnx`` and read by :class:`OnnxBackend`.
META_PAD_MULTIPLE = "deepmatting.pad_multiple"
META_INPUT = "deepmatting.input"
META_ARCH = "deepmatting.arch"
META_CONFIG = "deepmatting.config"
META_VERSION = "deepmatting.version"
META_PRIOR = "deepmatting.prior"
META_WEIGHTS = "deepmatting.weights_sha256"


def weights_digest(model: DeepMatting) -> str:
    """SHA-256 (hex) of a model's weights (every state-dict tensor, by name) and its config.

    What an exported file records of the model it came from (:data:`META_WEIGHTS`), so that a file can be
    checked against the model it claims to be; the cache of exported shipped models is keyed by it.
    """
    digest = hashlib.sha256()
    for name, t in model.state_dict().items():
        digest.update(name.encode())
        digest.update(t.detach().cpu().contiguous().numpy().tobytes())
    digest.update(repr(model.config).encode())
    return digest.hexdigest()


def require_onnx(module: str):
    """Import an optional dependency of the ``onnx`` extra, with the install line when it is missing."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"ONNX support needs the '{module}' package: {INSTALL_HINT}") from e


#: The opset written by default, the oldest one the graph can be written in (``Range``, ``MaxUnpool``
#: with an ``output_shape`` input, ``Pad`` with the pads as an input), and the newest one the TorchScript
#: exporter of the installed PyTorch writes.
DEFAULT_OPSET = 17
MIN_OPSET = 11
MAX_OPSET = getattr(getattr(torch.onnx, "_constants", None), "ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET", 20)


# ---- export -----------------------------------------------------------------------------------------
class PaddedGraph(nn.Module):
    """The module that is traced: pad H and W to ``pad_multiple``, run the model, crop back.

    ``DeepMatting.forward`` pads too, but behind a Python ``if`` on the size, which tracing freezes for the
    size it was traced at. Here the pad amounts are always applied and come from the input's shape, so the
    tracer records them as graph operations (``Shape -> Mod -> Pad`` and a ``Slice`` back) and the exported
    graph is right at every size; inside, the model then sees multiples of ``pad_multiple`` only, padded
    the way ``DeepMatting.forward`` pads them (replicate, before the inputs are encoded).
    """

    def __init__(self, model: DeepMatting):
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor, *guides: torch.Tensor) -> torch.Tensor:
        """``image`` and the model's other inputs (trimap and prior, none for image-only models)."""
        h, w = image.shape[-2:]  # traced as shape values, not constants
        m = self.model.pad_multiple
        ph, pw = (m - h % m) % m, (m - w % m) % m
        padded = [F.pad(t, (0, pw, 0, ph), mode="replicate") for t in (image, *guides)]  # to m
        return self.model(*padded)[..., :h, :w]  # (B, 1, H, W)


def _max_unpool2d_symbolic(g, x, indices, output_size):
    """``aten::max_unpool2d`` -> ONNX ``MaxUnpool`` (the TorchScript exporter has no translation for it).

    PyTorch's indices count within each ``HxW`` plane; ONNX's count over the whole ``NxCxHxW`` tensor (the
    exporter already turns ``MaxPool``'s ONNX indices into per-plane ones), so ``(n*C + c) * H*W`` is added
    back. ATen passes no kernel size: ONNX uses ``kernel_shape``/``strides`` only to infer an output shape,
    and the shape is given explicitly here, so the 2x2 written is a placeholder valid for any factor.
    """

    def const(values):
        return g.op("Constant", value_t=torch.tensor(values, dtype=torch.int64))

    n_c = g.op("Slice", g.op("Shape", x), const([0]), const([2]))  # [N, C]
    out_shape = g.op("Concat", n_c, output_size, axis_i=0)  # [N, C, H, W]
    plane = g.op("ReduceProd", output_size, keepdims_i=1)  # [H*W]
    planes = g.op("Reshape", g.op("ReduceProd", n_c, keepdims_i=1), const([]))  # N*C, a scalar for Range
    offsets = g.op("Mul", g.op("Range", const(0), planes, const(1)), plane)  # (N*C,)
    offsets = g.op("Reshape", offsets, g.op("Concat", n_c, const([1, 1]), axis_i=0))  # (N, C, 1, 1)
    flat = g.op("Add", indices, offsets)
    return g.op("MaxUnpool", x, flat, out_shape, kernel_shape_i=[2, 2], strides_i=[2, 2])


def _no_unpool_size_check(output_size, dim):
    """Stand-in for ``torch.nn.functional._check_unpool_output_size`` while tracing (see below)."""


@contextlib.contextmanager
def _exportable_unpool() -> Iterator[None]:
    """Make ``F.max_unpool2d`` (used by ``dim-vgg16``) exportable for the duration of an export.

    Two gaps in the TorchScript exporter of PyTorch 2.13: it has no symbolic for ``aten::max_unpool2d``
    (registered here and removed afterwards), and ``F.max_unpool2d`` checks the output size with
    ``torch._check_value``, which raises a TypeError when tracing turns the sizes into tensors (the check,
    ``size >= 0``, always holds for sizes computed from a shape, so it is skipped while tracing).
    """
    torch.onnx.register_custom_op_symbolic("aten::max_unpool2d", _max_unpool2d_symbolic, MIN_OPSET)
    had_check = hasattr(F, "_check_unpool_output_size")
    check = getattr(F, "_check_unpool_output_size", None)
    if had_check:
        F._check_unpool_output_size = _no_unpool_size_check
    try:
        yield
    finally:
        if had_check:
            F._check_unpool_output_size = check
        torch.onnx.unregister_custom_op_symbolic("aten::max_unpool2d", MIN_OPSET)


def export_onnx(
    model_or_checkpoint: DeepMatting | str | os.PathLike | None,
    path: str | os.PathLike,
    opset: int = DEFAULT_OPSET,
) -> Path:
    """Export a model to an ONNX file that onnxruntime (or any ONNX runtime) runs at any size.

    Parameters
    ----------
    model_or_checkpoint : DeepMatting, path, or None
        A model, a checkpoint written by ``deepmatting train`` / ``DeepMatting.save``, or None for the
        default model that ships with the package (a ``CheckpointError`` says so when none does).
    path : path
        The ``.onnx`` file to write (parent folders are created; written to a temporary file and renamed).
    opset : int, default 17
        ONNX opset version, from :data:`MIN_OPSET` (11) to :data:`MAX_OPSET` (20 with PyTorch 2.13).

    Returns
    -------
    Path
        ``path``. The graph's inputs are ``image`` (Bx3xHxW float32 [0,1]) and ``trimap`` (Bx1xHxW float32
        {0,0.5,1}), its output ``alpha`` (Bx1xHxW float32 [0,1]); batch, height and width are dynamic. The
        ``metadata_props`` hold ``deepmatting.pad_multiple``, ``deepmatting.input``
        (``trimap``/``mask``/``image``; an image-only graph has no ``trimap`` input),
        ``deepmatting.arch``, ``deepmatting.config`` (JSON), ``deepmatting.version`` and
        ``deepmatting.weights_sha256`` (:func:`weights_digest`).

    Raises
    ------
    ImportError
        When the ``onnx`` package is missing (``pip install 'deepmatting[onnx]'``).
    ValueError
        When ``opset`` is outside ``MIN_OPSET..MAX_OPSET``.
    CheckpointError
        When the checkpoint cannot be loaded.

    Examples
    --------
    >>> export_onnx(DeepMatting(), "model.onnx")  # doctest: +SKIP
    PosixPath('model.onnx')
    """
    onnx = require_onnx("onnx")
    if opset < MIN_OPSET:
        raise ValueError(f"opset {opset} is too old: the exported graph needs opset {MIN_OPSET} or newer")
    if opset > MAX_OPSET:
        raise ValueError(f"opset {opset} is too new: this PyTorch exports opsets {MIN_OPSET} to {MAX_OPSET}")
    model = (model_or_checkpoint if isinstance(model_or_checkpoint, DeepMatting)
             else DeepMatting.pretrained(model_or_checkpoint))
    path = Path(path)
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    m = model.pad_multiple
    # an example batch whose size is not a multiple of pad_multiple, so padding is exercised while tracing
    image = torch.rand(2, 3, m + 5, m + 7, device=device)
    trimap = torch.full((2, 1, m + 5, m + 7), 0.5, device=device)
    prior = torch.rand(2, model.prior_channels, m + 5, m + 7, device=device)
    names = graph_input_names(model.config.input, model.prior is not None)
    examples = (image, trimap, prior)[: len(names)]
    dims = {0: "batch", 2: "height", 3: "width"}
    buffer = io.BytesIO()
    was_training = model.training
    model.eval()
    try:
        with _exportable_unpool(), warnings.catch_warnings(), torch.no_grad():
            # the pad/crop amounts are read from tensor shapes on purpose (see PaddedGraph); the tests check
            # the exported graph against PyTorch at sizes other than the traced one
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            # we choose the TorchScript exporter (the default one needs onnxscript); its notices are not news
            warnings.filterwarnings("ignore", message="You are using the legacy TorchScript-based ONNX")
            warnings.filterwarnings("ignore", message="The feature will be removed")
            # slices whose bounds come from the input's shape (the padding) are left unfolded: as intended
            warnings.filterwarnings("ignore", message="Constant folding - Only steps=1")
            torch.onnx.export(
                PaddedGraph(model).eval(),
                examples,
                buffer,
                input_names=list(names),
                output_names=[OUTPUT_NAME],
                dynamic_axes={name: dims for name in (*names, OUTPUT_NAME)},
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False,
            )
    finally:
        model.train(was_training)

    proto = onnx.load_from_string(buffer.getvalue())
    metadata = {
        META_PAD_MULTIPLE: str(m),
        META_INPUT: model.config.input,
        META_ARCH: model.config.arch,
        META_CONFIG: json.dumps(asdict(model.config)),
        META_VERSION: __version__,
        META_PRIOR: model.prior or "",
        META_WEIGHTS: weights_digest(model),
    }
    onnx.helper.set_model_props(proto, metadata)
    guide = "" if model.config.input == "image" else f" + {model.config.input} Bx1xHxW"
    proto.doc_string = (
        f"deepmatting {__version__} {model.config.arch}: image Bx3xHxW [0,1]{guide} -> alpha Bx1xHxW [0,1]"
    )
    onnx.checker.check_model(proto)

    return atomic_write(path, lambda f: f.write(proto.SerializeToString()))
