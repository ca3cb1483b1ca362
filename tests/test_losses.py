"""Loss values on hand-made tensors."""

import math

import pytest
import torch

from deepmatting import AlphaLoss, CompositionLoss, LaplacianLoss, MattingLoss
from deepmatting.losses import laplacian_pyramid, unknown_mask


def _t(rows):
    return torch.tensor(rows, dtype=torch.float32).view(1, 1, len(rows), len(rows[0]))


def test_alpha_loss_unknown_region_by_hand():
    pred = _t([[0.0, 0.5], [1.0, 0.2]])
    gt = _t([[1.0, 0.0], [1.0, 0.6]])
    trimap = _t([[0.0, 0.5], [1.0, 0.5]])
    # unknown pixels: (0,1) |0.5-0| = 0.5 and (1,1) |0.2-0.6| = 0.4 -> mean 0.45
    assert float(AlphaLoss()(pred, gt, trimap)) == pytest.approx(0.45)
    # all pixels: (1 + 0.5 + 0 + 0.4) / 4
    assert float(AlphaLoss(region="all")(pred, gt, trimap)) == pytest.approx(0.475)
    # weighted, unknown x3: (1 + 3*0.5 + 0 + 3*0.4) / (1 + 3 + 1 + 3)
    assert float(AlphaLoss(region="weighted", unknown_weight=3)(pred, gt, trimap)) == pytest.approx(3.7 / 8)


def test_alpha_loss_without_unknown_pixels_is_zero_not_nan():
    pred = torch.rand(2, 1, 4, 4, requires_grad=True)
    trimap = torch.ones(2, 1, 4, 4)
    loss = AlphaLoss()(pred, torch.zeros_like(pred), trimap)
    assert float(loss) == 0.0 and not math.isnan(float(loss))
    loss.backward()
    assert torch.isfinite(pred.grad).all()


def test_alpha_loss_rejects_unknown_region():
    with pytest.raises(ValueError, match="region"):
        AlphaLoss(region="edges")


def test_unknown_mask_values():
    assert unknown_mask(_t([[0.0, 0.5, 1.0, 0.502]])).flatten().tolist() == [0, 1, 0, 1]


def test_composition_loss_by_hand():
    alpha = _t([[0.25]])
    fg = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
    bg = torch.tensor([0.0, 0.0, 1.0]).view(1, 3, 1, 1)
    image = 0.25 * fg + 0.75 * bg
    trimap = _t([[0.5]])
    assert float(CompositionLoss()(alpha, image, fg, bg, trimap)) == pytest.approx(0.0)
    # predicting 0.5: composite (0.5, 0, 0.5) vs (0.25, 0, 0.75) -> mean over 3 channels of (0.25, 0, 0.25)
    assert float(CompositionLoss()(_t([[0.5]]), image, fg, bg, trimap)) == pytest.approx(0.5 / 3)


def test_laplacian_pyramid_reconstructs_and_loss_is_zero_for_equal():
    x = torch.rand(1, 1, 32, 32)
    pyr = laplacian_pyramid(x, 4)
    assert [p.shape[-1] for p in pyr] == [32, 16, 8, 4]
    assert float(LaplacianLoss()(x, x)) == 0.0
    assert float(LaplacianLoss()(x, 1 - x)) > 0


def test_laplacian_loss_ignores_known_region():
    gt = torch.rand(1, 1, 16, 16)
    trimap = torch.zeros(1, 1, 16, 16)  # all background: nothing to learn
    assert float(LaplacianLoss()(torch.rand(1, 1, 16, 16), gt, trimap)) == 0.0


def test_matting_loss_combines_weighted_terms():
    torch.manual_seed(0)
    pred, gt = torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 16)
    trimap = torch.full((2, 1, 16, 16), 0.5)
    fg, bg = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    batch = {"alpha": gt, "trimap": trimap, "image": gt * fg + (1 - gt) * bg, "fg": fg, "bg": bg}
    terms = MattingLoss({"alpha": 1.0, "composition": 0.5, "laplacian": 0.25})(pred, batch)
    expected = terms["alpha"] + 0.5 * terms["composition"] + 0.25 * terms["laplacian"]
    assert float(terms["total"]) == pytest.approx(float(expected))
    no_fg = MattingLoss()(pred, {k: v for k, v in batch.items() if k not in ("fg", "bg")})
    assert "composition" not in no_fg
    with pytest.raises(ValueError, match="unknown terms"):
        MattingLoss({"perceptual": 1.0})
