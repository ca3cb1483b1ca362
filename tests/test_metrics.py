"""deepmatting.metrics: hand-computed cases, MATLAB details, properties, edge cases, the naive reference."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from deepmatting import metrics
from deepmatting.metrics import (
    MetricAccumulator,
    connectivity_error,
    evaluate_all,
    gradient_error,
    mse_score,
    sad_score,
)

_REF_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "reference_metrics.py"
_spec = importlib.util.spec_from_file_location("reference_metrics", _REF_PATH)
ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ref)

GOLDEN = Path(__file__).resolve().parent / "data" / "metrics_golden"  # see its README.md
FUNCTIONS = {"sad": sad_score, "mse": mse_score, "grad": gradient_error, "conn": connectivity_error}


def _close(a: float, b: float, rel: float = 1e-6, abs_: float = 1e-12) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= max(rel * abs(b), abs_)


def _random_case(rng: np.random.Generator, kind: str, shape: tuple[int, int]):
    if kind == "uint8":
        return rng.integers(0, 256, shape, dtype=np.uint8), rng.integers(0, 256, shape, dtype=np.uint8)
    if kind == "levels":  # many values right on the thresholds, many equal-sized components
        levels = np.round(np.arange(11) * 25.5).astype(np.uint8)
        return rng.choice(levels, shape), rng.choice(levels, shape)
    if kind == "float":
        return rng.random(shape, dtype=np.float32), rng.integers(0, 11, shape) / 10.0
    edge = np.array([0.0, 0.1, 0.2, 0.3, 0.6, 0.7, 0.9, 1.0])  # float32 0.7 and 0.9 lie below 0.7 and 0.9
    return rng.choice(edge.astype(np.float32), shape), rng.choice(edge, shape)


# --------------------------------------------------------------------------------------------------------
# Hand-computed cases
# --------------------------------------------------------------------------------------------------------


def test_sad_hand_computed():
    pred = np.array([[0, 255], [128, 64]], np.uint8)
    gt = np.zeros((2, 2), np.uint8)
    trimap = np.array([[128, 128], [0, 128]], np.uint8)  # the 128/255 pixel does not count
    expected = (0 + 1 + float(np.float32(64) / np.float32(255))) / 1000
    assert sad_score(pred, gt, trimap) == pytest.approx(expected, rel=1e-7)
    assert sad_score(pred, gt) == pytest.approx(expected + float(np.float32(128) / np.float32(255)) / 1000)


def test_mse_hand_computed():
    pred, gt = np.array([[0.5, 1.0], [0.25, 0.0]]), np.array([[0.0, 1.0], [0.0, 0.0]])
    assert mse_score(pred, gt) == pytest.approx((0.25 + 0.0625) / 4)
    trimap = np.array([[128, 255], [128, 0]], np.uint8)
    assert mse_score(pred, gt, trimap) == pytest.approx((0.25 + 0.0625) / 2)  # not scaled by 1000


def _loop_kernel(sigma: float = 1.4) -> list[list[float]]:
    """``hx`` of gaussgradient.m with the MATLAB loops, 1-based indices."""
    halfsize = math.ceil(sigma * math.sqrt(-2 * math.log(math.sqrt(2 * math.pi) * sigma * 1e-2)))
    size = 2 * halfsize + 1

    def gauss(x):
        return math.exp(-x * x / (2 * sigma * sigma)) / (sigma * math.sqrt(2 * math.pi))

    def dgauss(x):
        return -x * gauss(x) / (sigma * sigma)

    hx = [
        [gauss(i - halfsize - 1) * dgauss(j - halfsize - 1) for j in range(1, size + 1)]
        for i in range(1, size + 1)
    ]
    norm = math.sqrt(sum(v * v for row in hx for v in row))
    return [[v / norm for v in row] for row in hx]


def _loop_conv_replicate(img: list[list[float]], k: list[list[float]]) -> list[list[float]]:
    """``imfilter(img, k, 'replicate', 'conv')`` with loops: ``out(y, x) = sum k(a, b) img(y - a, x - b)``."""
    h, w, s = len(img), len(img[0]), len(k)
    c = s // 2
    out = [[0.0] * w for _ in range(h)]
    for y in range(h):
        for x in range(w):
            acc = 0.0
            for a in range(s):
                for b in range(s):
                    yy = min(max(y - (a - c), 0), h - 1)
                    xx = min(max(x - (b - c), 0), w - 1)
                    acc += k[a][b] * img[yy][xx]
            out[y][x] = acc
    return out


def _loop_mat2gray(img: list[list[float]]) -> list[list[float]]:
    lo, hi = min(map(min, img)), max(map(max, img))
    return [[(v - lo) / (hi - lo) if hi > lo else 0.0 for v in row] for row in img]


def test_gaussian_kernel_matches_matlab_loops():
    hx = np.array(_loop_kernel())
    assert hx.shape == (9, 9)
    gauss, dgauss = metrics._gaussian_derivative_kernels(1.4)
    np.testing.assert_allclose(np.outer(gauss, dgauss), hx, rtol=1e-12, atol=1e-15)


def test_gradient_hand_computed_on_5x6():
    pred = np.array(
        [[0, 10, 40, 90, 160, 200], [5, 30, 80, 150, 210, 230], [20, 60, 120, 190, 235, 240],
         [40, 90, 150, 210, 240, 250], [60, 110, 170, 220, 245, 250]],
        np.uint8,
    )  # fmt: skip
    gt = np.array(
        [[0, 0, 30, 120, 200, 220], [0, 20, 100, 180, 220, 220], [10, 60, 150, 210, 220, 220],
         [30, 100, 180, 220, 220, 220], [50, 130, 200, 220, 220, 220]],
        np.uint8,
    )  # fmt: skip
    # gt's maximum is 220, so mat2gray and a division by 255 differ.
    trimap = np.array(
        [[0, 128, 128, 128, 255, 255], [0, 0, 128, 128, 128, 255], [0, 0, 128, 128, 128, 255],
         [128, 0, 0, 128, 128, 255], [128, 128, 0, 0, 128, 128]],
        np.uint8,
    )  # fmt: skip
    hx = _loop_kernel()
    hy = [list(col) for col in zip(*hx, strict=True)]
    amps = []
    for img in (pred, gt):
        norm = _loop_mat2gray(img.astype(float).tolist())
        gx, gy = _loop_conv_replicate(norm, hx), _loop_conv_replicate(norm, hy)
        amps.append(
            [[np.float32(math.sqrt(gx[y][x] ** 2 + gy[y][x] ** 2)) for x in range(6)] for y in range(5)]
        )
        # The direction matters too: gx, gy themselves against the separable filters.
        got_x, got_y = metrics._gradient_xy(np.array(norm)[None], 0, 1.4)
        np.testing.assert_allclose(got_x[0], gx, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(got_y[0], gy, rtol=1e-12, atol=1e-12)
    expected = sum(
        float((amps[0][y][x] - amps[1][y][x]) ** 2) for y in range(5) for x in range(6) if trimap[y, x] == 128
    )
    assert gradient_error(pred, gt, trimap) == pytest.approx(expected / 1000, rel=1e-6)
    assert expected > 0


def test_gradient_uses_mat2gray_not_division_by_255():
    rng = np.random.default_rng(3)
    pred = rng.integers(0, 128, (12, 10)).astype(np.uint8) * 2
    pred[0, 0], pred[-1, -1] = 0, 254
    half = pred // 2  # mat2gray(pred) == mat2gray(pred / 2) exactly
    assert gradient_error(pred, half) == 0.0
    as_float = gradient_error(pred.astype(np.float32) / 255, half.astype(np.float32) / 255)
    assert as_float == pytest.approx(0, abs=1e-9)


def test_connectivity_hand_computed():
    # min alphas 1, 0.5, 0.5: one 3-pixel component up to 0.5, then only pixel 0. Levels 1, 0.5, 0.5.
    pred, gt = np.array([[1.0, 0.5, 1.0]]), np.array([[1.0, 1.0, 0.5]])
    # pixel 1: phi_pred = 1 - 0, phi_gt = 1 - 0.5; pixel 2: phi_pred = 0.5, phi_gt = 1.
    assert connectivity_error(pred, gt) == pytest.approx(1.0 / 1000)
    # The same levels; pixel 1 has d_pred = 0.6 - 0.5 = 0.1 < 0.15, so phi_pred = 1 = phi_gt there.
    pred, gt = np.array([[1.0, 0.6, 1.0]]), np.array([[1.0, 0.5, 0.5]])
    assert connectivity_error(pred, gt) == pytest.approx(0.5 / 1000)
    gt8 = np.array([[0, 255, 255]], np.uint8)
    assert connectivity_error(np.array([[255, 0, 255]], np.uint8), gt8) == pytest.approx(0.002)


def test_connectivity_background_is_not_a_component():
    # A 2-pixel blob (pred 0.6, gt 0.5) in a large zero background. The blob is the largest component up to
    # 0.5, so its level is 0.5, d_pred = 0.1 < 0.15 and d_gt = 0: no error. A port that lets the background
    # win gives level 0 and an error of 0.1 per blob pixel.
    pred, gt = np.zeros((6, 6)), np.zeros((6, 6))
    pred[2, 2:4], gt[2, 2:4] = 0.6, 0.5
    assert connectivity_error(pred, gt) == pytest.approx(0.0, abs=1e-12)
    pred[5, 5], gt[5, 5] = 0.6, 0.5  # a second, smaller component: it loses (error 0.1), the blob still wins
    assert connectivity_error(pred, gt) == pytest.approx(0.1 / 1000, rel=1e-6)
    assert ref.ref_conn(pred, gt) == pytest.approx(0.1 / 1000, rel=1e-6)


def _tie_case():
    """Two 2-pixel components: A at the top right, B at the bottom left (pred 0.6, gt 0.5 in both).

    Row-major order meets A first (row 0), column-major order meets B first (column 0): MATLAB picks B.
    """
    pred, gt = np.zeros((4, 4)), np.zeros((4, 4))
    a, b = (np.array([0, 1]), np.array([3, 3])), (np.array([3, 3]), np.array([0, 1]))
    for comp in (a, b):
        pred[comp], gt[comp] = 0.6, 0.5
    return pred, gt, a, b


def test_connectivity_ties_go_to_the_first_component_in_column_major_order():
    pred, gt, a, b = _tie_case()
    only_a, only_b = np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.uint8)
    only_a[a], only_b[b] = 128, 128
    # B wins: its level is 0.5 and it has no error; A loses: level 0, error |0.4 - 0.5| per pixel.
    assert connectivity_error(pred, gt, only_b) == pytest.approx(0.0, abs=1e-12)
    assert connectivity_error(pred, gt, only_a) == pytest.approx(0.2 / 1000, rel=1e-6)
    # Transposed, A is met first in column-major order and wins.
    assert connectivity_error(pred.T, gt.T, only_a.T) == pytest.approx(0.0, abs=1e-12)
    assert connectivity_error(pred.T, gt.T, only_b.T) == pytest.approx(0.2 / 1000, rel=1e-6)


def test_connectivity_components_outside_the_unknown_region_count():
    # A large blob outside the unknown region makes the small unknown blob lose at every threshold.
    pred, gt = np.zeros((6, 8)), np.zeros((6, 8))
    pred[0:3, 0:3], gt[0:3, 0:3] = 0.6, 0.5  # 9 pixels, known region
    pred[5, 6:8], gt[5, 6:8] = 0.6, 0.5  # 2 pixels, unknown region
    trimap = np.zeros((6, 8), np.uint8)
    trimap[4:, 5:] = 128
    assert connectivity_error(pred, gt, trimap) == pytest.approx(0.2 / 1000, rel=1e-6)
    pred[0:3, 0:3] = gt[0:3, 0:3] = 0.0  # without it the unknown blob is the largest component
    assert connectivity_error(pred, gt, trimap) == pytest.approx(0.0, abs=1e-12)


# --------------------------------------------------------------------------------------------------------
# MATLAB details
# --------------------------------------------------------------------------------------------------------


def test_thresholds_are_built_like_matlabs_colon_operator():
    t = metrics._matlab_colon(0.0, 0.1, 1.0)
    assert len(t) == 11 and t[0] == 0.0 and t[-1] == 1.0
    # MATLAB: a = 0:.1:1; a(4) - .3 is 5.5511e-17, because the first half is built as a + k*d ...
    assert t[3] == 3 * 0.1 and t[3] - 0.3 == pytest.approx(5.5511e-17, rel=1e-4)
    # ... and the second half as b - k*d, which gives 0.6 and 0.7 exactly, unlike numpy.
    assert t[6] == 0.6 and t[7] == 0.7 and t[8] == 0.8 and t[9] == 0.9
    arange = np.arange(0, 1.1, 0.1)
    assert arange[6] != 0.6 and arange[7] != 0.7
    assert list(t) == ref.matlab_colon(0.0, 0.1, 1.0)
    np.testing.assert_array_equal(metrics._matlab_colon(0.0, 0.25, 1.0), [0, 0.25, 0.5, 0.75, 1])
    assert len(metrics._matlab_colon(0.0, 0.3, 1.0)) == 4  # 0, 0.3, 0.6, 0.9: the end is not forced to 1


def test_threshold_comparisons_are_exact():
    # float32(0.7) < 0.7, so a float32 alpha of 0.7 does not reach the double threshold 0.7.
    assert float(np.float32(0.7)) < 0.7
    assert metrics._smallest_at_least(0.7, np.dtype(np.float32)) > np.float32(0.7)
    assert metrics._smallest_at_least(0.5, np.dtype(np.float32)) == np.float32(0.5)
    # uint8: 25/255 < 0.1 <= 26/255, and single(51)/255 rounds up to reach 0.2.
    assert metrics._smallest_at_least(0.1, np.dtype(np.uint8)) == 26
    assert metrics._smallest_at_least(0.2, np.dtype(np.uint8)) == 51
    assert metrics._smallest_at_least(1.0, np.dtype(np.uint8)) == 255


def test_uint8_and_float_inputs_agree():
    rng = np.random.default_rng(7)
    pred8, gt8 = rng.integers(0, 256, (9, 11), dtype=np.uint8), rng.integers(0, 256, (9, 11), dtype=np.uint8)
    trimap = rng.choice(np.array([0, 128, 255], np.uint8), (9, 11))
    want = evaluate_all(pred8, gt8, trimap)
    pred32, gt32 = pred8.astype(np.float32) / np.float32(255), gt8.astype(np.float32) / np.float32(255)
    as32 = evaluate_all(pred32, gt32, trimap)
    as64 = evaluate_all(pred8 / 255.0, gt8 / 255.0, trimap)
    mixed = evaluate_all(pred8, gt8 / 255.0, trimap)
    for key in metrics.METRIC_NAMES:
        for got in (as32, as64, mixed):
            assert _close(got[key], want[key], rel=1e-5), (key, got[key], want[key])
    assert as32["sad"] == want["sad"] and as32["conn"] == want["conn"]  # the same float32 alphas


# --------------------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["uint8", "float"])
def test_identical_alphas_give_zero(kind):
    alpha, _ = _random_case(np.random.default_rng(1), kind, (13, 17))
    trimap = np.random.default_rng(2).choice(np.array([0, 128, 255], np.uint8), alpha.shape)
    assert evaluate_all(alpha, alpha, trimap) == {"sad": 0.0, "mse": 0.0, "grad": 0.0, "conn": 0.0}


def test_metrics_are_symmetric():
    rng = np.random.default_rng(4)
    pred, gt = _random_case(rng, "uint8", (10, 12))
    trimap = rng.choice(np.array([0, 128, 255], np.uint8), pred.shape)
    assert evaluate_all(pred, gt, trimap) == evaluate_all(gt, pred, trimap)


def test_only_sad_and_mse_ignore_pixels_outside_the_unknown_region():
    rng = np.random.default_rng(5)
    pred, gt = _random_case(rng, "levels", (16, 16))
    trimap = np.zeros(pred.shape, np.uint8)
    trimap[5:11, 5:11] = 128
    changed = pred.copy()
    changed[trimap != 128] = rng.integers(0, 256, int(np.sum(trimap != 128)), dtype=np.uint8)
    before, after = evaluate_all(pred, gt, trimap), evaluate_all(changed, gt, trimap)
    assert after["sad"] == before["sad"] and after["mse"] == before["mse"]
    assert after["grad"] != before["grad"]  # gradients near the border of the region see outside pixels
    # Connectivity is not local either: a large component outside the region changes omega.
    assert not np.array_equal(metrics._omega_depth(changed, gt, metrics._matlab_colon(0, 0.1, 1)),
                              metrics._omega_depth(pred, gt, metrics._matlab_colon(0, 0.1, 1)))  # fmt: skip


def test_scaling_of_sad_by_1000():
    pred, gt = np.ones((20, 50)), np.zeros((20, 50))
    assert sad_score(pred, gt) == pytest.approx(1.0)  # 1000 pixels off by 1
    assert mse_score(pred, gt) == pytest.approx(1.0)


# --------------------------------------------------------------------------------------------------------
# Edge cases
# --------------------------------------------------------------------------------------------------------


def test_no_unknown_pixel():
    pred, gt = np.zeros((4, 5), np.uint8), np.full((4, 5), 255, np.uint8)
    trimap = np.full((4, 5), 255, np.uint8)
    trimap[0] = 0
    result = evaluate_all(pred, gt, trimap)
    assert result["sad"] == 0.0 and result["grad"] == 0.0 and result["conn"] == 0.0
    assert math.isnan(result["mse"]) and math.isnan(mse_score(pred, gt, trimap))
    assert gradient_error(pred, gt, trimap) == 0.0 and connectivity_error(pred, gt, trimap) == 0.0


def test_constant_alphas():
    pred, gt = np.full((5, 7), 0.3), np.full((5, 7), 0.7)
    result = evaluate_all(pred, gt)
    assert result["grad"] == 0.0  # mat2gray of a constant image is zero
    assert result["sad"] == pytest.approx(35 * 0.4 / 1000, rel=1e-6)
    assert result["mse"] == pytest.approx(0.16, rel=1e-6)
    assert result["conn"] == pytest.approx(ref.ref_conn(pred, gt), rel=1e-6)


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1), (3, 7), (7, 3)])
def test_small_and_non_square_images(shape):
    rng = np.random.default_rng(sum(shape))
    pred, gt = _random_case(rng, "uint8", shape)
    trimap = np.full(shape, 128, np.uint8)
    got, want = evaluate_all(pred, gt, trimap), ref.ref_evaluate(pred, gt, trimap)
    for key in metrics.METRIC_NAMES:
        assert _close(got[key], want[key]), (key, got[key], want[key])
    assert all(isinstance(v, float) for v in got.values())


def test_inputs_are_not_modified():
    rng = np.random.default_rng(6)
    pred, gt = _random_case(rng, "float", (8, 8))
    trimap = np.full((8, 8), 128, np.uint8)
    copies = pred.copy(), gt.copy(), trimap.copy()
    evaluate_all(pred, gt, trimap)
    for before, after in zip(copies, (pred, gt, trimap), strict=True):
        np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize(
    ("pred", "gt", "trimap", "match"),
    [
        (np.zeros((3, 4)), np.zeros((4, 3)), None, "same shape"),
        (np.zeros((3, 4, 1)), np.zeros((3, 4, 1)), None, r"pred must be a 2-D"),
        (np.zeros(5), np.zeros(5), None, r"pred must be a 2-D"),
        (np.zeros((3, 4)), np.zeros((3, 4, 3)), None, r"gt must be a 2-D"),
        (np.zeros((0, 4)), np.zeros((0, 4)), None, "empty"),
        (np.zeros((3, 4), np.int64), np.zeros((3, 4)), None, "pred must be uint8.*int64"),
        (np.zeros((3, 4)), np.zeros((3, 4), bool), None, "gt must be uint8.*bool"),
        (np.full((3, 4), 1.5), np.zeros((3, 4)), None, r"pred is float.*\[0, 1\]"),
        (np.zeros((3, 4)), np.full((3, 4), -0.1), None, r"gt is float.*\[0, 1\]"),
        (np.full((3, 4), np.nan), np.zeros((3, 4)), None, r"pred is float"),
        (np.zeros((3, 4)), np.zeros((3, 4)), np.zeros((4, 3), np.uint8), "trimap must have the shape"),
        (np.zeros((3, 4)), np.zeros((3, 4)), np.zeros((3, 4, 3), np.uint8), "trimap must have the shape"),
        (np.zeros((3, 4)), np.zeros((3, 4)), np.zeros((3, 4), np.float32), "trimap must be uint8"),
    ],
)
@pytest.mark.parametrize("name", [*FUNCTIONS, "all"])
def test_invalid_inputs_raise(pred, gt, trimap, match, name):
    fn = evaluate_all if name == "all" else FUNCTIONS[name]
    with pytest.raises(ValueError, match=match):
        fn(pred, gt, trimap)


@pytest.mark.parametrize("step", [0, -0.1, 1.5, float("nan"), "0.1", True])
def test_invalid_step_raises(step):
    with pytest.raises(ValueError, match="step"):
        connectivity_error(np.zeros((2, 2)), np.zeros((2, 2)), step=step)


# --------------------------------------------------------------------------------------------------------
# evaluate_all and the naive reference
# --------------------------------------------------------------------------------------------------------


def _golden_cases() -> list[str]:
    return sorted(json.loads((GOLDEN / "values.json").read_text()))


def _read_golden(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return tuple(np.asarray(Image.open(GOLDEN / f"{name}_{part}.png")) for part in ("pred", "gt", "trimap"))


def test_golden_cases_are_all_there():
    assert {"case1", "case2", "case3", "case4", "case5", "case6", "tie", "no_unknown"} <= set(_golden_cases())


@pytest.mark.parametrize("name", _golden_cases())
def test_golden_values_from_the_matlab_code(name):
    """Values computed by an implementation checked against the official MATLAB code in GNU Octave.

    Every metric is checked on its own and through ``evaluate_all``, so neither side is tested against the
    other. ``no_unknown`` has no unknown pixel (SAD, Grad and Conn 0, the MSE undefined: ``null`` in the
    file, NaN here as MATLAB's 0 / 0). ``tie`` has two equally large components; its error happens to be
    the same whichever wins, so the column-major tie rule is pinned by the hand-made ``_tie_case`` tests.
    """
    want = json.loads((GOLDEN / "values.json").read_text())[name]
    pred, gt, trimap = _read_golden(name)
    assert pred.dtype == gt.dtype == trimap.dtype == np.uint8
    result = evaluate_all(pred, gt, trimap)
    assert list(result) == list(metrics.METRIC_NAMES)
    for key, fn in FUNCTIONS.items():
        for got in (result[key], fn(pred, gt, trimap)):
            if want[key] is None:
                assert math.isnan(got), (key, got)
            else:
                assert got == pytest.approx(want[key], rel=1e-6, abs=1e-12), (key, got, want[key])
    if name == "no_unknown":
        assert not np.any(trimap == 128) and result["sad"] == result["grad"] == result["conn"] == 0.0


@pytest.mark.parametrize("kind", ["uint8", "levels", "float", "edges"])
def test_against_the_naive_reference_on_random_tiny_inputs(kind):
    rng = np.random.default_rng(["uint8", "levels", "float", "edges"].index(kind))
    for trial in range(40):
        shape = tuple(int(s) for s in rng.integers(1, 12, 2))
        pred, gt = _random_case(rng, kind, shape)
        trimap = rng.choice(np.array([0, 128, 255], np.uint8), shape) if trial % 3 else None
        got, want = evaluate_all(pred, gt, trimap), ref.ref_evaluate(pred, gt, trimap)
        for key in metrics.METRIC_NAMES:
            assert _close(got[key], want[key]), (kind, trial, key, got[key], want[key])
    conn_steps = [0.25, 0.3, 0.05, 1.0, 0.003]  # 0.003: more than 255 thresholds
    for step in conn_steps:
        pred, gt = _random_case(rng, kind, (9, 10))
        assert _close(connectivity_error(pred, gt, step=step), ref.ref_conn(pred, gt, step=step)), step


def test_connectivity_with_more_than_255_thresholds():
    # 300 thresholds up to 0.9: the level of every pixel is ~0.9, so d_pred ~ 0.1 < 0.15 and no error.
    pred, gt = np.ones((3, 3)), np.full((3, 3), 0.9)
    assert connectivity_error(pred, gt, step=0.003) == pytest.approx(0.0, abs=1e-9)
    assert ref.ref_conn(pred, gt, step=0.003) == pytest.approx(0.0, abs=1e-9)


def test_reference_agrees_on_column_major_ties():
    pred, gt, a, b = _tie_case()
    only_b = np.zeros((4, 4), np.uint8)
    only_b[b] = 128
    assert ref.ref_conn(pred, gt, only_b) == pytest.approx(0.0, abs=1e-12)
    # Random cases with many equal-sized components exercise the tie path.
    rng = np.random.default_rng(9)
    for _ in range(30):
        pred, gt = (rng.random((10, 10)) < 0.35) * 0.6, (rng.random((10, 10)) < 0.7) * 0.5
        assert _close(connectivity_error(pred, gt), ref.ref_conn(pred, gt)), (pred, gt)


def _band_case(shape: tuple[int, int], seed: int):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    dist = np.hypot(yy - shape[0] * 0.6, xx - shape[1] * 0.4)
    gt = np.clip((shape[0] * 0.3 - dist) / 4 + 0.5, 0, 1)
    pred = np.clip(gt + rng.normal(0, 0.05, shape), 0, 1)
    return (pred * 255).round().astype(np.uint8), (gt * 255).round().astype(np.uint8), dist


@pytest.mark.parametrize("region", ["corners", "close_runs", "across_strips", "ring", "everything"])
def test_gradient_regions_against_the_reference(region):
    """The strips and segments the gradient is filtered on, against the naive whole-image 2-D filtering.

    150 rows: strips start at rows 0, 64 and 128 (the last one runs past the image).
    """
    shape = (150, 230)
    pred, gt, dist = _band_case(shape, seed=11)
    trimap = np.zeros(shape, np.uint8)
    if region == "corners":  # replicated borders on every side
        trimap[:5, :6] = trimap[-4:, -7:] = trimap[:3, -2:] = trimap[-1:, :1] = trimap[70:74, 100:103] = 128
    elif region == "close_runs":  # 8 columns apart: merged; 9 apart: two segments whose margins touch
        trimap[70:72, 100:104] = trimap[70:72, 111:113] = trimap[70:72, 121:124] = 128
        assert metrics._unknown_segments(trimap == 128, 64, 4) == [(64, 100, 113), (64, 121, 124)]
    elif region == "across_strips":
        trimap[60:70, 20:200] = 128
    elif region == "ring":
        trimap[np.abs(dist - shape[0] * 0.3) < 6] = 128
    else:
        trimap[:] = 128
        assert gradient_error(pred, gt, trimap) == pytest.approx(gradient_error(pred, gt), rel=1e-12)
    assert _close(gradient_error(pred, gt, trimap), ref.ref_grad(pred, gt, trimap))
    assert _close(connectivity_error(pred, gt, trimap), ref.ref_conn(pred, gt, trimap))


def test_connectivity_on_many_components_against_the_reference():
    """Runs that join and split over many rows, many components and ties, at every threshold."""
    rng = np.random.default_rng(12)
    for kind in ("levels", "edges"):
        pred, gt = _random_case(rng, kind, (70, 90))
        pred, gt = ndimage.uniform_filter(pred, 3), ndimage.uniform_filter(gt, 3)  # blobs of all sizes
        assert _close(connectivity_error(pred, gt), ref.ref_conn(pred, gt)), kind


# --------------------------------------------------------------------------------------------------------
# MetricAccumulator
# --------------------------------------------------------------------------------------------------------


def test_accumulator_means_and_merge():
    values = [{"sad": float(i), "mse": i / 10, "grad": 2.0 * i, "conn": 1.0} for i in range(1, 6)]
    whole, first, second = MetricAccumulator(), MetricAccumulator(), MetricAccumulator()
    for i, v in enumerate(values):
        whole.update(v)
        (first if i < 2 else second).update(v)
    assert whole.count == 5 and whole.sums["sad"] == 15.0
    merged = MetricAccumulator().merge(first).merge(second)
    assert merged.count == whole.count and merged.compute() == pytest.approx(whole.compute())
    assert whole.compute() == pytest.approx({"sad": 3.0, "mse": 0.3, "grad": 6.0, "conn": 1.0})


def test_accumulator_with_evaluate_all_and_errors():
    acc = MetricAccumulator()
    with pytest.raises(ValueError, match="before any update"):
        acc.compute()
    with pytest.raises(ValueError, match="non-empty"):
        acc.update({})
    acc.update(evaluate_all(np.zeros((3, 3)), np.ones((3, 3))))
    with pytest.raises(ValueError, match="keys changed"):
        acc.update({"sad": 1.0})
    other = MetricAccumulator()
    other.update({"sad": 1.0})
    with pytest.raises(ValueError, match="cannot merge"):
        acc.merge(other)
    first = acc.compute()
    acc.update({"sad": 0.0, "mse": math.nan, "grad": 0.0, "conn": 0.0})
    # the undefined MSE is skipped and counted, not averaged in as 0 or NaN
    assert acc.compute()["mse"] == first["mse"] and acc.compute()["sad"] == pytest.approx(first["sad"] / 2)
    assert acc.skipped() == {"sad": 0, "mse": 1, "grad": 0, "conn": 0}
    restored = MetricAccumulator.from_state(acc.state())
    assert restored.compute() == acc.compute() and restored.skipped() == acc.skipped()
    acc.reset()
    assert acc.count == 0 and acc.sums == {}
    only_nan = MetricAccumulator()
    only_nan.update({"mse": math.nan})
    assert math.isnan(only_nan.compute()["mse"]) and only_nan.skipped() == {"mse": 1}


def test_accumulator_counts_skipped_values_across_merges():
    first, second = MetricAccumulator(), MetricAccumulator()
    first.update({"sad": 1.0, "mse": math.nan})
    second.update({"sad": 3.0, "mse": math.nan})
    second.update({"sad": 5.0, "mse": 0.25})
    merged = first.merge(second)
    assert merged.count == 3 and merged.skipped() == {"sad": 0, "mse": 2}
    assert merged.compute() == {"sad": 3.0, "mse": 0.25}
    only_nan = MetricAccumulator()
    only_nan.update({"mse": math.nan})
    assert math.isnan(only_nan.compute()["mse"]) and only_nan.skipped() == {"mse": 1}


def test_whole_image_errors_by_hand():
    from deepmatting.metrics import whole_image_errors

    pred = np.array([[0.0, 0.5], [1.0, 0.25]], np.float32)
    gt = np.array([[0, 255], [255, 0]], np.uint8)  # uint8 read as value / 255
    got = whole_image_errors(pred, gt)
    assert got["mad"] == pytest.approx((0 + 0.5 + 0 + 0.25) / 4)
    assert got["mse_whole"] == pytest.approx((0 + 0.25 + 0 + 0.0625) / 4)
