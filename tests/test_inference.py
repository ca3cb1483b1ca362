"""predict(): any size, tiling (exact with a per-pixel stub, seamless with a real model), known regions,
masks, the three model forms, backends, and input validation."""


import numpy as np
import pytest
import torch
from PIL import Image

from deepmatting import DeepMatting, backends, data
from deepmatting import inference as inf
from deepmatting.backends import TorchBackend, load_backend
from deepmatting.checkpoint import DEFAULT_QUALITY, CheckpointError
from deepmatting.data.trimap import trimap_from_mask
from deepmatting.inference import predict, tile_starts
from deepmatting.tensors import trimap_to_float

pytestmark = pytest.mark.usefixtures("one_thread")


def _inputs(h, w, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.random((h, w, 3), dtype=np.float32)
    trimap = np.full((h, w), 128, np.uint8)
    trimap[: h // 3] = 0
    trimap[h - h // 3:] = 255
    return image, trimap


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return DeepMatting().eval()


class StubBackend:
    """A per-pixel function of image and trimap: tiling must reproduce it exactly. Records every call."""

    pad_multiple = 32
    input = "trimap"

    def __init__(self):
        self.shapes = []

    def __call__(self, image, trimap):
        assert image.dtype == np.float32 and trimap.dtype == np.float32
        assert image.shape[1] == 3 and trimap.shape[1] == 1 and image.shape[2:] == trimap.shape[2:]
        self.shapes.append(image.shape[2:])
        return (0.2 * image[:, :1] + 0.5 * image[:, 1:2] * image[:, 2:] + 0.3 * trimap).astype(np.float32)


def _check_known(alpha, trimap):
    assert (alpha[trimap == 0] == 0).all() and (alpha[trimap == 255] == 1).all()
    assert alpha.dtype == np.float32 and alpha.min() >= 0 and alpha.max() <= 1


@pytest.mark.parametrize("size", [(1, 1), (37, 53), (97, 131), (5, 200)])
def test_any_size_same_size_out_known_regions_exact(model, size):
    image, trimap = _inputs(*size)
    alpha = predict(image, trimap, model=model)
    assert alpha.shape == size
    _check_known(alpha, trimap)


def test_tile_starts_cover_align_and_overlap():
    for length in (1, 255, 256, 257, 700, 900, 4000):
        for tile, overlap in ((256, 64), (1024, 64), (96, 40)):
            starts = tile_starts(length, tile, overlap, 32)
            assert starts[0] == 0 and all(s % 32 == 0 for s in starts)
            assert min(starts[-1] + tile, length) == length  # the last tile reaches the end
            if len(starts) > 1:
                assert length - starts[-1] > tile - 32  # ... and is nearly full
            gaps = np.diff(starts)
            assert (gaps > 0).all() and (tile - gaps >= overlap).all()


def test_tiling_reproduces_a_per_pixel_backend_exactly():
    image, trimap = _inputs(700, 900)
    trimap[:, :450] = 0  # a fully known left half: its tiles are never run
    whole, tiled = StubBackend(), StubBackend()
    a = predict(image, trimap, backend=whole, tile_size=4096)
    b = predict(image, trimap, backend=tiled, tile_size=256, tile_overlap=64)
    assert whole.shapes == [(700, 900)]
    assert max(max(s) for s in tiled.shapes) <= 256  # memory is bounded by the tile
    assert len(tiled.shapes) < len(tile_starts(700, 256, 64, 32)) * len(tile_starts(900, 256, 64, 32))
    assert b.shape == (700, 900)
    _check_known(b, trimap)
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_tiles_blend_without_seams(model):
    image, trimap = _inputs(300, 420, seed=1)
    whole = predict(image, trimap, model=model, tile_size=1024)
    tiled = predict(image, trimap, model=model, tile_size=128, tile_overlap=32)
    _check_known(tiled, trimap)
    unknown = trimap == 128
    diff = np.abs(whole - tiled)[unknown]
    assert diff.max() < 0.02 and diff.mean() < 2e-3
    # no step along tile borders: the column-to-column change there is like anywhere else
    steps = np.abs(np.diff(tiled, axis=1))[unknown[:, 1:]].reshape(-1)
    assert steps.max() < 5 * np.abs(np.diff(whole, axis=1))[unknown[:, 1:]].max() + 1e-3


def test_all_known_trimap_needs_no_model_run():
    image, trimap = _inputs(64, 64)
    trimap[trimap == 128] = 255
    stub = StubBackend()
    alpha = predict(image, trimap, backend=stub)
    assert stub.shapes == []
    np.testing.assert_array_equal(alpha, trimap / 255)


def test_mask_becomes_a_trimap_with_the_given_band():
    image, _ = _inputs(80, 120)
    mask = np.zeros((80, 120), np.float32)
    mask[20:60, 30:90] = 0.97  # nearly sure: thresholded at 0.5, not soft
    expected = trimap_from_mask(mask, 7)
    alpha = predict(image, mask=mask, backend=StubBackend(), mask_band=7)
    _check_known(alpha, expected)
    unknown = expected == 128  # the stub's value at trimap 0.5, pixel by pixel
    stub = StubBackend()(image.transpose(2, 0, 1)[None], np.full((1, 1, 80, 120), 0.5, np.float32))[0, 0]
    np.testing.assert_allclose(alpha[unknown], np.clip(stub, 0, 1)[unknown], atol=1e-6)
    # uint8 and bool masks give the same trimap
    for m in ((mask > 0.5).astype(np.uint8) * 255, mask > 0.5):
        np.testing.assert_array_equal(predict(image, mask=m, backend=StubBackend(), mask_band=7), alpha)
    # the default band: 2% of the subject's size (a 40x60 box: 55 px across), at least 5 px
    _check_known(predict(image, mask=mask, backend=StubBackend()), trimap_from_mask(mask, 5))


def test_coarse_masks_from_segmenters_are_cleaned_and_their_doubt_kept():
    from deepmatting.data.trimap import coarse_mask_band

    mask = np.zeros((200, 300), np.float32)
    yy, xx = np.mgrid[:200, :300]
    mask[(yy - 100) ** 2 + (xx - 150) ** 2 < 70**2] = 1.0  # a 140 px subject
    mask[95:100, 150:154] = 0.0  # a pin-hole inside it
    mask[10:12, 10:12] = 1.0  # a speck far away
    d2 = (yy - 100) ** 2 + (xx - 150) ** 2
    mask[(d2 > 66**2) & (d2 < 70**2)] = 0.5  # soft near its edge: the segmenter's doubt
    trimap = inf.mask_to_trimap(mask)
    assert coarse_mask_band(mask > 0.5) == 5  # 2% of ~132 px, at least 5
    assert trimap[97, 152] == 255  # the hole is filled: no ring of unknown inside the subject
    assert (trimap[:40, :40] == 0).all()  # the speck is dropped: no ring around it
    soft = (mask > 0.05) & (mask < 0.95)
    assert (trimap[soft] == 128).all()
    assert coarse_mask_band(np.ones((2000, 2000), bool)) == 45
    assert coarse_mask_band(np.ones((5000, 5000), bool)) == 113


def test_model_forms_instance_checkpoint_and_default(model, tmp_path, ship):
    image, trimap = _inputs(45, 70)
    path = tmp_path / "m.pt"
    model.save(path)
    a = predict(image, trimap, model=model)
    np.testing.assert_allclose(predict(image, trimap, model=path), a, atol=1e-6)
    np.testing.assert_allclose(predict(image, trimap, model=str(path)), a, atol=1e-6)

    with ship({}), pytest.raises(CheckpointError, match="no default model ships"):
        predict(image, trimap)
    with ship({DEFAULT_QUALITY: path}):
        np.testing.assert_allclose(predict(image, trimap), a, atol=1e-6)
        assert backends.load_backend() is backends.load_backend()  # cached: loaded and prepared once


def test_training_mode_is_restored(model):
    image, trimap = _inputs(40, 40)
    model.train()
    try:
        predict(image, trimap, model=model)
        assert model.training
    finally:
        model.eval()


def test_mask_model_reads_the_mask_directly():
    torch.manual_seed(0)
    mask_model = DeepMatting(input="mask").eval()
    image, trimap = _inputs(50, 64)
    mask = (trimap > 0).astype(np.float32)
    alpha = predict(image, mask=mask, model=mask_model)
    assert alpha.shape == (50, 64) and alpha.dtype == np.float32
    with pytest.raises(ValueError, match="pass mask="):
        predict(image, trimap, model=mask_model)


def test_pil_and_uint8_images_match_float(model):
    image, trimap = _inputs(33, 47)
    u8 = np.round(image * 255).astype(np.uint8)
    a = predict(u8.astype(np.float32) / 255, trimap, model=model)
    np.testing.assert_allclose(predict(u8, trimap, model=model), a, atol=1e-6)
    np.testing.assert_allclose(predict(Image.fromarray(u8), trimap, model=model), a, atol=1e-6)
    rgba = Image.fromarray(np.dstack([u8, np.full(u8.shape[:2], 7, np.uint8)]), mode="RGBA")
    np.testing.assert_allclose(predict(rgba, trimap, model=model), a, atol=1e-6)
    gray = Image.fromarray(u8[:, :, 0])
    assert data.as_image(gray).shape == (33, 47, 3)
    sixteen = Image.fromarray(u8[:, :, 0].astype(np.uint16) * 257)
    np.testing.assert_allclose(data.as_image(sixteen), data.as_image(gray), atol=1e-6)
    # float {0, 0.5, 1} trimaps equal uint8 ones
    as_float = np.where(trimap == 128, 0.5, trimap / 255)
    np.testing.assert_array_equal(data.as_trimap(as_float), trimap)


def test_input_validation():
    image, trimap = _inputs(30, 40)
    stub = StubBackend()
    with pytest.raises(ValueError, match=r"30x40.*29x40"):
        predict(image, trimap[:29], backend=stub)
    with pytest.raises(ValueError, match=r"a trimap .* or a coarse mask .* is needed"):
        predict(image, backend=stub)
    with pytest.raises(ValueError, match="not both"):
        predict(image, trimap, mask=trimap, backend=stub)
    with pytest.raises(ValueError, match=r"0\.\.1"):
        predict(image * 255, trimap, backend=stub)
    with pytest.raises(ValueError, match="HxWx3"):
        predict(image[:, :, :2], trimap, backend=stub)
    with pytest.raises(ValueError, match="unsupported pixel type"):
        predict(image.astype(np.int64), trimap, backend=stub)
    bad = trimap.copy()
    bad[0, 0] = 77
    with pytest.raises(ValueError, match=r"found 77.*0/128/255"):
        predict(image, bad, backend=stub)
    with pytest.raises(ValueError, match="NaN"):
        predict(np.full_like(image, np.nan), trimap, backend=stub)
    with pytest.raises(ValueError, match="mask"):
        predict(image, mask=np.full((30, 40), 2.0), backend=stub)
    with pytest.raises(ValueError, match="or a backend, not both"):
        predict(image, trimap, model="x.pt", backend=stub)
    with pytest.raises(ValueError, match="not both"):
        load_backend("a.pt", onnx="a.onnx")


def test_torch_backend_protocol_and_bf16(model):
    backend = TorchBackend(model, device="cpu")
    assert isinstance(backend, backends.Backend) and backend.pad_multiple == 32 and backend.input == "trimap"
    image, trimap = _inputs(40, 56)
    x = np.ascontiguousarray(image.transpose(2, 0, 1)[None])
    t = trimap_to_float(trimap)[None, None]
    out = backend(x, t)
    assert out.shape == (1, 1, 40, 56) and out.dtype == np.float32
    bf16 = TorchBackend(model, device="cpu", amp=True)(x, t)
    assert bf16.dtype == np.float32 and np.abs(bf16 - out).max() < 0.05


def test_a_refining_model_is_given_the_closed_form_matte():
    from deepmatting.closed_form import closed_form_alpha

    image, trimap = _inputs(48, 64)
    model = DeepMatting("effnet-cf", pretrained_encoder=False)
    model.weights_source = "test"  # untrained on purpose: it starts as its prior
    alpha = predict(image, trimap, model=model)
    expected = np.clip(closed_form_alpha(image, trimap), 1e-3, 1 - 1e-3)
    unknown = trimap == 128
    np.testing.assert_allclose(alpha[unknown], expected[unknown], atol=1e-5)


def test_quality_chooses_among_the_shipped_models(ship, tiny_best_checkpoint):
    with ship({"best": tiny_best_checkpoint}):  # a build that ships only the best model
        best = load_backend(quality="best", device="cpu")
        assert best.prior == "closed-form" and best.source == "the shipped best model"
        with pytest.raises(CheckpointError, match="no fast-quality model ships"):
            load_backend(quality="fast")
        with pytest.raises(ValueError, match="a quality or a model, not both"):
            load_backend(tiny_best_checkpoint, quality="best")


def test_an_all_unknown_trimap_gives_a_refining_model_a_neutral_prior():
    from deepmatting.data import classical_matte

    image, trimap = _inputs(24, 32)
    trimap[:] = 128
    assert (classical_matte("closed-form", image, trimap) == 0.5).all()


def test_thin_bands_get_smaller_tiles_that_run_fewer_pixels():
    from deepmatting.inference import tile_side

    h, w = 1500, 2000
    yy, xx = np.ogrid[:h, :w]
    ring = np.abs(np.hypot(yy - 750, xx - 1000) - 500) < 20  # a thin unknown band around a subject
    assert tile_side(h, w, 1024, 64, 32, ring) == 512
    assert tile_side(h, w, 1024, 64, 32, np.ones((h, w), bool)) == 1024  # all unknown: the largest
    assert tile_side(800, 600, 1024, 64, 32, ring[:800, :600]) == 1024  # small images run whole


def test_large_images_get_their_prior_solved_smaller(monkeypatch):
    from deepmatting.data import prior_pool

    image, trimap = _inputs(64, 96)
    full = prior_pool.classical_matte("closed-form", image, trimap)
    monkeypatch.setattr(prior_pool, "PRIOR_MAX_PIXELS", 64 * 96 // 4)  # solve at half the side
    half = prior_pool.classical_matte("closed-form", image, trimap)
    assert half.shape == full.shape and half.dtype == np.float32
    _check_known(half, trimap)
    assert np.abs(half - full)[trimap == 128].mean() < 0.1  # the same matte, at lower detail


def _saturated_photo(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """A uint8 photo that is mostly pure white (255, as over-exposed skies are) with dark noise on the left,
    and a trimap with a thin unknown band down the middle."""
    image = np.full((h, w, 3), 255, np.uint8)
    image[:, : w // 2] = np.random.default_rng(0).integers(0, 80, (h, w // 2, 3), dtype=np.uint8)
    image[::7, ::5] = 0
    trimap = np.zeros((h, w), np.uint8)
    trimap[:, w // 2:] = 255
    trimap[:, w // 2 - 24: w // 2 + 24] = 128
    return image, trimap


def test_a_large_saturated_photo_has_its_prior_solved_smaller_without_a_range_error():
    from deepmatting.data import classical_matte

    image, trimap = _saturated_photo(3000, 4000)  # 12 MP: the prior is solved at 1 MP, resampled
    alpha = classical_matte("closed-form", image.astype(np.float32) / 255, trimap)
    assert alpha.shape == (3000, 4000) and 0 <= alpha.min() and alpha.max() <= 1
    _check_known(alpha, trimap)


@pytest.mark.parametrize("quality", ["fast", "best", "fusion"])
def test_every_quality_predicts_a_large_saturated_photo(quality, ship, tiny_checkpoint, tiny_best_checkpoint,
                                                         tiny_fusion_checkpoint, one_thread):
    image, trimap = _saturated_photo(3000, 4000)
    with ship({"fast": tiny_checkpoint, "best": tiny_best_checkpoint, "fusion": tiny_fusion_checkpoint}):
        alpha = predict(image, trimap, quality=quality)
    assert alpha.shape == (3000, 4000) and np.isfinite(alpha).all()
    _check_known(alpha, trimap)


def test_resampling_stays_within_the_input_range():
    from deepmatting.data.transforms import resize_array

    image = np.ones((997, 1301, 3), np.float32)
    image[::3, ::2] = 0.0  # sharp edges: antialiased resampling rings past 1 by a rounding error
    small = resize_array(image, (211, 333))
    assert small.min() >= 0.0 and small.max() <= 1.0


def test_the_closed_form_range_check_names_the_real_range():
    from deepmatting.closed_form import closed_form_alpha

    image, trimap = _inputs(24, 32)
    bad = image.astype(np.float64) * 1.5
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\].*1\.4"):
        closed_form_alpha(bad, trimap)
    nearly = image.astype(np.float64)
    nearly[0, 0] = 1 + 1e-6  # a resampling rounding error is clipped, not refused
    assert closed_form_alpha(nearly, trimap).shape == (24, 32)
