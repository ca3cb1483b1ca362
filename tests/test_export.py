"""ONNX export: onnxruntime matches PyTorch at sizes other than the traced one, metadata, errors, CLI."""

import sys

import numpy as np
import pytest
import torch
from PIL import Image

from deepmatting import DeepMatting, list_architectures
from deepmatting.checkpoint import DEFAULT_QUALITY, CheckpointError
from deepmatting.cli import main
from deepmatting.inference import predict

SKIP = "the onnx extra is not installed: pip install 'deepmatting[onnx]'"
onnx = pytest.importorskip("onnx", reason=SKIP)
ort = pytest.importorskip("onnxruntime", reason=SKIP)

from deepmatting.backends import META_ARCH, META_INPUT, META_PAD_MULTIPLE, OnnxBackend  # noqa: E402
from deepmatting.export import export_onnx  # noqa: E402 - after the importorskip

TOLERANCE = 1e-4
#: (batch, height, width): odd sizes, none a multiple of 32, and a second batch size
SIZES = [(1, 45, 67), (2, 70, 33)]


def _random_inputs(b, h, w, seed=0, model=None):
    rng = np.random.default_rng(seed)
    image = rng.random((b, 3, h, w), dtype=np.float32)
    trimap = (rng.integers(0, 3, (b, 1, h, w)) / 2).astype(np.float32)  # 0 / 0.5 / 1
    if model is not None and model.prior is not None:  # a refining model also reads classical mattes
        return image, trimap, rng.random((b, model.prior_channels, h, w), dtype=np.float32)
    return image, trimap


def _torch(model, *inputs):
    with torch.no_grad():
        return model.eval()(*(torch.from_numpy(a) for a in inputs)).numpy()


@pytest.fixture(scope="module", params=[
    pytest.param(a, marks=pytest.mark.slow) if a == "dim-vgg16" else a for a in list_architectures()
] + ["light-unet/mask"])
def exported(request, tmp_path_factory):
    """(model, path) for each architecture, random weights, exported once per module."""
    arch, _, kind = request.param.partition("/")
    torch.manual_seed(0)
    model = DeepMatting(arch, input=kind or "trimap")
    if arch == "cf-knn-fusion":  # its output layer starts at zero (the mean of the mattes): exercise it
        torch.nn.init.normal_(model.decoder.head[-1].weight, std=0.5)
    path = export_onnx(model, tmp_path_factory.mktemp("onnx") / f"{arch}_{kind or 'trimap'}.onnx")
    return model, path


@pytest.mark.parametrize("size", SIZES, ids=lambda s: "x".join(map(str, s)))
def test_onnxruntime_matches_pytorch(exported, size):
    model, path = exported
    backend = OnnxBackend(path, threads=2)
    inputs = _random_inputs(*size, model=model)
    out = backend(*inputs)
    assert out.shape == (size[0], 1, *size[1:]) and out.dtype == np.float32
    assert np.abs(out - _torch(model, *inputs)).max() < TOLERANCE


def test_the_graph_keeps_the_known_regions_exact(exported):
    model, path = exported
    image, trimap, *prior = _random_inputs(2, 45, 67, seed=2, model=model)
    alpha = OnnxBackend(path)(image, trimap, *prior)
    if model.config.input == "mask":  # a coarse mask is no trimap: nothing is pasted
        assert ((alpha > 0) & (alpha < 1))[trimap != 0.5].any()
    else:
        assert (alpha[trimap == 0] == 0).all() and (alpha[trimap == 1] == 1).all()


def test_tiny_and_aligned_sizes(exported):
    model, path = exported
    backend = OnnxBackend(path)
    for size in [(1, 1, 1), (1, 32, 64)]:
        inputs = _random_inputs(*size, seed=1, model=model)
        assert np.abs(backend(*inputs) - _torch(model, *inputs)).max() < TOLERANCE


def test_metadata_and_graph(exported):
    model, path = exported
    proto = onnx.load(path, load_external_data=False)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta[META_PAD_MULTIPLE] == str(model.pad_multiple)
    assert meta[META_INPUT] == model.config.input
    assert meta[META_ARCH] == model.config.arch
    assert [i.name for i in proto.graph.input] == ["image", "trimap"] + (["prior"] if model.prior else [])
    assert [o.name for o in proto.graph.output] == ["alpha"]
    dims = [d.dim_param for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", "", "height", "width"]  # channels fixed, the rest dynamic
    backend = OnnxBackend(path)
    assert backend.pad_multiple == model.pad_multiple and backend.input == model.config.input
    assert backend.prior == model.prior


def test_export_keeps_training_mode_and_takes_a_checkpoint(tmp_path):
    model = DeepMatting(width=0.5).train()
    ckpt = tmp_path / "model.pt"
    model.save(ckpt)
    export_onnx(model, tmp_path / "a.onnx")
    assert model.training
    path = export_onnx(ckpt, tmp_path / "sub" / "b.onnx", opset=11)  # the oldest opset supported
    image, trimap = _random_inputs(1, 40, 50)
    assert np.abs(OnnxBackend(path)(image, trimap) - _torch(model, image, trimap)).max() < TOLERANCE


@pytest.mark.slow
def test_unpooling_and_refinement_export_at_the_oldest_opset(tmp_path):
    torch.manual_seed(0)
    model = DeepMatting("dim-vgg16", refine=True)
    image, trimap = _random_inputs(2, 37, 41)
    path = export_onnx(model, tmp_path / "dim.onnx", opset=11)
    assert np.abs(OnnxBackend(path)(image, trimap) - _torch(model, image, trimap)).max() < TOLERANCE


def test_predict_with_onnx_backend_tiles_and_known_regions(tmp_path):
    torch.manual_seed(0)
    model = DeepMatting(width=0.5)
    backend = OnnxBackend(export_onnx(model, tmp_path / "m.onnx"))
    rng = np.random.default_rng(0)
    image = rng.random((150, 170, 3), dtype=np.float32)
    trimap = np.full((150, 170), 128, np.uint8)
    trimap[:40] = 0
    trimap[-40:] = 255
    ours = predict(image, trimap, backend=backend, tile_size=64, tile_overlap=16)
    ref = predict(image, trimap, model=model, tile_size=64, tile_overlap=16)
    assert ours.shape == (150, 170)
    assert np.abs(ours - ref).max() < TOLERANCE
    assert (ours[:40] == 0).all() and (ours[-40:] == 1).all()


def test_onnx_backend_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        OnnxBackend(tmp_path / "missing.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="cannot be loaded"):
        OnnxBackend(tmp_path / "junk.onnx")
    # a valid ONNX graph that `deepmatting export` did not write
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])
    graph = onnx.helper.make_graph([onnx.helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)]),
              tmp_path / "other.onnx")
    with pytest.raises(CheckpointError, match="deepmatting export"):
        OnnxBackend(tmp_path / "other.onnx")
    with pytest.raises(ValueError, match="opset"):
        export_onnx(DeepMatting(width=0.5), tmp_path / "old.onnx", opset=9)


def test_missing_onnxruntime_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    with pytest.raises(ImportError, match=r"pip install 'deepmatting\[onnx\]'"):
        OnnxBackend(tmp_path / "m.onnx")


def test_cli_export_then_predict_onnx(tmp_path, capsys):
    torch.manual_seed(0)
    model = DeepMatting(width=0.5)
    ckpt = tmp_path / "model.pt"
    model.save(ckpt)
    out = tmp_path / "model.onnx"
    assert main(["export", "--checkpoint", str(ckpt), "--out", str(out)]) == 0
    assert out.is_file() and "wrote" in capsys.readouterr().out

    rng = np.random.default_rng(0)
    image = (rng.random((50, 70, 3)) * 255).astype(np.uint8)
    trimap = np.full((50, 70), 128, np.uint8)
    trimap[:12] = 0
    trimap[-12:] = 255
    Image.fromarray(image).save(tmp_path / "cat.png")
    Image.fromarray(trimap).save(tmp_path / "cat_trimap.png")
    args = ["--image", str(tmp_path / "cat.png"), "--trimap", str(tmp_path / "cat_trimap.png")]
    assert main(["predict", "--onnx", str(out), *args, "--out", str(tmp_path / "onnx")]) == 0
    assert main(["predict", "--checkpoint", str(ckpt), *args, "--out", str(tmp_path / "torch")]) == 0
    a = np.asarray(Image.open(tmp_path / "onnx" / "cat_alpha.png")).astype(int)
    b = np.asarray(Image.open(tmp_path / "torch" / "cat_alpha.png")).astype(int)
    assert a.shape == (50, 70)
    assert np.abs(a - b).max() <= 1  # the same matte, up to 8-bit rounding
    assert (a[:12] == 0).all() and (a[-12:] == 255).all()


def test_cli_export_errors(tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", "--checkpoint", str(tmp_path / "missing.pt"), "--out", str(out)]) == 2
    assert "no such file" in capsys.readouterr().err
    assert not out.exists()


def test_shipped_models_run_in_onnxruntime_from_a_cached_export(tmp_path, monkeypatch, ship):
    from deepmatting import backends

    torch.manual_seed(0)
    path = tmp_path / "shipped.pt"
    DeepMatting(width=0.5).save(path)
    monkeypatch.setenv("DEEPMATTING_CACHE", str(tmp_path / "cache"))
    with ship({DEFAULT_QUALITY: path}):
        fast = backends.load_backend(device="cpu", runtime="auto")
        assert isinstance(fast, OnnxBackend) and fast.source == "the shipped default"
        assert len(list((tmp_path / "cache").glob("light-unet-*.onnx"))) == 1  # exported once, cached
        inputs = _random_inputs(1, 45, 67)
        reference = backends.load_backend(device="cpu", runtime="torch")
        assert np.abs(fast(*inputs) - reference(*inputs)).max() < TOLERANCE
        backends._shipped_backend.cache_clear()
        backends.load_backend(device="cpu", runtime="auto")  # a new process: the export is reused
        assert len(list((tmp_path / "cache").glob("*.onnx"))) == 1
        with pytest.raises(ValueError, match="runtime 'tpu'"):
            backends.load_backend(runtime="tpu")
