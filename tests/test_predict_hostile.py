"""Hostile and degenerate input to predict, export, evaluate and the ONNX cache (reliability audit #26).

Figures of 1xN, Nx1 and 1x1 images (D12); out-of-range numeric options refused by argparse (D13, D20);
folder entries that are not images reported, not dropped (D18); ``evaluate --json`` and ``export --out``
checked before the work (D19, K13); the ONNX cache verified against the weights' digest (D8).
"""

import io
import json
import os
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from deepmatting import DeepMatting
from deepmatting.checkpoint import DEFAULT_QUALITY, CheckpointError
from deepmatting.cli import main
from deepmatting.visualize import side_by_side

pytestmark = pytest.mark.usefixtures("one_thread")


def _pair(folder, name, h, w, unknown=True):
    """An image and a trimap of ``h x w`` pixels (its left half background, the rest unknown or fg)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8)).save(folder / f"{name}.png")
    trimap = np.full((h, w), 128 if unknown else 255, np.uint8)
    trimap[:, : w // 2] = 0
    Image.fromarray(trimap).save(folder / f"{name}_t.png")
    return folder / f"{name}.png", folder / f"{name}_t.png"


def _predict(checkpoint, image, trimap, out, *more):
    return main(["predict", "--checkpoint", str(checkpoint), "--image", str(image), "--trimap", str(trimap),
                 "--out", str(out), "--device", "cpu", *more])


# ---- D12: degenerate shapes in the figure ------------------------------------------------------------
@pytest.mark.parametrize("shape", [(1, 1), (1, 2), (2, 1), (1, 5000), (5000, 1), (2, 3000), (3, 3)])
def test_figures_of_degenerate_shapes_are_drawn_without_a_warning(shape):
    h, w = shape
    rng = np.random.default_rng(0)
    image, alpha = rng.random((h, w, 3), dtype=np.float32), rng.random((h, w), dtype=np.float32)
    trimap = np.full((h, w), 128, np.uint8)
    trimap[:, : w // 2] = 0
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "no contour levels", no collapsed layout
        fig = side_by_side(image, alpha, buffer, trimap=trimap, gt=alpha)
    assert [ax.get_title() for ax in fig.axes][:3] == ["Image", "Predicted alpha", "Masked image"]
    with Image.open(io.BytesIO(buffer.getvalue())) as im:
        fw, fh = im.size
    assert fw >= 2 * fh and fw * fh < 5e6  # a wide row, never a figure metres long
    # each panel shows something: the image panel's content is not blank
    panel = np.asarray(fig.axes[0].get_images()[0].get_array())
    assert panel.size > 0 and np.isfinite(panel).all()


def test_an_unknown_band_thinner_than_a_display_block_draws_no_outline():
    """A contour exists only when the shrunk unknown region crosses 0.5: nothing to outline, no legend."""
    image = np.zeros((4000, 40, 3), np.float32)
    trimap = np.zeros((4000, 40), np.uint8)
    trimap[:, 0] = 128  # one column: averaged away at a display scale of 5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = side_by_side(image, np.zeros((4000, 40), np.float32), trimap=trimap)
    assert fig.axes[0].get_legend() is None


@pytest.mark.parametrize("shape", [(1, 1), (1, 2000), (2000, 1)])
def test_predict_figure_of_degenerate_images_writes_every_output(tmp_path, tiny_checkpoint, shape, capsys):
    image, trimap = _pair(tmp_path, "x", *shape)
    out = tmp_path / "out"
    rc = _predict(tiny_checkpoint, image, trimap, out, "--figure")
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert sorted(p.name for p in out.iterdir()) == ["x_alpha.png", "x_cutout.png", "x_figure.png"]
    with Image.open(out / "x_alpha.png") as im:
        assert im.size == (shape[1], shape[0])


def test_an_image_whose_figure_fails_gets_no_outputs(tmp_path, tiny_checkpoint, monkeypatch, capsys):
    from deepmatting import visualize

    def broken(*args, **kwargs):
        raise ValueError("cannot draw this")

    monkeypatch.setattr(visualize, "side_by_side", broken)
    image, trimap = _pair(tmp_path, "x", 20, 30)
    out = tmp_path / "out"
    rc = _predict(tiny_checkpoint, image, trimap, out, "--figure")
    captured = capsys.readouterr()
    assert rc == 1
    assert "x.png: cannot draw this" in captured.err and "0 of 1 image" in captured.out
    assert list(out.iterdir()) == []  # reported as failed, and nothing written for it


def test_a_failed_later_write_removes_the_image_s_earlier_outputs(tmp_path, tiny_checkpoint, monkeypatch,
                                                                   capsys):
    from deepmatting import atomic

    def full_disk(path, write):
        raise atomic.WriteError(f"cannot write {path}: no space left on the device; nothing was written")

    monkeypatch.setattr(atomic, "atomic_write", full_disk)  # the figure is written last, through it
    image, trimap = _pair(tmp_path, "x", 20, 30)
    out = tmp_path / "out"
    rc = _predict(tiny_checkpoint, image, trimap, out, "--figure")
    err = capsys.readouterr().err
    assert rc == 1
    assert "x_figure.png: no space left" in err and "were removed: x_alpha.png, x_cutout.png" in err
    assert list(out.iterdir()) == []


# ---- D13 / D20: numeric options --------------------------------------------------------------------------
@pytest.mark.parametrize("argv, option", [
    (["predict", "--max-megapixels", "inf"], "--max-megapixels"),
    (["predict", "--max-megapixels", "nan"], "--max-megapixels"),
    (["predict", "--max-megapixels", "0"], "--max-megapixels"),
    (["predict", "--max-megapixels", "-3"], "--max-megapixels"),
    (["predict", "--mask-band", "-5"], "--mask-band"),
    (["predict", "--mask-band", "nan"], "--mask-band"),
    (["predict", "--mask-band", "inf"], "--mask-band"),
    (["predict", "--mask-band", "255"], "--mask-band"),
    (["predict", "--tile-size", "8"], "--tile-size"),
    (["export", "--opset", "99"], "--opset"),
    (["export", "--opset", "10"], "--opset"),
    (["evaluate", "--data", "d", "--trimap-width", "-1"], "--trimap-width"),
    (["evaluate", "--data", "d", "--trimap-width", "300"], "--trimap-width"),
])
def test_out_of_range_options_are_usage_errors_naming_the_option(tmp_path, argv, option, capsys):
    required = {"predict": ["--image", "i.png", "--trimap", "t.png", "--out", str(tmp_path / "o")],
                "export": ["--out", str(tmp_path / "m.onnx")], "evaluate": []}[argv[0]]
    with pytest.raises(SystemExit) as exit_:
        main([*argv, *required])
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert f"argument {option}: '{argv[-1]}': must be" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists() and not (tmp_path / "m.onnx").exists()


def test_the_opset_range_is_the_exporter_s(tmp_path):
    from deepmatting.export import MAX_OPSET, MIN_OPSET, export_onnx

    assert MIN_OPSET < MAX_OPSET <= 30
    with pytest.raises(ValueError, match=f"opsets {MIN_OPSET} to {MAX_OPSET}"):
        export_onnx(DeepMatting(width=0.25), tmp_path / "never.onnx", opset=MAX_OPSET + 1)
    assert not (tmp_path / "never.onnx").exists()


# ---- D19 / K13: the output path is checked before the work ----------------------------------------------
def test_evaluate_json_to_an_unwritable_place_fails_before_evaluating(tmp_path, monkeypatch, capsys):
    from deepmatting import evaluate as evaluation

    def never(*args, **kwargs):
        raise AssertionError("the evaluation ran")

    monkeypatch.setattr(evaluation, "score_methods", never)
    (tmp_path / "file").write_text("a file, not a folder")
    rc = main(["evaluate", "--data", str(tmp_path / "no-data"), "--json", str(tmp_path / "file" / "x.json")])
    captured = capsys.readouterr()
    assert rc == 2 and captured.out == ""
    target, blocker = tmp_path / "file" / "x.json", tmp_path / "file"
    assert captured.err == (f"deepmatting evaluate: error: cannot write {target}: {blocker} is a file, not a "
                            "folder\n")


def test_evaluate_json_is_written_atomically(tmp_path, tiny_checkpoint, monkeypatch):
    from deepmatting import atomic
    from deepmatting.evaluate import evaluate

    for sub in ("images", "masks"):
        (tmp_path / "d" / sub).mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((24, 32, 3)) * 255).astype(np.uint8)).save(tmp_path / "d/images/a.png")
    alpha = np.zeros((24, 32), np.uint8)
    alpha[6:18, 8:24] = 255
    Image.fromarray(alpha).save(tmp_path / "d/masks/a.png")
    writes = []
    real = atomic.atomic_write
    monkeypatch.setattr(atomic, "atomic_write", lambda path, write: writes.append(path) or real(path, write))
    report = evaluate(tmp_path / "d", tiny_checkpoint, device="cpu", json_path=tmp_path / "r.json",
                      progress=False, printer=lambda line: None)
    assert writes == [tmp_path / "r.json"]
    assert json.loads((tmp_path / "r.json").read_text())["mean"] == report["mean"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left


@pytest.mark.parametrize("kind", ["folder", "under a file", "unwritable"])
def test_export_out_is_checked_before_the_export(tmp_path, tiny_checkpoint, monkeypatch, capsys, kind):
    from deepmatting import export as export_module

    def never(*args, **kwargs):
        raise AssertionError("the export ran")

    monkeypatch.setattr(export_module, "export_onnx", never)
    (tmp_path / "file").write_text("x")
    out = {"folder": tmp_path, "under a file": tmp_path / "file" / "m.onnx",
           "unwritable": "/proc/deepmatting-test/m.onnx"}[kind]
    rc = main(["export", "--checkpoint", str(tiny_checkpoint), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith(f"deepmatting export: error: cannot write {out}: ")
    assert {"folder": "it is a folder", "under a file": "is a file, not a folder",
            "unwritable": "nothing was written and nothing was run"}[kind] in err


# ---- D18: folder entries that are not images --------------------------------------------------------------
def test_folder_mode_reports_links_loops_folders_and_other_files(tmp_path, tiny_checkpoint, capsys):
    images, trimaps, out = tmp_path / "images", tmp_path / "trimaps", tmp_path / "out"
    for name in ("a", "b"):
        image, trimap = _pair(tmp_path / "src", name, 16, 20)
        images.mkdir(exist_ok=True), trimaps.mkdir(exist_ok=True)
        image.rename(images / f"{name}.png"), trimap.rename(trimaps / f"{name}.png")
    (trimaps / "b.png").unlink()
    (trimaps / "b.png").symlink_to("nowhere.png")  # b's trimap is a dangling link
    (images / "dangling.png").symlink_to("gone.png")
    (images / "loop1.png").symlink_to("loop2.png")
    (images / "loop2.png").symlink_to("loop1.png")
    (images / "here").symlink_to(".")  # a link to its own folder
    (images / "notes.txt").write_text("not an image")
    rc = _predict(tiny_checkpoint, images, trimaps, out)
    captured = capsys.readouterr()
    assert rc == 1  # four image names were not matted
    assert (f"note: {images}: left out 2 entries that are not image files: here/, notes.txt" in captured.err)
    for line in ("dangling.png: skipped: a broken symbolic link (to gone.png)",
                 "loop1.png: skipped: a symbolic link loop", "loop2.png: skipped: a symbolic link loop",
                 f"b.png: skipped: its match {trimaps / 'b.png'} is a broken symbolic link (to nowhere.png)"):
        assert line in captured.err
    assert "1 of 5 images" in captured.out
    assert sorted(p.name for p in out.iterdir()) == ["a_alpha.png", "a_cutout.png"]


# ---- D8: the ONNX cache is verified, not trusted by its name ---------------------------------------------
onnx_extra = pytest.mark.skipif(
    any(__import__("importlib").util.find_spec(m) is None for m in ("onnx", "onnxruntime")),
    reason="the onnx extra is not installed")


@pytest.fixture
def shipped_tiny(tmp_path, monkeypatch, ship):
    """A tiny model shipped as the default quality, run by onnxruntime from a cache in ``tmp_path``.

    Yields ``(load, model, cache)``: ``load()`` is a new process's ``load_backend()`` (the cache of shipped
    backends is cleared first)."""
    from deepmatting import backends

    torch.manual_seed(0)
    path = tmp_path / "shipped.pt"
    DeepMatting(width=0.25).save(path)
    cache = tmp_path / "cache"
    monkeypatch.setenv("DEEPMATTING_CACHE", str(cache))
    monkeypatch.delenv("DEEPMATTING_RUNTIME")

    def load(**kwargs):
        backends._shipped_backend.cache_clear()
        return backends.load_backend(device="cpu", **kwargs)

    with ship({DEFAULT_QUALITY: path}):
        yield load, DeepMatting.from_checkpoint(path), cache


def _inputs():
    rng = np.random.default_rng(1)
    return (rng.random((1, 3, 40, 52), dtype=np.float32),
            (rng.integers(0, 3, (1, 1, 40, 52)) / 2).astype(np.float32))


def _torch_alpha(model):
    with torch.no_grad():
        return model.eval()(*(torch.from_numpy(a) for a in _inputs())).numpy()


@onnx_extra
def test_the_cache_records_the_weights_digest_and_reuses_a_good_file(shipped_tiny, capsys):
    from deepmatting.backends import OnnxBackend
    from deepmatting.onnx_graph import META_WEIGHTS, weights_digest

    load, model, cache = shipped_tiny
    backend = load()
    assert isinstance(backend, OnnxBackend)
    (path,) = cache.glob("*.onnx")
    assert backend.metadata[META_WEIGHTS] == weights_digest(model)
    assert path.name == f"{model.config.arch}-{weights_digest(model)[:16]}.onnx"
    before = path.stat().st_mtime_ns
    assert isinstance(load(), OnnxBackend) and path.stat().st_mtime_ns == before  # reused, not exported
    assert capsys.readouterr().err == ""  # a good cache says nothing


@onnx_extra
def test_a_truncated_cache_file_is_exported_again_with_a_note(shipped_tiny, capsys):
    from deepmatting.backends import OnnxBackend

    load, model, cache = shipped_tiny
    load()
    (path,) = cache.glob("*.onnx")
    size = path.stat().st_size
    path.write_bytes(path.read_bytes()[: size // 3])  # a crash or a full disk of an older version
    capsys.readouterr()
    backend = load()
    err = capsys.readouterr().err
    assert isinstance(backend, OnnxBackend)  # onnxruntime again, not a silent PyTorch fallback
    assert err.count("\n") == 1
    assert err.startswith(f"deepmatting: the cached ONNX model {path} cannot be loaded (")
    assert err.rstrip().endswith("; exporting the model again")
    assert path.stat().st_size == size
    assert np.abs(backend(*_inputs()) - _torch_alpha(model)).max() < 1e-4
    load()
    assert capsys.readouterr().err == ""  # repaired for good


@onnx_extra
def test_another_model_planted_under_the_cache_name_never_runs(shipped_tiny, capsys):
    from deepmatting.export import export_onnx

    load, model, cache = shipped_tiny
    load()
    (path,) = cache.glob("*.onnx")
    torch.manual_seed(1)
    other = DeepMatting(width=0.25)
    export_onnx(other, path)  # a valid deepmatting ONNX, of other weights
    assert np.abs(_torch_alpha(other) - _torch_alpha(model)).max() > 1e-3  # they differ: the test can fail
    capsys.readouterr()
    backend = load()
    err = capsys.readouterr().err
    assert f"the cached ONNX model {path} holds other weights (a light-unet model with the digest" in err
    assert np.abs(backend(*_inputs()) - _torch_alpha(model)).max() < 1e-4  # the shipped model runs


@onnx_extra
def test_a_cache_file_without_a_digest_is_exported_again(shipped_tiny, capsys):
    import onnx

    from deepmatting.onnx_graph import META_WEIGHTS

    load, model, cache = shipped_tiny
    load()
    (path,) = cache.glob("*.onnx")
    proto = onnx.load(str(path))
    kept = [p for p in proto.metadata_props if p.key != META_WEIGHTS]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    onnx.save(proto, str(path))  # as an older deepmatting wrote it
    capsys.readouterr()
    assert load().metadata[META_WEIGHTS]
    assert "records no weights digest" in capsys.readouterr().err


@onnx_extra
@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="chown needs root")
def test_a_cache_file_of_another_user_is_not_trusted(shipped_tiny, capsys):
    load, model, cache = shipped_tiny
    load()
    (path,) = cache.glob("*.onnx")
    os.chown(path, 4321, 4321)  # planted by another user in a shared cache, with the right digest even
    capsys.readouterr()
    load()
    assert f"the cached ONNX model {path} belongs to another user (uid 4321)" in capsys.readouterr().err
    assert path.stat().st_uid == os.getuid()


@onnx_extra
def test_a_cache_that_is_a_file_falls_back_to_pytorch_saying_why(shipped_tiny, monkeypatch, capsys):
    from deepmatting.backends import TorchBackend

    load, model, cache = shipped_tiny
    cache.write_text("not a folder")
    backend = load()
    assert isinstance(backend, TorchBackend)
    assert capsys.readouterr().err == (f"deepmatting: the ONNX cache folder {cache} (DEEPMATTING_CACHE) is a "
                                       f"file, not a folder; running the {DEFAULT_QUALITY} model in PyTorch "
                                       "instead (slower)\n")
    with pytest.raises(CheckpointError, match=r"\(DEEPMATTING_CACHE\) is a file, not a folder"):
        load(runtime="onnxruntime")
